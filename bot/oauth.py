"""App-only OAuth 2.0 access tokens from Microsoft Entra ID (client credentials grant, msal).

Graph and IMAP XOAUTH2 against Exchange Online both sign in as the application, with
a certificate or a client secret, never as a person. One msal application is kept per
set of credentials for the life of the process, because msal caches the token in it
and requests a new one from Entra ID only when the cached token is close to expiry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import msal
import requests

from bot.errors import ConfigError, RemoteError

log = logging.getLogger(__name__)

# Entra ID error codes that mean the request may succeed later (RFC 6749 section 5.2 and
# the OpenID Connect extension); every other error code means the configuration is wrong.
_TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}


@dataclass(frozen=True)
class ClientCredentials:
    """Sign-in settings of one app registration, with the configuration keys an operator fixes them with.

    `credential` is "certificate" (a PEM text holding the private key and its certificate)
    or "secret". `config_prefix` names the configuration table, such as "mailbox.graph",
    so that errors point at the keys to fix.
    """

    authority_url: str
    tenant_id: str
    client_id: str
    credential: str
    secret: str = field(default="", repr=False)
    certificate_pem: str = field(default="", repr=False)
    ca_file: str = ""
    timeout_seconds: int = 30
    config_prefix: str = ""
    tenant_key: str = "tenant_id"
    client_key: str = "client_id"


class TokenSource:
    """A source of app-only access tokens for one scope, served from msal's cache while one is valid."""

    def __init__(self, credentials: ClientCredentials, scope: str) -> None:
        self.credentials = credentials
        self.scope = scope
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        """Return an access token; raise ConfigError for rejected credentials, RemoteError otherwise."""
        with self._lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[self.scope])
            except requests.RequestException as error:
                raise RemoteError(f"token request failed: {type(error).__name__}") from error
        if "access_token" in result:
            # msal 1.25 and later report where the token came from; only a new one is logged.
            if result.get("token_source") == "identity_provider":
                log.info("access token acquired from Microsoft Entra ID for scope %s, client %s",
                         self.scope, self.credentials.client_id)
            return result["access_token"]
        self._raise_for(result)
        raise AssertionError("unreachable")

    def _application(self) -> msal.ConfidentialClientApplication:
        # msal fetches the tenant's OpenID configuration when the application is built,
        # so it is built on first use, where a network failure is an ordinary RemoteError.
        if self._app is not None:
            return self._app
        credentials = self.credentials
        authority = f"{credentials.authority_url.rstrip('/')}/{credentials.tenant_id}"
        try:
            self._app = msal.ConfidentialClientApplication(
                credentials.client_id,
                client_credential=_client_credential(credentials),
                authority=authority,
                # Only the configured authority is contacted; msal would otherwise ask
                # login.microsoftonline.com to vouch for a host it does not know.
                instance_discovery=False,
                http_client=HttpSession(credentials.ca_file, credentials.timeout_seconds),
            )
        except requests.RequestException as error:
            raise RemoteError(f"token authority unreachable: {type(error).__name__}") from error
        except ValueError as error:
            # msal raises ValueError for an unknown tenant (the discovery document
            # returned 400 or 404) and for a private key or certificate it cannot read.
            raise ConfigError(self._key(credentials.tenant_key),
                              f"msal could not use the authority or credential ({_first_line(error)})",
                              "check the tenant id, authority_url and the certificate in the environment") from None
        return self._app

    def _raise_for(self, result: dict) -> None:
        code = str(result.get("error", "unknown_error"))
        # error_codes contains Entra ID's AADSTS numbers, which name the cause without any
        # secret or personal data, for example 7000215 for an invalid client secret.
        numbers = ",".join(str(number) for number in result.get("error_codes", []))
        detail = f"{code} (AADSTS {numbers})" if numbers else code
        if code in _TRANSIENT_ERRORS:
            raise RemoteError(f"token request failed: {detail}")
        raise ConfigError(self._key(self.credentials.client_key),
                          f"Microsoft Entra ID rejected the token request: {detail}",
                          "check the client id, the credential and the admin consent for the app")

    def _key(self, name: str) -> str:
        prefix = self.credentials.config_prefix
        return f"{prefix}.{name}" if prefix else name


class HttpSession(requests.Session):
    """A requests Session with a default timeout, whose `ca_file` wins over the environment.

    requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE replace a Session's own `verify`
    (requests 2.x, Session.merge_environment_settings) but not a per-request one, so the
    configured CA file is passed with every request. Without one, the environment's CA
    bundle or the system store verifies as usual.
    """

    def __init__(self, ca_file: str = "", timeout_seconds: float = 30) -> None:
        super().__init__()
        self.ca_file = ca_file
        self.timeout_seconds = timeout_seconds

    def request(self, method, url, *args, **kwargs):
        if self.ca_file and kwargs.get("verify") in (None, True):
            kwargs["verify"] = self.ca_file
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_seconds
        return super().request(method, url, *args, **kwargs)


_SOURCES: dict[tuple[ClientCredentials, str], TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def token_source(credentials: ClientCredentials, scope: str) -> TokenSource:
    """Return the process-wide TokenSource for these credentials and scope, creating it once."""
    key = (credentials, scope)
    with _SOURCES_LOCK:
        source = _SOURCES.get(key)
        if source is None:
            source = _SOURCES[key] = TokenSource(credentials, scope)
        return source


def _client_credential(credentials: ClientCredentials) -> str | dict:
    if credentials.credential == "secret":
        return credentials.secret
    # With the certificate beside the key, msal signs the client assertion with PS256 and
    # the certificate's SHA-256 thumbprint (msal 1.35 and later), rather than a SHA-1 one.
    return {"private_key": credentials.certificate_pem, "public_certificate": credentials.certificate_pem}


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
