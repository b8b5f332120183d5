"""`ccas-bot run` with IMAP IDLE: poll within seconds of new mail, and at the interval anyway.

A watcher thread keeps a second IMAP connection in IDLE (RFC 2177) on the polled
folder. When the server reports EXISTS (a message was added) it wakes the main
loop, which runs the same poll as the interval poll. The poll opens its own
connection, so IDLE never has to be interrupted to fetch or move mail.

The main loop is a plain loop rather than APScheduler. A wake-up that arrives
while a poll is running must run one more poll straight after it, but APScheduler
skips a job that is due while its only allowed instance is still running.
"""

from __future__ import annotations

import imaplib
import logging
import signal
import threading
import time
from collections.abc import Callable

from bot.config import Config
from bot.errors import ConfigError, RemoteError
from bot.mailboxes.imap import ImapMailbox

log = logging.getLogger(__name__)

# imapclient's errors derive from imaplib's; socket and TLS errors derive from OSError.
_NETWORK_ERRORS = (imaplib.IMAP4.error, OSError)
# How often the watcher leaves its wait on the socket to see whether it should stop.
STOP_CHECK_SECONDS = 1.0
# How long the main loop waits for the watcher to log out when it stops.
WATCHER_JOIN_SECONDS = 10.0


def backoff_seconds(failures: int, maximum: float) -> float:
    """Return the wait after `failures` failures in a row: 1 s, 2 s, 4 s ... at most `maximum`."""
    if failures <= 0:
        return 0.0
    return float(min(2 ** min(failures - 1, 30), maximum))


