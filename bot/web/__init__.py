"""The coordinators' web app: Flask with GOV.UK Frontend, served by `ccas-bot web`.

Every page needs a signed-in user except those in common.PUBLIC_ENDPOINTS. Sessions live in
a signed cookie that contains the account id and the session's start and last-request times;
the account is read again at every request, so disabling it or signing out ends the session.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, abort, g, jsonify, redirect, render_template, request, send_from_directory, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BuildError, IntegerConverter

from bot.config import Config, read_secret
from bot.errors import ConfigError, RemoteError
from bot.web.common import PUBLIC_ENDPOINTS, READ_METHODS, CurrentUser, get_accounts, get_store
from store.records import Store

log = logging.getLogger("bot.web")

WEB_DIR = Path(__file__).resolve().parent
GOVUK_DIST = WEB_DIR / "node_modules" / "govuk-frontend" / "dist" / "govuk"

SERVICE_NAME = "CCAS triage"

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
                      "microphone=(), payment=(), usb=()")

# GOV.UK Frontend files served under /assets. The crown, the royal crest and the GOV.UK
# icons are left out because this is not a GOV.UK service, and so are the GDS Transport
# font files, which GOV.UK Frontend licenses to GOV.UK services only.
_GOVUK_FILES = frozenset({"govuk-frontend.min.css", "govuk-frontend.min.css.map",
                          "govuk-frontend.min.js", "govuk-frontend.min.js.map"})

# The navigation, in order: (endpoint, label, roles that see it; None for everyone).
NAVIGATION = (
    ("triage.queue", "Queue", None),
    ("cases.case_list", "Cases", None),
    ("panel.agenda", "Agenda", None),
    ("panel.meetings", "Meetings", None),
    ("panel.drafts", "Drafts", None),
    ("panel.actions", "Actions", None),
    ("admin.dashboard", "Dashboard", None),
    ("admin.audit_log", "Audit log", {"coordinator", "admin"}),
    ("admin.users", "Users", {"admin"}),
)


# Minimum length of the session signing key. A key of 32 random URL-safe characters carries
# about 190 bits, so it cannot be guessed, but a short or hand-typed key could be.
MIN_SECRET_KEY_LENGTH = 32


def session_secret_key(env_name: str) -> str:
    """Return the key that signs session cookies, read from `env_name`; reject a short key."""
    key = read_secret(env_name, "web.secret_key_env")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError("", f"the session key in environment variable {env_name} is {len(key)} characters "
                              f"long, shorter than the {MIN_SECRET_KEY_LENGTH} required",
                          f"make a key with `python -c \"import secrets; print(secrets.token_urlsafe(48))\"` "
                          f"and put it in {env_name}")
    return key


def create_app(config: Config, store: Store | None = None) -> Flask:
    """Build the web app on `store` (or the configured store, migrated to the newest schema)."""
    if store is None:
        from bot.app import open_store

        store = open_store(config)

    web = config.web
    app = _App(__name__, template_folder="templates", static_folder="static")
    app.config.update(
        CCAS_CONFIG=config,
        SECRET_KEY=session_secret_key(web.secret_key_env),
        SESSION_COOKIE_NAME="ccas_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=web.session_lifetime_minutes * 60,
        # The CSRF token lives in the session, so it ends with the session.
        WTF_CSRF_TIME_LIMIT=None,
        # Flask-WTF would also demand a same-site Referer on HTTPS, but Referrer-Policy: no-referrer
        # stops browsers sending one; the token and the SameSite=Lax cookie remain.
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    app.extensions["ccas_store"] = store
    app.url_map.converters["int"] = _StoreInteger
    if web.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=web.trusted_proxy_count, x_proto=web.trusted_proxy_count,
                                x_host=web.trusted_proxy_count)

    app.jinja_loader = ChoiceLoader([
        FileSystemLoader(str(WEB_DIR / "templates")),
        PrefixLoader({"govuk_frontend_jinja": _GovukTemplateLoader()}),
    ])
    app.jinja_env.globals["service_name"] = SERVICE_NAME
    app.jinja_env.globals["council_name"] = config.council.la_name
    app.jinja_env.globals["error_list"] = error_list
    app.context_processor(_template_context)

    # Order matters: the session is read and sign-in enforced before CSRFProtect checks the
    # token, so a request without a session gets 401 or a redirect rather than 400.
    app.before_request(_load_session)
    app.before_request(_require_sign_in)
    CSRFProtect(app)
    app.after_request(_security_headers)

    app.add_url_rule("/health", "health", _health)
    app.add_url_rule("/assets/<path:filename>", "govuk_assets", _govuk_asset)
    _register_error_pages(app)

    from bot.web import admin, auth, cases, panel, triage

    for module in (auth, admin, triage, cases, panel):
        app.register_blueprint(module.bp)

    if not GOVUK_DIST.is_dir():
        log.warning("GOV.UK Frontend is not installed in %s; pages show without styles until "
                    "`make install` runs npm", GOVUK_DIST)
    return app


class _App(Flask):
    def log_exception(self, exc_info) -> None:
        """Log a failed request's endpoint, error type and stack, but not the error's message.

        A database error's message quotes the values of its statement, which may be a
        child's name or date of birth, and logs never hold personal data.
        """
        kind, _error, trace = exc_info
        self.logger.error("Exception on %s [%s]: %s\n%s", request.endpoint or "unknown endpoint", request.method,
                          kind.__name__ if kind else "error", "".join(traceback.format_tb(trace)).rstrip())


class _StoreInteger(IntegerConverter):
    """An <int:...> URL part that fits a database id; a larger number is "Page not found", not an error."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def error_list(errors: dict[str, str]) -> list[dict]:
    """Turn {field id: message} into govukErrorSummary's errorList, each linking to its field."""
    return [{"text": message, "href": f"#{field}"} for field, message in errors.items() if message]


