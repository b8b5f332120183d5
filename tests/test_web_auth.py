"""Sign-in, sessions, roles and the protections every page of the web app shares."""

from __future__ import annotations

import re
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.config import WebOidcConfig
from bot.web import CONTENT_SECURITY_POLICY
from bot.web import auth as web_auth
from bot.web.auth import role_from_claims
from bot.web.common import PUBLIC_ENDPOINTS
from store.accounts import AccountStore
from store.models import AuditEvent, SignInAttempt, UserAccount
from webtools import PASSWORD, add_user, csrf_token, make_web_app, sign_in

COORDINATOR = "casey.coordinator@severnshire.gov.example"
PANEL_MEMBER = "pat.panel@health.example"
ADMIN = "ada.admin@severnshire.gov.example"

CHANGING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def web(tmp_path):
    app, store, config = make_web_app(tmp_path)
    add_user(store, COORDINATOR, "coordinator", display_name="Casey Coordinator")
    add_user(store, PANEL_MEMBER, "panel_member", display_name="Pat Panel")
    add_user(store, ADMIN, "admin", display_name="Ada Admin")
    return app, store, config


def _audit(store, action: str) -> list[AuditEvent]:
    with Session(store.engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _sample_path(rule) -> str:
    """Fill a rule's variables with values its converters accept."""
    def value(match: re.Match) -> str:
        converter = match.group(1) or ""
        if converter.startswith("int"):
            return "1"
        if converter.startswith("path"):
            return "x/y"
        return "2026-01-07"
    return re.sub(r"<(?:(\w+(?:\([^)]*\))?):)?\w+>", value, rule.rule)


def _protected_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint not in PUBLIC_ENDPOINTS]


# Every route needs a session -----------------------------------------------------

def test_public_endpoints_list():
    assert PUBLIC_ENDPOINTS == {"auth.sign_in", "auth.oidc_start", "auth.oidc_callback", "health", "static",
                                "govuk_assets"}


def test_every_route_refuses_requests_without_session(web):
    app, _store, _config = web
    client = app.test_client()
    checked = 0
    for rule in _protected_rules(app):
        path = _sample_path(rule)
        for method in sorted(rule.methods):
            response = client.open(path, method=method)
            checked += 1
            where = f"{method} {rule.rule} ({rule.endpoint})"
            if response.status_code in (301, 302, 303, 307, 308):
                assert response.headers["Location"].startswith("/sign-in"), where
            else:
                assert response.status_code in (401, 403), f"{where} gave {response.status_code}"
    assert checked >= 6  # the dashboard, the audit log, the users page and sign-out at least


def test_panel_member_gets_403_on_every_changing_route(web):
    app, _store, _config = web
    client = app.test_client()
    assert sign_in(client, PANEL_MEMBER).status_code == 302
    token = csrf_token(client, "/")
    checked = 0
    for rule in _protected_rules(app):
        if rule.endpoint == "auth.sign_out":
            continue
        for method in sorted(rule.methods & CHANGING_METHODS):
            response = client.open(_sample_path(rule), method=method, data={"csrf_token": token})
            assert response.status_code == 403, f"{method} {rule.rule} gave {response.status_code}"
            checked += 1
    assert checked >= 1
    # Reading is allowed.
    assert client.get("/").status_code == 200


def test_panel_member_can_sign_out(web):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, PANEL_MEMBER)
    response = client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert client.get("/").headers["Location"].startswith("/sign-in")


