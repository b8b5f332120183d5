"""Throw-away servers on 127.0.0.1 for the tests and the benchmarks: Dovecot IMAP and PostgreSQL.

They listen only on 127.0.0.1, on ports chosen free at start. Dovecot uses TLS certificates
that generate_tls_material() issues from a fresh self-signed CA, so clients verify the
server against `ca_file` as they would in production. PostgresServer runs a private
cluster in a temporary folder (initdb, then the server on a free port and on a unix socket
in that folder), with trust authentication and durability switched off for speed; nothing
it writes survives close(). PostgreSQL refuses to run as root, so as root the cluster
belongs to the unprivileged `postgres` user that Debian's package creates.

tests/servers.py re-exports these for the tests and adds the SMTP server.
"""

from __future__ import annotations

import base64
import datetime
import glob
import grp
import hashlib
import hmac
import ipaddress
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from imapclient import IMAPClient

LOOPBACK_HOST = "127.0.0.1"

# Bounds for waiting on servers: generous for a loaded CI machine, and small enough to fail fast.
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 5.0
CLIENT_TIMEOUT_SECONDS = 10.0


class ServerStartError(RuntimeError):
    """A test server did not start, or did not accept connections in time."""


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free when checked.

    Another process can take the port before the caller binds it, so callers that bind
    later must report a clear error when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        return probe.getsockname()[1]


