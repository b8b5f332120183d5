"""Helpers shared by every blueprint of the web app: the store, the configuration, the signed-in user and roles."""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from flask import abort, current_app, g, request

from bot.config import Config
from store.accounts import ROLES, AccountStore
from store.records import Store

# Endpoints anyone may reach without signing in. Every other endpoint needs a session.
PUBLIC_ENDPOINTS = frozenset({
    "auth.sign_in", "auth.oidc_start", "auth.oidc_callback", "health", "static", "govuk_assets",
})

# Methods that only read. A panel member may use these and nothing else.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Each role may do what the roles ranked below it may: admin > coordinator > panel_member.
_RANK = {"panel_member": 0, "coordinator": 1, "admin": 2}


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    display_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_change(self) -> bool:
        """Whether the user may change records (coordinators and admins; panel members only read)."""
        return self.role != "panel_member"


def get_store() -> Store:
    return current_app.extensions["ccas_store"]


def get_config() -> Config:
    return current_app.config["CCAS_CONFIG"]


def get_accounts() -> AccountStore:
    return AccountStore(get_store())


def current_user() -> CurrentUser:
    """Return the signed-in user. Every non-public endpoint runs only with a signed-in user."""
    user = g.get("user")
    if user is None:
        abort(401)
    return user


def role_required(*roles: str):
    """Allow a view to the given roles and every role ranked above them; others get 403.

    `role_required("coordinator")` admits coordinators and admins, `role_required("admin")`
    admins only.
    """
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
    lowest = min(_RANK[role] for role in roles)
    allowed = frozenset(role for role, rank in _RANK.items() if rank >= lowest)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if current_user().role not in allowed:
                abort(403)
            return view(*args, **kwargs)
        wrapped.allowed_roles = allowed
        return wrapped
    return decorator


def audit_view(target_type: str, target_id: str | int) -> None:
    """Record that the signed-in user viewed a message, a case or other personal data."""
    get_accounts().add_event(current_user().username, "view", target_type=target_type, target_id=target_id,
                             detail={"endpoint": request.endpoint or ""})
