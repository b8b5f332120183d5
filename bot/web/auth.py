"""Sign-in and sign-out: local accounts with argon2 passwords, and optionally Microsoft Entra ID.

Failed sign-ins are counted per account name and per client address in the sign_in_attempt
table under an HMAC of the name or address, so the table contains neither. The error shown for
a failed sign-in is the same whether or not the account exists.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from bot.config import WebOidcConfig, read_secret
from bot.errors import ConfigError
from bot.web.common import current_user, get_accounts, get_config
from store.accounts import ROLES, AccountView

__all__ = ["ROLES", "bp", "role_from_claims"]

log = logging.getLogger("bot.web.auth")

bp = Blueprint("auth", __name__)

SIGN_IN_ERROR = "Enter a correct username and password"
RATE_LIMITED_ERROR = "There have been too many failed attempts to sign in. Wait {minutes} minutes and try again."

# When a user matches several configured app roles or groups, the strongest role wins.
_ROLE_ORDER = ("admin", "coordinator", "panel_member")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if g.get("user") is not None and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))

    oidc = get_config().web.oidc
    errors: dict[str, str] = {}
    username = ""
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username:
            errors["username"] = "Enter your username"
        if not password:
            errors["password"] = "Enter your password"
        if not errors:
            account, error, status = _check_sign_in(username, password)
            if account is not None:
                _start_session(account, "password")
                return redirect(_safe_next(request.args.get("next")))
            errors["username"] = error

    return render_template("auth/sign_in.html", errors=errors, username=username, oidc_enabled=oidc.enabled,
                           expired=request.args.get("expired") == "1"), status


def _check_sign_in(username: str, password: str) -> tuple[AccountView | None, str, int]:
    """Check a password under the rate limit; return the account, or None with the error and status."""
    web = get_config().web
    accounts = get_accounts()
    now = datetime.now(timezone.utc)
    account_key = _attempt_key("account", username.strip().lower())
    address_key = _attempt_key("address", request.remote_addr or "")

    # The attempt is counted before the check and the count includes it, so attempts sent
    # at the same moment cannot all pass the limit while their passwords are being checked.
    attempt = accounts.reserve_attempts([account_key, address_key], at=now)
    failures = accounts.count_failures([account_key, address_key], now - timedelta(minutes=web.sign_in_window_minutes))
    if failures[account_key] > web.sign_in_max_failures or failures[address_key] > web.sign_in_max_failures_per_address:
        # Refused attempts are audited but not counted, so the lock ends when the window passes.
        accounts.release_attempts(attempt)
        accounts.record_sign_in_failure([], "rate_limited")
        log.warning("sign-in rejected: too many failures (%s)",
                    "account" if failures[account_key] > web.sign_in_max_failures else "address")
        return None, RATE_LIMITED_ERROR.format(minutes=web.sign_in_window_minutes), 429

    check = accounts.check_password(username, password)
    account = check.account
    if check.password_ok and account is not None and account.active:
        accounts.release_attempts(attempt)
        accounts.clear_failures(account_key, older_than=now - timedelta(minutes=web.sign_in_window_minutes))
        return account, "", 200

    if account is None:
        reason = "unknown_account"
    elif not check.password_ok:
        reason = "wrong_password"
    else:
        reason = "account_disabled"
    # The attempt's rows stay: it counts as a failure.
    accounts.record_sign_in_failure([], reason,
                                    account_id=account.id if account else None,
                                    actor=account.username if account else "unknown")
    log.info("sign-in failed: %s", reason)
    return None, SIGN_IN_ERROR, 200


def _attempt_key(kind: str, value: str) -> str:
    """Return the HMAC-SHA256 under the app's secret key of an account name or client address."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _start_session(account: AccountView, method: str) -> None:
    """Begin a new session for `account`: the old session, with its CSRF token, is discarded."""
    at = datetime.now(timezone.utc)
    get_accounts().record_sign_in(account.id, method, at=at)
    session.clear()
    session.permanent = True
    session["uid"] = account.id
    session["started"] = at.timestamp()
    session["seen"] = time.time()
    log.info("signed in: account %s by %s", account.id, method)