class _GovukTemplateLoader(PackageLoader):
    """govuk-frontend-jinja's templates, without the page template's inline script.

    The page template sets the `js-enabled` class with an inline script, which the
    Content-Security-Policy (script-src 'self') blocks. static/app.js sets the class instead.
    """

    _INLINE_SCRIPT = re.compile(r"<script\b[^>]*>document\.body\.className[^<]*</script>")

    def __init__(self) -> None:
        super().__init__("govuk_frontend_jinja")

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if template == "template.html":
            source = self._INLINE_SCRIPT.sub("", source)
        return source, filename, uptodate


def _load_session() -> None:
    """Set g.user from the session cookie, ending the session when it has expired."""
    g.user = None
    g.session_expired = False
    user_id = session.get("uid")
    if user_id is None:
        return

    web = _config().web
    now = time.time()
    started = session.get("started", 0.0)
    seen = session.get("seen", 0.0)
    if now - started > web.session_lifetime_minutes * 60 or now - seen > web.session_idle_minutes * 60:
        session.clear()
        g.session_expired = True
        return

    account = get_accounts().session_account(user_id, datetime.fromtimestamp(started, timezone.utc))
    if account is None:
        session.clear()
        g.session_expired = True
        return
    g.user = CurrentUser(id=account.id, username=account.username, display_name=account.display_name,
                         role=account.role)
    # Rewriting the cookie at most once a minute keeps the idle timer without a new cookie per request.
    if now - seen > 60:
        session["seen"] = now


def _require_sign_in():
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return None
    if g.user is None:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?"),
                                    expired="1" if g.session_expired else None))
        abort(401)
    if g.user.role == "panel_member" and request.method not in READ_METHODS and endpoint != "auth.sign_out":
        abort(403)
    return None


def _security_headers(response):
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint in ("static", "govuk_assets"):
        headers["Cache-Control"] = "public, max-age=3600"
    else:
        # Pages show personal data, so neither the browser nor a proxy may keep a copy.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def _health():
    """Report whether the app can read its store. The endpoint is public, so it returns no personal data."""
    try:
        get_store()._read(lambda db: db.execute(select(1)).scalar_one())
    except (SQLAlchemyError, RemoteError) as error:
        log.error("health check: store unavailable (%s)", type(error).__name__)
        return jsonify(status="unavailable", store="unavailable"), 503
    return jsonify(status="ok", store="ok")


def _govuk_asset(filename: str):
    name = Path(filename).name
    allowed = filename in _GOVUK_FILES or (
        filename.startswith("images/") and not name.startswith(("govuk-", "favicon")))
    if not allowed:
        abort(404)
    return send_from_directory(GOVUK_DIST if filename in _GOVUK_FILES else GOVUK_DIST / "assets", filename)


def _template_context() -> dict:
    user = g.get("user")
    items = []
    if user is not None:
        for endpoint, label, roles in NAVIGATION:
            if roles is not None and user.role not in roles:
                continue
            try:
                items.append({"href": url_for(endpoint), "text": label, "endpoint": endpoint, "active": False})
            except BuildError:
                continue  # the blueprint does not have this page (yet)
        # An error page belongs to no navigation item, whichever page was asked for.
        if not g.get("error_page"):
            _mark_active(items, request.endpoint or "")
    return {"current_user": user, "navigation_items": items}


def _mark_active(items: list[dict], endpoint: str) -> None:
    """Mark the navigation item of this page.

    That is the item with this endpoint, else the item whose endpoint without a plural "s"
    starts this one ("panel.meetings" for "panel.meeting"), else the first item of the
    page's blueprint.
    """
    for item in items:
        if item["endpoint"] == endpoint:
            item["active"] = True
            return
    stems = [item for item in items if endpoint.startswith(item["endpoint"].removesuffix("s"))]
    if stems:
        max(stems, key=lambda item: len(item["endpoint"]))["active"] = True
        return
    blueprint = endpoint.partition(".")[0]
    for item in items:
        if item["endpoint"].partition(".")[0] == blueprint:
            item["active"] = True
            return


def _forbidden_text() -> str:
    """Say why the signed-in user may not do what they asked, and whom to ask."""
    user = g.get("user")
    if user is not None and user.role == "panel_member":
        return ("Panel members can read pages but cannot change anything. "
                "Ask a coordinator to make the change.")
    if user is not None and user.role == "coordinator":
        return "Only administrators can use this page. Ask an administrator."
    return "Your account is not allowed to use this page. Ask an administrator."


def _register_error_pages(app: Flask) -> None:
    titles = {
        400: "There is a problem with the request",
        401: "You need to sign in",
        403: "You are not allowed to do this",
        404: "Page not found",
        405: "This page cannot be used like that",
        413: "The request is too large",
        429: "Too many requests",
    }

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        g.error_page = True
        return render_template("error.html", title="The form has expired",
                               text="Go back, reload the page and try again."), 400

    @app.errorhandler(HTTPException)
    def http_error(error):
        g.error_page = True
        title = titles.get(error.code, error.name)
        text = error.description if error.code == 429 else ""
        if error.code == 403:
            text = _forbidden_text()
        return render_template("error.html", title=title, text=text), error.code

    @app.errorhandler(RemoteError)
    def remote_error(error):
        g.error_page = True
        log.error("web request failed: %s", error)
        return render_template("error.html", title="Sorry, there is a problem with the service",
                               text="The database is busy. Try again in a minute."), 503


def _config() -> Config:
    from bot.web.common import get_config

    return get_config()