def test_unsigned_request_redirects_with_next(web):
    app, _store, _config = web
    response = app.test_client().get("/audit?actor=x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=/audit?actor%3Dx"


# Signing in -----------------------------------------------------------------------

def test_sign_in_then_dashboard(web):
    app, store, _config = web
    client = app.test_client()
    response = sign_in(client, COORDINATOR)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Signed in as Casey Coordinator" in page.get_data(as_text=True)
    events = _audit(store, "sign_in")
    assert [event.actor for event in events] == [COORDINATOR]
    assert events[0].detail == {"method": "password"}


def test_sign_in_follows_next_on_this_site_only(web):
    app, _store, _config = web
    for target, expected in (("/audit", "/audit"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
                             ("/\\evil.example", "/")):
        client = app.test_client()
        token = csrf_token(client)
        response = client.post("/sign-in", query_string={"next": target},
                               data={"csrf_token": token, "username": COORDINATOR, "password": PASSWORD})
        assert response.headers["Location"] == expected, target


def test_wrong_password_and_unknown_account_look_the_same(web):
    app, store, _config = web
    client = app.test_client()
    wrong = sign_in(client, COORDINATOR, "not the password at all")
    unknown = sign_in(client, "nobody@severnshire.gov.example", "not the password at all")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "Enter a correct username and password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302

    failures = _audit(store, "sign_in_failed")
    assert [event.detail["reason"] for event in failures] == ["wrong_password", "unknown_account"]
    # The name typed for an unknown account is not recorded: it could be a mistyped password.
    assert failures[1].actor == "unknown"
    for event in failures:
        assert "not the password" not in str(event.detail)


def test_empty_fields_show_error_summary(web):
    app, _store, _config = web
    client = app.test_client()
    response = client.post("/sign-in", data={"csrf_token": csrf_token(client), "username": "", "password": ""})
    text = response.get_data(as_text=True)
    assert "There is a problem" in text
    assert 'href="#username"' in text
    assert "Enter your username" in text
    assert 'href="#password"' in text
    assert "Enter your password" in text
    assert "<title>Error: Sign in" in text


def test_disabled_account_cannot_sign_in_and_loses_session(web):
    app, store, _config = web
    active = app.test_client()
    sign_in(active, COORDINATOR)
    assert active.get("/").status_code == 200

    AccountStore(store).set_active("test", COORDINATOR, False)
    assert active.get("/").status_code == 302
    response = sign_in(app.test_client(), COORDINATOR)
    assert response.status_code == 200
    assert "Enter a correct username and password" in response.get_data(as_text=True)
    assert _audit(store, "sign_in_failed")[-1].detail == {"reason": "account_disabled"}


def test_rate_limit_per_account(web):
    app, store, config = web
    client = app.test_client()
    for _ in range(config.web.sign_in_max_failures):
        assert sign_in(client, COORDINATOR, "wrong password guess").status_code == 200
    refused = sign_in(client, COORDINATOR)  # the right password, but too late
    assert refused.status_code == 429
    assert "too many failed attempts" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    # Another account from the same address is not locked by these failures.
    assert sign_in(app.test_client(), ADMIN).status_code == 302

    with Session(store.engine) as session:
        keys = list(session.scalars(select(SignInAttempt.key)))
    assert len(keys) == 2 * config.web.sign_in_max_failures
    for key in keys:
        assert re.fullmatch(r"[0-9a-f]{64}", key)
        assert "severnshire" not in key


def test_rate_limit_per_address(tmp_path):
    app, store, _config = make_web_app(tmp_path, web={"sign_in_max_failures_per_address": 3})
    add_user(store, COORDINATOR, "coordinator")
    client = app.test_client()
    for number in range(3):
        sign_in(client, f"guess{number}@severnshire.gov.example", "wrong password guess")
    assert sign_in(client, COORDINATOR).status_code == 429
    # A client at another address is not affected.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.44"
    assert sign_in(other, COORDINATOR).status_code == 302


def test_successful_sign_in_clears_account_failures(web):
    app, _store, config = web
    client = app.test_client()
    for _ in range(config.web.sign_in_max_failures - 1):
        sign_in(client, COORDINATOR, "wrong password guess")
    assert sign_in(client, COORDINATOR).status_code == 302
    other = app.test_client()
    sign_in(other, COORDINATOR, "wrong password guess")
    assert sign_in(other, COORDINATOR).status_code == 302


def test_password_rehashed_when_parameters_change(web):
    app, store, _config = web
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with Session(store.engine) as session, session.begin():
        session.scalars(select(UserAccount).where(UserAccount.username == COORDINATOR)).one().password_hash = weak
    assert sign_in(app.test_client(), COORDINATOR).status_code == 302
    with Session(store.engine) as session:
        stored = session.scalars(select(UserAccount.password_hash).where(UserAccount.username == COORDINATOR)).one()
    assert stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
    assert sign_in(app.test_client(), COORDINATOR).status_code == 302


# CSRF ------------------------------------------------------------------------------

def test_sign_in_without_csrf_token_is_400(web):
    app, _store, _config = web
    client = app.test_client()
    client.get("/sign-in")
    response = client.post("/sign-in", data={"username": COORDINATOR, "password": PASSWORD})
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_sign_out_without_csrf_token_is_400(web):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, COORDINATOR)
    assert client.post("/sign-out").status_code == 400
    assert client.get("/").status_code == 200


def test_csrf_token_from_before_sign_in_stops_working(web):
    app, _store, _config = web
    client = app.test_client()
    old_token = csrf_token(client)
    sign_in(client, COORDINATOR)
    assert client.post("/sign-out", data={"csrf_token": old_token}).status_code == 400
    assert csrf_token(client, "/") != old_token


# Sessions --------------------------------------------------------------------------

def test_session_rotated_at_sign_in(web):
    app, _store, _config = web
    client = app.test_client()
    client.get("/sign-in")
    with client.session_transaction() as before:
        before["planted"] = "by someone else"
    sign_in(client, COORDINATOR)
    with client.session_transaction() as after:
        assert "planted" not in after
        assert after["uid"]


def test_session_ends_after_idle_time(web):
    app, _store, config = web
    client = app.test_client()
    sign_in(client, COORDINATOR)
    with client.session_transaction() as session:
        session["seen"] = time.time() - config.web.session_idle_minutes * 60 - 5
    response = client.get("/")
    assert response.status_code == 302
    assert "expired=1" in response.headers["Location"]
    assert "Your session has ended" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_session_ends_after_lifetime_despite_activity(web):
    app, _store, config = web
    client = app.test_client()
    sign_in(client, COORDINATOR)
    with client.session_transaction() as session:
        session["started"] = time.time() - config.web.session_lifetime_minutes * 60 - 5
        session["seen"] = time.time()
    assert client.get("/").status_code == 302


def test_sign_out_ends_sessions_and_old_cookie(web):
    app, store, _config = web
    first, second = app.test_client(), app.test_client()
    sign_in(first, COORDINATOR)
    sign_in(second, COORDINATOR)
    stolen = first.get_cookie("ccas_session").value

    response = first.post("/sign-out", data={"csrf_token": csrf_token(first, "/")})
    assert response.headers["Location"] == "/sign-in"
    assert "You have signed out" in first.get("/sign-in").get_data(as_text=True)
    assert second.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("ccas_session", stolen)
    assert replay.get("/").status_code == 302
    assert [event.actor for event in _audit(store, "sign_out")] == [COORDINATOR]


def test_cookie_flags(tmp_path):
    app, store, config = make_web_app(tmp_path, web={"secure_cookies": True})
    assert config.web.secure_cookies
    add_user(store, COORDINATOR, "coordinator")
    client = app.test_client()
    page = client.get("/sign-in", base_url="https://ccas.severnshire.gov.example")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/sign-in", base_url="https://ccas.severnshire.gov.example",
                           data={"csrf_token": token, "username": COORDINATOR, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("ccas_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie
    assert "Expires=" in cookie


def test_secure_cookies_default_on():
    from bot.config import load_config

    assert load_config(None).web.secure_cookies is True


def test_short_session_key_refused(tmp_path, monkeypatch):
    from bot.errors import ConfigError

    monkeypatch.setenv("CCAS_TEST_SHORT_KEY", "short")
    with pytest.raises(ConfigError) as error:
        make_web_app(tmp_path, web={"secret_key_env": "CCAS_TEST_SHORT_KEY"})

    assert "CCAS_TEST_SHORT_KEY" in str(error.value)
    assert "shorter than the 32 required" in str(error.value)
    assert "secrets.token_urlsafe(48)" in str(error.value)


def test_web_command_refuses_short_key(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite3"}"\n', encoding="utf-8")
    monkeypatch.setenv("CCAS_WEB_SECRET_KEY", "short")
    import waitress

    def server_started(*_args, **_kwargs):
        raise AssertionError("the web app started with a 5-character session key")
    monkeypatch.setattr(waitress, "create_server", server_started)

    assert main(["--config", str(config), "web", "--port", "0"]) == 2
    assert "CCAS_WEB_SECRET_KEY" in capsys.readouterr().err


# Headers, pages and assets ------------------------------------------------------------

def test_security_headers_on_every_page(web):
    app, _store, _config = web
    client = app.test_client()
    responses = {"sign-in": client.get("/sign-in"), "health": client.get("/health"),
                 "missing": client.get("/no-such-page")}
    sign_in(client, ADMIN)
    for rule in _protected_rules(app):
        if "GET" in rule.methods and not rule.arguments:
            responses[rule.rule] = client.get(rule.rule)
    for name, response in responses.items():
        headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Referrer-Policy"] == "no-referrer", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert "camera=()" in headers["Permissions-Policy"], name
        assert headers["Cache-Control"] == "no-store", name


def test_pages_have_no_inline_script_or_style(web):
    app, _store, _config = web
    client = app.test_client()
    pages = [client.get("/sign-in")]
    sign_in(client, ADMIN)
    pages += [client.get(rule.rule) for rule in _protected_rules(app)
              if "GET" in rule.methods and not rule.arguments]
    for page in pages:
        text = page.get_data(as_text=True)
        if "govuk-template__body" not in text:
            continue  # not a page of the app (a download or an export)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), page.request.path
        assert not re.search(r"\sstyle=", text), page.request.path
        assert "<style" not in text, page.request.path
        assert "GOV.UK" not in text, page.request.path


def test_health_is_public_and_plain(web):
    app, _store, _config = web
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "store": "ok"}


def test_govuk_assets_served_without_crown_or_font(web):
    app, _store, _config = web
    from bot.web import GOVUK_DIST

    if not GOVUK_DIST.is_dir():
        pytest.skip("GOV.UK Frontend is not installed (make install runs npm)")
    client = app.test_client()
    css = client.get("/assets/govuk-frontend.min.css")
    assert css.status_code == 200
    assert css.headers["Cache-Control"].startswith("public")
    assert client.get("/assets/govuk-frontend.min.js").status_code == 200
    for path in ("/assets/images/govuk-crest.svg", "/assets/images/favicon.svg", "/assets/images/favicon.ico",
                 "/assets/fonts/bold-b542beb274-v2.woff2", "/assets/package.json", "/assets/../package.json"):
        assert client.get(path).status_code == 404, path
    assert client.get("/static/app.js").status_code == 200


# Roles ---------------------------------------------------------------------------

def test_audit_log_for_coordinators_and_admins_only(web):
    app, _store, _config = web
    for username, status in ((COORDINATOR, 200), (ADMIN, 200), (PANEL_MEMBER, 403)):
        client = app.test_client()
        sign_in(client, username)
        assert client.get("/audit").status_code == status, username


def test_navigation_shows_pages_for_role(web):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, PANEL_MEMBER)
    text = client.get("/").get_data(as_text=True)
    assert "Audit log" not in text
    assert "Sign out" in text


def _active_navigation(html: str) -> list[str]:
    items = re.findall(r'<li class="govuk-service-navigation__item([^"]*)">\s*<a[^>]*>\s*(?:<strong[^>]*>)?\s*([^<]+?)\s*<',
                       html)
    return [label for classes, label in items if "--active" in classes]


def test_navigation_highlights_own_page(web):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, COORDINATOR)

    assert _active_navigation(client.get("/meetings").get_data(as_text=True)) == ["Meetings"]
    assert _active_navigation(client.get("/drafts").get_data(as_text=True)) == ["Drafts"]
    assert _active_navigation(client.get("/agenda").get_data(as_text=True)) == ["Agenda"]
    assert _active_navigation(client.get("/").get_data(as_text=True)) == ["Dashboard"]


def test_forbidden_page_says_why(web):
    app, _store, _config = web
    client = app.test_client()
    sign_in(client, PANEL_MEMBER)
    token = csrf_token(client, "/")

    response = client.post("/users", data={"csrf_token": token})
    html = response.get_data(as_text=True)

    assert response.status_code == 403
    assert "Panel members can read pages but cannot change anything" in html
    assert "Ask a coordinator" in html
    assert _active_navigation(html) == []


# OpenID Connect --------------------------------------------------------------------

OIDC = WebOidcConfig(tenant_id="0f0e0d0c-0000-4000-8000-000000000001", client_id="app-client-id",
                     redirect_url="https://ccas.severnshire.gov.example/sign-in/oidc/callback",
                     admin_app_roles=("ccas.admin",), coordinator_app_roles=("ccas.coordinator",),
                     panel_member_groups=("7a1b2c3d-0000-4000-8000-00000000abcd",))


def test_role_from_claims_maps_roles_and_groups():
    assert role_from_claims({"roles": ["CCAS.Coordinator"]}, OIDC) == "coordinator"
    assert role_from_claims({"roles": ["CCAS.Admin", "CCAS.Coordinator"]}, OIDC) == "admin"
    assert role_from_claims({"groups": ["7a1b2c3d-0000-4000-8000-00000000abcd"]}, OIDC) == "panel_member"
    assert role_from_claims({"groups": ["7a1b2c3d-0000-4000-8000-00000000abcd"], "roles": ["CCAS.Admin"]},
                            OIDC) == "admin"


def test_role_from_claims_rejects_token_without_allowed_role():
    assert role_from_claims({}, OIDC) is None
    assert role_from_claims({"roles": ["Other.App.Role"], "groups": ["00000000-0000-4000-8000-000000000000"]},
                            OIDC) is None
    # A group id listed as an app role value, or the reverse, does not count.
    assert role_from_claims({"roles": ["7a1b2c3d-0000-4000-8000-00000000abcd"]}, OIDC) is None
    assert role_from_claims({"groups": ["ccas.admin"]}, OIDC) is None


class _FakeMsal:
    """Stands in for msal.ConfidentialClientApplication, returning fixed ID token claims."""

    def __init__(self, claims: dict):
        self.claims = claims

    def initiate_auth_code_flow(self, scopes, redirect_uri):
        return {"auth_uri": "https://login.microsoftonline.example/authorize?state=s1", "state": "s1",
                "redirect_uri": redirect_uri, "code_verifier": "v", "nonce": "n"}

    def acquire_token_by_auth_code_flow(self, flow, response):
        if response.get("state") != flow["state"]:
            raise ValueError("state mismatch")
        return {"id_token_claims": self.claims}


@pytest.fixture
def oidc_web(tmp_path, monkeypatch):
    oidc = {"tenant_id": OIDC.tenant_id, "client_id": OIDC.client_id, "redirect_url": OIDC.redirect_url,
            "admin_app_roles": ["CCAS.Admin"], "coordinator_app_roles": ["CCAS.Coordinator"],
            "panel_member_groups": list(OIDC.panel_member_groups)}
    app, store, _config = make_web_app(tmp_path, web={"oidc": oidc})
    claims = {}
    monkeypatch.setattr(web_auth, "_oidc_client", lambda _oidc: _FakeMsal(claims))
    return app, store, claims


def _oidc_sign_in(client):
    start = client.get("/sign-in/oidc")
    assert start.status_code == 302
    return client.get("/sign-in/oidc/callback?code=c&state=s1")


def test_oidc_token_without_allowed_role_is_refused(oidc_web):
    app, store, claims = oidc_web
    claims.update(oid="11111111-0000-4000-8000-000000000001", tid=OIDC.tenant_id,
                  preferred_username="visitor@severnshire.gov.example", roles=["Some.Other.Role"])
    client = app.test_client()
    response = _oidc_sign_in(client)
    assert response.status_code == 403
    assert "not authorised" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert AccountStore(store).list_users() == []
    assert _audit(store, "sign_in_failed")[-1].detail == {"reason": "oidc_no_allowed_role"}


def test_oidc_token_from_other_tenant_is_refused(oidc_web):
    app, store, claims = oidc_web
    claims.update(oid="11111111-0000-4000-8000-000000000002", tid="99999999-0000-4000-8000-000000000000",
                  preferred_username="someone@elsewhere.example", roles=["CCAS.Admin"])
    assert _oidc_sign_in(app.test_client()).status_code == 403
    assert AccountStore(store).list_users() == []


def test_oidc_sign_in_creates_account_by_oid(oidc_web):
    app, store, claims = oidc_web
    claims.update(oid="11111111-0000-4000-8000-000000000003", tid=OIDC.tenant_id,
                  preferred_username="Casey.Coordinator@severnshire.gov.example", name="Casey Coordinator",
                  roles=["CCAS.Coordinator"])
    client = app.test_client()
    assert _oidc_sign_in(client).headers["Location"] == "/"
    assert "Signed in as Casey Coordinator" in client.get("/").get_data(as_text=True)

    claims.update(roles=[], groups=list(OIDC.panel_member_groups), name="Casey C.")
    other = app.test_client()
    assert _oidc_sign_in(other).status_code == 302
    users = AccountStore(store).list_users()
    assert len(users) == 1
    assert users[0].username == "casey.coordinator@severnshire.gov.example"
    assert users[0].role == "panel_member"
    assert users[0].oidc and not users[0].local_password


def test_oidc_callback_with_wrong_state_is_refused(oidc_web):
    app, _store, claims = oidc_web
    claims.update(oid="11111111-0000-4000-8000-000000000004", tid=OIDC.tenant_id, roles=["CCAS.Admin"])
    client = app.test_client()
    client.get("/sign-in/oidc")
    assert client.get("/sign-in/oidc/callback?code=c&state=forged").status_code == 403
    assert client.get("/").status_code == 302


def test_oidc_routes_absent_when_not_configured(web):
    app, _store, _config = web
    client = app.test_client()
    assert client.get("/sign-in/oidc").status_code == 404
    assert "Microsoft" not in client.get("/sign-in").get_data(as_text=True)


# The users command -------------------------------------------------------------------

def test_users_command(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite3"}"\n', encoding="utf-8")
    monkeypatch.setenv("NEW_PASSWORD", PASSWORD)
    base = ["--config", str(config), "users"]

    assert main(base + ["add", COORDINATOR, "--role", "coordinator", "--name", "Casey Coordinator",
                        "--password-env", "NEW_PASSWORD"]) == 0
    assert main(base + ["add", COORDINATOR, "--role", "admin", "--password-env", "NEW_PASSWORD"]) == 1
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setenv("SHORT_PASSWORD", "short")
    assert main(base + ["add", ADMIN, "--role", "admin", "--password-env", "SHORT_PASSWORD"]) == 2
    short_error = capsys.readouterr().err
    assert short_error.startswith("ccas-bot: password is shorter than 12 characters")
    assert "configuration key" not in short_error

    assert main(base + ["set-role", COORDINATOR, "admin"]) == 0
    assert main(base + ["disable", COORDINATOR]) == 0
    assert main(base + ["disable", "nobody@severnshire.gov.example"]) == 1
    capsys.readouterr()
    assert main(base + ["list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(rf"{re.escape(COORDINATOR)}\s+admin\s+disabled\s+password\s+never", listing)

    from bot.app import open_store
    from bot.config import load_config

    store = open_store(load_config(config))
    actions = [event.action for event in _audit_all(store)]
    assert actions == ["user_added", "user_role_changed", "user_disabled"]
    assert PASSWORD not in str([event.detail for event in _audit_all(store)])


def _audit_all(store) -> list[AuditEvent]:
    with Session(store.engine) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