class IdleWatcher:
    """Keeps an IDLE connection on the polled folder and calls `wake` whenever mail may have arrived.

    It calls `wake` on EXISTS, and once after each (re)connection, because mail may
    have arrived while it was not connected. A failed connection is retried with
    exponential backoff up to `mailbox.imap.reconnect_max_seconds`.
    """

    def __init__(self, config: Config, make_mailbox: Callable[[], ImapMailbox],
                 wake: Callable[[], None], stop: threading.Event) -> None:
        self.imap = config.mailbox.imap
        self.make_mailbox = make_mailbox
        self.wake = wake
        self.stop = stop
        self.thread = threading.Thread(target=self.run, name="imap-idle", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def run(self) -> None:
        """Watch until `stop` is set, reconnecting after failures; the thread's target."""
        failures = 0
        while not self.stop.is_set():
            mailbox: ImapMailbox | None = None
            try:
                mailbox = self.make_mailbox()
                if not self._open(mailbox):
                    return
                if failures:
                    log.info("IDLE connection restored after %d failed attempts", failures)
                failures = 0
                self.wake()
                self._watch(mailbox)
            except ConfigError as error:
                # A rejected login: retried all the same, because an OAuth 2.0 token
                # may be refreshed by then.
                failures += 1
                delay = backoff_seconds(failures, self.imap.reconnect_max_seconds)
                log.error("IDLE login failed: %s; retrying in %.0f s (attempt %d)", error, delay, failures)
                self.stop.wait(delay)
            except (RemoteError, *_NETWORK_ERRORS) as error:
                failures += 1
                delay = backoff_seconds(failures, self.imap.reconnect_max_seconds)
                log.warning("IDLE connection failed (%s); reconnecting in %.0f s (attempt %d)",
                            _describe(error), delay, failures)
                self.stop.wait(delay)
            except Exception:
                failures += 1
                delay = backoff_seconds(failures, self.imap.reconnect_max_seconds)
                log.exception("IDLE watcher failed (bug); reconnecting in %.0f s (attempt %d)", delay, failures)
                self.stop.wait(delay)
            finally:
                if mailbox is not None:
                    mailbox.close()
        log.info("IDLE watcher stopped")

    def _open(self, mailbox: ImapMailbox) -> bool:
        """Log in and examine the folder read-only; return False when the server lacks IDLE."""
        folder, _ = mailbox.open()
        client = mailbox.client
        if not client.has_capability("IDLE"):
            log.warning("the IMAP server does not offer IDLE (RFC 2177); polling at the interval only")
            return False
        # EXAMINE, so this connection never changes flags or claims \Recent.
        client.select_folder(folder, readonly=True)
        log.info("IDLE watching the polled folder; re-issued every %d s", self.imap.idle_timeout_seconds)
        return True

    def _watch(self, mailbox: ImapMailbox) -> None:
        client = mailbox.client
        while not self.stop.is_set():
            client.idle()
            deadline = time.monotonic() + self.imap.idle_timeout_seconds
            while not self.stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(STOP_CHECK_SECONDS, remaining)
                started = time.monotonic()
                responses = client.idle_check(timeout=wait)
                self._handle(responses)
                # idle_check returns nothing early when the socket was readable but held no
                # whole response: the server closed it (imapclient swallows EOF there), or
                # TLS sent a record of its own. Ending IDLE distinguishes the two, because
                # DONE fails on a closed connection.
                if not responses and time.monotonic() - started < wait / 2:
                    break
            _, responses = client.idle_done()
            self._handle(responses)
            # NOTE: an EXISTS that arrives while IDLE is being re-issued can be read into
            # imaplib's buffer together with the "+ idling" line, where idle_check's wait on
            # the socket does not see it. The next re-issue, or the interval poll, finds it.

    def _handle(self, responses: list) -> None:
        for response in responses:
            if len(response) >= 2 and response[1] == b"EXISTS":
                log.debug("IDLE reported EXISTS; waking the poll")
                self.wake()
            elif response and response[0] == b"BYE":
                raise RemoteError("imap server ended the IDLE connection (BYE)")


def run_with_idle(config: Config, poll: Callable[[], None],
                  make_mailbox: Callable[[], ImapMailbox]) -> None:
    """Poll on IDLE wake-ups and at the interval until SIGTERM or SIGINT; a running poll finishes first."""
    stop = threading.Event()
    wake = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %d received; stopping after the current poll", signum)
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    poll_until_stopped(config, poll, make_mailbox, stop, wake)


def poll_until_stopped(config: Config, poll: Callable[[], None], make_mailbox: Callable[[], ImapMailbox],
                       stop: threading.Event, wake: threading.Event) -> None:
    """Run the IDLE watcher and poll on `wake` and at the interval until `stop` is set.

    A wake-up during a poll is kept, so one more poll runs straight after it.
    """
    watcher = IdleWatcher(config, make_mailbox, wake.set, stop)
    watcher.start()
    interval = config.bot.poll_interval_seconds
    log.info("IDLE mode started: polling on new mail and every %d s", interval)
    failures = 0
    while not stop.is_set():
        wake.clear()
        if _poll_guarded(poll):
            failures = 0
            delay = float(interval)
        else:
            failures += 1
            delay = min(backoff_seconds(failures, config.mailbox.imap.reconnect_max_seconds), interval)
            log.warning("poll failed %d times in a row; next poll in %.0f s or on new mail", failures, delay)
        wake.wait(delay)
    watcher.join(WATCHER_JOIN_SECONDS)
    log.info("IDLE mode stopped")


def _poll_guarded(poll: Callable[[], None]) -> bool:
    """Run one poll; log and swallow its error so the loop goes on. Return whether it succeeded."""
    try:
        poll()
    except RemoteError as error:
        log.warning("poll failed, will retry: %s", error)
        return False
    except ConfigError as error:
        log.error("poll failed because of the configuration: %s", error)
        return False
    except Exception:
        log.exception("poll failed (bug); will retry")
        return False
    return True


def _describe(error: BaseException) -> str:
    # Only the type and, for the bot's own errors, the message: imaplib's messages can
    # quote server lines, which may carry addresses or subjects.
    if isinstance(error, RemoteError):
        return str(error)
    return type(error).__name__
