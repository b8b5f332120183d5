"""Errors, split by whose move it is.

    CcasError
    ├── ConfigError      the operator's configuration is missing or invalid:
    │                    stop at start-up and name the key to fix.
    ├── MessageError     the message itself is at fault (unreadable, too large):
    │                    the message needs a person; log at info, no traceback.
    └── RemoteError      a remote system (IMAP, SMTP, database) failed or timed out:
                         leave the message for the next poll; log at warning.

Anything else that escapes a pipeline step is a bug: it is logged with its
traceback and the message goes to a person.
"""


class CcasError(Exception):
    """Base class of every error the bot raises on purpose."""


class ConfigError(CcasError):
    """Raised when a configuration value is missing or invalid; the caller stops."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        """`key` is the dotted configuration key at fault, or "" when no key is at fault (a
        missing config file, a command-line value), in which case `problem` is the whole message."""
        self.key = key
        message = f"configuration key {key!r}: {problem}" if key else problem
        if fix:
            message += f"; {fix}"
        super().__init__(message)


class MessageError(CcasError):
    """Raised when a message cannot be processed because of its content."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RemoteError(CcasError):
    """Raised when a remote system fails; the caller retries on the next poll."""


def describe_error(error: BaseException) -> str:
    """Describe a library or network error in one line for a log or message.

    Library errors name the host, port or server response, never message content.
    """
    text = " ".join(str(error).split())[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