# --- TLS material -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files of a test CA and of a server certificate it issued for localhost and 127.0.0.1."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """Build a server-side context that presents the server certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Build a client-side context that trusts only the test CA and checks host names."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def generate_tls_material(directory: Path, *, valid_days: int = 30) -> TlsMaterial:
    """Write a new self-signed CA and a server certificate for localhost into `directory`.

    The server certificate names DNS "localhost" and the IP addresses 127.0.0.1 and ::1.
    Keys are unencrypted EC P-256 keys, because generating them takes milliseconds.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccas-bot test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    material = TlsMaterial(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server-cert.pem",
        key_file=directory / "server-key.pem",
    )
    material.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    material.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    material.key_file.chmod(0o600)
    return material


# --- Dovecot ----------------------------------------------------------------------------------


def find_dovecot_binary() -> str | None:
    """Return the path of the dovecot binary, or None when it is not installed.

    Debian installs it as /usr/sbin/dovecot, which is not on the PATH of non-root users.
    """
    found = shutil.which("dovecot")
    if found:
        return found
    if os.access("/usr/sbin/dovecot", os.X_OK):
        return "/usr/sbin/dovecot"
    return None

def dovecot_version(binary: str) -> tuple[int, int, int]:
    """Return (major, minor, patch) from `dovecot --version`, for example (2, 3, 19) for "2.3.19.1 (9b53102964)"."""
    output = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    match = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", output)
    if match is None:
        raise ServerStartError(f"cannot parse the output of `{binary} --version`: {output!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class _DovecotAccounts:
    """System accounts that the Dovecot processes run as, by name and id."""

    login_user: str
    internal_user: str
    internal_group: str
    mail_uid: int
    mail_gid: int
    root: bool

    @classmethod
    def for_current_process(cls) -> _DovecotAccounts:
        """Pick unprivileged accounts when running as root, else the current user for everything.

        As root, Dovecot's login processes run as `dovenull`, its internal services as
        `dovecot` (both created by the Debian package), and mail access as `nobody`.
        """
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            return cls("dovenull", "dovecot", "dovecot", nobody.pw_uid, nobody.pw_gid, root=True)
        current_user = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(os.getegid()).gr_name
        return cls(
            current_user.pw_name,
            current_user.pw_name,
            group,
            current_user.pw_uid,
            os.getegid(),
            root=False,
        )


class DovecotServer:
    """A throw-away Dovecot IMAP server in its own temporary directory.

    It serves one user from a passwd-file with a plain password, stores mail as Maildir
    under the temporary directory and logs to `log_file`. `port` is a plain IMAP port
    that offers STARTTLS and `tls_port` an implicit-TLS (IMAPS) port, both on 127.0.0.1.
    PLAIN and LOGIN authenticate with `password`. XOAUTH2 and OAUTHBEARER accept a JWT
    from make_oauth2_token(), which Dovecot validates locally with an HMAC key.

    Dovecot treats a connection whose remote and local addresses are equal as secured,
    so on 127.0.0.1 it accepts a password on the plain port without STARTTLS, even with
    `ssl = required` (seen with Dovecot 2.3.19). Tests of the bot's TLS policy must
    therefore check what the client sends.

    Use it as a context manager, or call start() and close().
    """

    def __init__(
        self,
        tls: TlsMaterial | None = None,
        *,
        username: str = "triage@council.example",
        password: str | None = None,
    ) -> None:
        """Write the server's files into a new temporary directory. Nothing listens until start()."""
        binary = find_dovecot_binary()
        if binary is None:
            raise ServerStartError(
                "dovecot is not installed; run `make test`, which installs it with "
                "scripts/install-test-deps.sh"
            )
        self.binary = binary
        self.version = dovecot_version(binary)
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.host = LOOPBACK_HOST
        self.port: int | None = None
        self.tls_port: int | None = None
        self._accounts = _DovecotAccounts.for_current_process()
        self._process: subprocess.Popen[bytes] | None = None

        # A short path directly under /tmp, whatever TMPDIR is set to, because Dovecot's UNIX
        # sockets live in base_dir and a socket path may not exceed 107 bytes. mkdtemp makes it 0700, but Dovecot's
        # unprivileged processes must reach their sockets and files below it.
        self.directory = Path(tempfile.mkdtemp(prefix="ccas-dovecot-", dir="/tmp"))
        self.directory.chmod(0o755)
        self.base_dir = self.directory / "run"
        self.state_dir = self.directory / "state"
        self.config_file = self.directory / "dovecot.conf"
        self.users_file = self.directory / "users"
        self.log_file = self.directory / "dovecot.log"
        self.stderr_file = self.directory / "dovecot.stderr"
        self.home = self.directory / "home" / self.username
        self.maildir_root = self.home / "Maildir"
        self.oauth2_config_file = self.directory / "oauth2.conf.ext"
        self.oauth2_keys_dir = self.directory / "oauth2-keys"

        if tls is None:
            tls = generate_tls_material(self.directory / "tls")
        self.tls = tls
        self.ca_file = tls.ca_file

        self._oauth2_key = secrets.token_bytes(32)
        self._write_files()

    # --- files ---

    def _write_files(self) -> None:
        for directory in (self.base_dir, self.state_dir):
            directory.mkdir(mode=0o755)
        self.home.mkdir(parents=True)
        if self._accounts.root:
            os.chown(self.home, self._accounts.mail_uid, self._accounts.mail_gid)

        # passwd-file fields: user:password:uid:gid:gecos:home:shell:extra. Empty uid and
        # gid fall back to mail_uid and mail_gid. The auth process reads this file as
        # default_internal_user, so it must be world-readable, which is acceptable
        # because the password is a throw-away test secret.
        self.users_file.write_text(f"{self.username}:{{PLAIN}}{self.password}::::{self.home}::\n")
        self.users_file.chmod(0o644)

        # Dovecot looks an HMAC key up in the dict as shared/<azp>/<alg>/<kid>, and the fs
        # dict stores a shared key at <prefix><azp>/<alg>/<kid>. Tokens from
        # make_oauth2_token() carry neither azp nor kid, so both default to "default".
        key_file = self.oauth2_keys_dir / "default" / "HS256" / "default"
        key_file.parent.mkdir(parents=True)
        key_file.write_text(base64.b64encode(self._oauth2_key).decode("ascii"))
        for path in (self.oauth2_keys_dir, key_file.parent.parent, key_file.parent):
            path.chmod(0o755)
        key_file.chmod(0o644)

    def _render_config(self) -> str:
        if self.version >= (2, 4, 0):
            return self._render_config_2_4()
        return self._render_config_2_3()

    def _common_service_config(self) -> str:
        # Without root, Dovecot cannot chroot its login processes or anvil.
        chroot = "" if self._accounts.root else "  chroot =\n"
        return (
            "service imap-login {\n"
            f"{chroot}"
            "  inet_listener imap {\n"
            f"    address = {LOOPBACK_HOST}\n"
            f"    port = {self.port}\n"
            "  }\n"
            "  inet_listener imaps {\n"
            f"    address = {LOOPBACK_HOST}\n"
            f"    port = {self.tls_port}\n"
            "    ssl = yes\n"
            "  }\n"
            "}\n"
            "service anvil {\n"
            f"{chroot}"
            # Mode 0 turns off the auth penalty, which would otherwise delay every failed
            # login after the first from 127.0.0.1 by several seconds.
            "  unix_listener anvil-auth-penalty {\n"
            "    mode = 0\n"
            "  }\n"
            "}\n"
        )

    def _render_config_2_3(self) -> str:
        accounts = self._accounts
        return f"""\
# Generated by tests/servers.py for Dovecot 2.3.
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = {self.directory.name}
protocols = imap
listen = {LOOPBACK_HOST}
log_path = {self.log_file}
auth_verbose = yes
# Skip the default 2 s delay after a failed login. Dovecot 2.3.19 still sent each
# failure reply about 0.5 s after the attempt in tests/test_servers.py.
auth_failure_delay = 0
auth_verbose_passwords = no

default_login_user = {accounts.login_user}
default_internal_user = {accounts.internal_user}
default_internal_group = {accounts.internal_group}
mail_uid = {accounts.mail_uid}
mail_gid = {accounts.mail_gid}
# Accept system accounts below Dovecot's default minimum uid and gid of 500 as mail owners.
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
}}

ssl = yes
ssl_cert = <{self.tls.cert_file}
ssl_key = <{self.tls.key_file}
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login xoauth2 oauthbearer
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.oauth2_config_file}
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {self.users_file}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_file}
}}

{self._common_service_config()}"""

    def _render_oauth2_config_2_3(self) -> str:
        return f"""\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={self.oauth2_keys_dir}/
username_attribute = sub
"""

    def _render_config_2_4(self) -> str:
        # NOTE: written from the Dovecot 2.4 documentation and never run here, because the
        # test machines have Dovecot 2.3. Run tests/test_servers.py on 2.4 before relying on it.
        accounts = self._accounts
        return f"""\
# Generated by tests/servers.py for Dovecot 2.4.
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = {self.directory.name}
protocols = imap
listen = {LOOPBACK_HOST}
log_path = {self.log_file}
auth_verbose = yes
# Skip the default 2 s delay after a failed login.
auth_failure_delay = 0

default_login_user = {accounts.login_user}
default_internal_user = {accounts.internal_user}
default_internal_group = {accounts.internal_group}
mail_uid = {accounts.mail_uid}
mail_gid = {accounts.mail_gid}
# Accept system accounts below Dovecot's default minimum uid and gid of 500 as mail owners.
first_valid_uid = 1
first_valid_gid = 1
mail_driver = maildir
mail_path = ~/Maildir
namespace inbox {{
  inbox = yes
}}

ssl = yes
ssl_server_cert_file = {self.tls.cert_file}
ssl_server_key_file = {self.tls.key_file}
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login xoauth2 oauthbearer
passdb passwd-file {{
  passwd_file_path = {self.users_file}
  default_password_scheme = PLAIN
}}
userdb passwd-file {{
  passwd_file_path = {self.users_file}
}}

# Dovecot 2.4 validates XOAUTH2 and OAUTHBEARER tokens without a passdb.
oauth2_introspection_mode = local
oauth2_username_attribute = sub
oauth2_local_validation {{
  dict fs {{
    fs posix {{
      prefix = {self.oauth2_keys_dir}/
    }}
  }}
}}

{self._common_service_config()}"""

    # --- lifecycle ---

    def start(self) -> None:
        """Start Dovecot and wait until both ports serve an IMAP greeting.

        Raises ServerStartError, with the tail of Dovecot's log, when Dovecot exits or
        does not greet within STARTUP_TIMEOUT_SECONDS.
        """
        if self.is_running():
            return
        if self.port is None or self.tls_port is None:
            self.port = find_free_port()
            self.tls_port = find_free_port()
            while self.tls_port == self.port:
                self.tls_port = find_free_port()
        self.config_file.write_text(self._render_config())
        if self.version < (2, 4, 0):
            self.oauth2_config_file.write_text(self._render_oauth2_config_2_3())

        # -F keeps the master process in the foreground, so self._process is the master
        # and stop() can always reach it by its pid. A new session gives Dovecot its own
        # process group, which stop() kills as a last resort.
        with open(self.stderr_file, "ab") as stderr:
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self._kill()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            exit_code = self._process.poll()
            if exit_code is not None:
                raise ServerStartError(
                    f"dovecot exited with status {exit_code} during start-up.\n{self.diagnostics()}"
                )
            try:
                self._read_greeting(self.port, use_tls=False)
                self._read_greeting(self.tls_port, use_tls=True)
                return
            except (OSError, ServerStartError) as error:
                last_error = error
                time.sleep(0.05)
        raise ServerStartError(
            f"dovecot did not serve IMAP on {self.host}:{self.port} and {self.host}:{self.tls_port} "
            f"within {STARTUP_TIMEOUT_SECONDS:.0f} s (last error: {last_error}).\n{self.diagnostics()}"
        )

    def _read_greeting(self, port: int | None, *, use_tls: bool) -> None:
        assert port is not None
        with socket.create_connection((self.host, port), timeout=1.0) as raw:
            connection: socket.socket = raw
            if use_tls:
                connection = self.tls.client_context().wrap_socket(raw, server_hostname=self.host)
            greeting = connection.recv(256)
            if not greeting.startswith(b"* OK"):
                raise ServerStartError(f"unexpected IMAP greeting on port {port}: {greeting!r}")

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop Dovecot with `dovecot stop`, then kill the master if it is still running.

        A graceful stop takes about a second, because the master of Dovecot 2.3.19 sleeps
        one second after it signals its log process to exit.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            # `dovecot stop` sends SIGTERM and then polls until the master's pid is gone.
            # The master is a child of this process, so it stays a zombie until
            # process.wait() reaps it. That is why `dovecot stop` runs alongside the wait.
            stopper = subprocess.Popen(
                [self.binary, "-c", str(self.config_file), "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            try:
                stopper.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                stopper.kill()
                stopper.wait()
        self._kill()

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        # Dovecot's other processes exit by themselves once the master is gone, but kill
        # any left in its process group, which start() created, so that no port stays bound.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._process = None

    def restart(self) -> None:
        """Stop and start Dovecot again on the same ports, keeping the stored mail."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Kill Dovecot at once and delete its directory, mail included.

        It skips the graceful stop, which takes a second, because the mail is discarded.
        """
        self._kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def diagnostics(self, lines: int = 40) -> str:
        """Return the last `lines` lines of Dovecot's log and of its standard error, for error messages."""
        parts = []
        for label, path in (("log", self.log_file), ("stderr", self.stderr_file)):
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            if tail:
                parts.append(f"--- dovecot {label} ({path}) ---\n{tail}")
        return "\n".join(parts) if parts else f"(dovecot wrote nothing to {self.log_file})"

    # --- XOAUTH2 ---

    def make_oauth2_token(
        self,
        username: str | None = None,
        *,
        expires_in_seconds: int = 3600,
        signing_key: bytes | None = None,
    ) -> str:
        """Return an HS256 JWT access token that this server accepts for XOAUTH2 and OAUTHBEARER.

        A negative `expires_in_seconds` gives an expired token. A `signing_key` other
        than the server's gives a token that Dovecot rejects as badly signed.
        """
        now = int(time.time())
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "sub": username if username is not None else self.username,
            "iat": min(now, now + expires_in_seconds) - 1,
            "exp": now + expires_in_seconds,
        }
        signing_input = (
            _base64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _base64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        key = signing_key if signing_key is not None else self._oauth2_key
        signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{_base64url(signature)}"

    # --- IMAP helpers, acting as the test user ---

    def client_context(self) -> ssl.SSLContext:
        """Build a client TLS context that verifies this server against `ca_file`."""
        return self.tls.client_context()

    def connect(self, *, starttls: bool = False, login: bool = True) -> IMAPClient:
        """Open an IMAP connection over implicit TLS, or over the plain port with STARTTLS.

        With `login`, the connection is logged in as the test user. The caller closes it,
        for example with `with server.connect() as client:`.
        """
        if starttls:
            client = IMAPClient(self.host, port=self.port, ssl=False, timeout=CLIENT_TIMEOUT_SECONDS)
            client.starttls(self.client_context())
        else:
            client = IMAPClient(
                self.host,
                port=self.tls_port,
                ssl=True,
                ssl_context=self.client_context(),
                timeout=CLIENT_TIMEOUT_SECONDS,
            )
        if login:
            client.login(self.username, self.password)
        return client

    def append(self, folder: str, raw_bytes: bytes) -> None:
        """Append one RFC 5322 message to `folder`, which must exist."""
        with self.connect() as client:
            client.append(folder, raw_bytes)

    def create_folder(self, name: str) -> None:
        with self.connect() as client:
            client.create_folder(name)

    def list_uids(self, folder: str) -> list[int]:
        """Return the UIDs of all messages in `folder`, in ascending order."""
        with self.connect() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def fetch_raw(self, folder: str, uid: int) -> bytes:
        """Return the full raw message with `uid` from `folder`, without setting \\Seen.

        Raises KeyError when the folder has no message with that UID.
        """
        with self.connect() as client:
            client.select_folder(folder, readonly=True)
            response = client.fetch([uid], ["BODY.PEEK[]"])
        if uid not in response:
            raise KeyError(f"no message with UID {uid} in folder {folder!r}")
        return response[uid][b"BODY[]"]

    def folder_messages(self, folder: str) -> list[bytes]:
        """Return the raw bytes of every message in `folder`, in ascending UID order."""
        with self.connect() as client:
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            if not uids:
                return []
            response = client.fetch(uids, ["BODY.PEEK[]"])
        return [response[uid][b"BODY[]"] for uid in uids]


# --- PostgreSQL -------------------------------------------------------------------------------

SUPERUSER = "ccas"
POSTGRES_STARTUP_TIMEOUT_SECONDS = 30.0
POSTGRES_SHUTDOWN_TIMEOUT_SECONDS = 10.0
SERVER_SETTINGS = {
    # A throw-away cluster: losing it in a power cut costs nothing, and these make it fast.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "listen_addresses": LOOPBACK_HOST,
    "log_min_messages": "warning",
}


def find_postgres_bin_dir() -> Path | None:
    """Return the folder holding initdb and postgres (the newest under /usr/lib/postgresql), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0)
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        folder = Path(os.path.realpath(initdb)).parent
        if (folder / "postgres").exists():
            return folder
    return None


class PostgresServer:
    """A private PostgreSQL cluster for one test session or one benchmark run."""

    def __init__(self) -> None:
        self.host = LOOPBACK_HOST
        self.port = 0
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    @property
    def socket_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "socket"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database of this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        bin_dir = find_postgres_bin_dir()
        if bin_dir is None:
            raise ServerStartError("PostgreSQL is not installed (no initdb found); `make test` installs it")
        # The parent is /tmp, not a pytest folder: those are private to root, and the
        # postgres user must be able to reach its own data folder.
        self.directory = Path(tempfile.mkdtemp(prefix="ccas-pg-"))
        data = self.directory / "data"
        self.socket_dir.mkdir()
        self._user = _unprivileged_user()
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            for path in (self.directory, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                   "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")
        self.port = find_free_port()
        command = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port),
                   "-k", str(self.socket_dir)]
        for name, value in SERVER_SETTINGS.items():
            command += ["-c", f"{name}={value}"]
        log_file = open(self.directory / "server.log", "wb")
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                             stderr=subprocess.STDOUT, cwd=self.directory,
                                             **self._as_user())
        finally:
            log_file.close()
        self._wait_until_ready()

    def _as_user(self) -> dict:
        if self._user is None:
            return {}
        return {"user": self._user, "group": pwd.getpwnam(self._user).pw_gid, "extra_groups": []}

    def _run(self, command: list[str], what: str) -> None:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, cwd=self.directory,
                                timeout=120, **self._as_user())
        if result.returncode != 0:
            raise ServerStartError(f"{what} failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def _wait_until_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + POSTGRES_STARTUP_TIMEOUT_SECONDS
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise ServerStartError(f"postgres exited with {self._process.returncode}:\n{self.diagnostics()}")
            try:
                with psycopg.connect(host=self.host, port=self.port, user=SUPERUSER, dbname="postgres",
                                     connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ServerStartError(f"postgres did not accept connections within "
                                           f"{POSTGRES_STARTUP_TIMEOUT_SECONDS:.0f} s:\n{self.diagnostics()}") from None
                time.sleep(0.05)

    def diagnostics(self, lines: int = 30) -> str:
        if self.directory is None or not (self.directory / "server.log").exists():
            return ""
        text = (self.directory / "server.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE DATABASE cannot run inside one)."""
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user=SUPERUSER, dbname=database,
                             autocommit=True) as connection:
            connection.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database, as a copy of `template` when given; return its URL."""
        clause = f" TEMPLATE {_identifier(template)}" if template else ""
        self.execute(f"CREATE DATABASE {_identifier(name)}{clause}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection still open to it."""
        self.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: open sessions are ended, nothing waits.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=POSTGRES_SHUTDOWN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=POSTGRES_SHUTDOWN_TIMEOUT_SECONDS)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _unprivileged_user() -> str | None:
    """The user the cluster runs as: None (the current one) unless running as root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServerStartError("running as root needs the `postgres` user, which Debian's postgresql "
                               "package creates; PostgreSQL refuses to run as root") from None
    return "postgres"


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'