def _safe_next(target: str | None) -> str:
    """Return `target` when it is a path on this site, else the dashboard (no open redirect)."""
    if target:
        parts = urlsplit(target)
        # Browsers drop tabs and line breaks inside a URL, and a line break cannot go into the
        # Location header, so any control character or space sends the user to the dashboard.
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target and not any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
            return target
    return url_for("admin.dashboard")


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    """End every session of the signed-in user, on this device and any other."""
    user = current_user()
    get_accounts().add_event(user.username, "sign_out", target_type="user_account", target_id=user.id)
    session.clear()
    log.info("signed out: account %s", user.id)
    flash("You have signed out.", "success")
    return redirect(url_for("auth.sign_in"))


# OpenID Connect with Microsoft Entra ID ------------------------------------------

def role_from_claims(claims: dict, oidc: WebOidcConfig) -> str | None:
    """Return the web app role an ID token's `roles` and `groups` claims grant, or None for none.

    App role values are compared without regard to case; group ids are object ids (GUIDs).
    """
    token_roles = {str(value).lower() for value in claims.get("roles") or []}
    token_groups = {str(value).lower() for value in claims.get("groups") or []}
    for role in _ROLE_ORDER:
        allowed_roles = {value.lower() for value in getattr(oidc, f"{role}_app_roles")}
        allowed_groups = {value.lower() for value in getattr(oidc, f"{role}_groups")}
        if token_roles & allowed_roles or token_groups & allowed_groups:
            return role
    return None


def _oidc_client(oidc: WebOidcConfig):
    """Build the msal application for the configured tenant (tests replace this)."""
    import msal

    secret = read_secret(oidc.client_secret_env, "web.oidc.client_secret_env")
    return msal.ConfidentialClientApplication(
        oidc.client_id, client_credential=secret,
        authority=f"{oidc.authority_url.rstrip('/')}/{oidc.tenant_id}",
        # Only the configured tenant's authority is contacted.
        instance_discovery=False,
    )


@bp.route("/sign-in/oidc")
def oidc_start():
    """Send the browser to Entra ID with a new state, nonce and PKCE code verifier."""
    oidc = get_config().web.oidc
    if not oidc.enabled:
        abort(404)
    try:
        client = _oidc_client(oidc)
    except (ConfigError, ValueError) as error:
        log.error("OpenID Connect sign-in unavailable: %s", error)
        return render_template("error.html", title="Sign-in with Microsoft is not available",
                               text="Sign in with your username and password, or ask an administrator."), 503
    flow = client.initiate_auth_code_flow(scopes=[], redirect_uri=oidc.redirect_url)
    session["oidc_flow"] = flow
    return redirect(flow["auth_uri"])


@bp.route("/sign-in/oidc/callback")
def oidc_callback():
    oidc = get_config().web.oidc
    if not oidc.enabled:
        abort(404)
    flow = session.pop("oidc_flow", None)
    refused = render_template("error.html", title="You cannot sign in to this service",
                              text="Your Microsoft account is not authorised to use this service. "
                                   "Ask an administrator to give you access.")
    if flow is None:
        return redirect(url_for("auth.sign_in"))

    try:
        result = _oidc_client(oidc).acquire_token_by_auth_code_flow(flow, request.args.to_dict())
    except ValueError as error:  # msal raises ValueError for a state mismatch
        log.warning("OpenID Connect sign-in rejected: %s", type(error).__name__)
        get_accounts().record_sign_in_failure([], "oidc_invalid_response")
        return refused, 403
    if "error" in result:
        log.warning("OpenID Connect sign-in failed: %s", result.get("error"))
        get_accounts().record_sign_in_failure([], "oidc_error")
        return refused, 403

    claims = result.get("id_token_claims") or {}
    account, reason = _oidc_account(claims, oidc)
    if account is None:
        log.warning("OpenID Connect sign-in rejected: %s", reason)
        get_accounts().record_sign_in_failure([], reason)
        return refused, 403
    _start_session(account, "oidc")
    return redirect(url_for("admin.dashboard"))


def _oidc_account(claims: dict, oidc: WebOidcConfig) -> tuple[AccountView | None, str]:
    """Return the account for verified ID token claims, or None with the reason it is refused."""
    subject = str(claims.get("oid") or "")
    if not subject:
        return None, "oidc_no_subject"
    if str(claims.get("tid") or "").lower() != oidc.tenant_id.lower():
        return None, "oidc_wrong_tenant"
    role = role_from_claims(claims, oidc)
    if role is None:
        return None, "oidc_no_allowed_role"
    username = str(claims.get("preferred_username") or claims.get("email") or subject)
    account = get_accounts().oidc_account(subject, username, str(claims.get("name") or ""), role)
    if not account.active:
        return None, "account_disabled"
    return account, ""
