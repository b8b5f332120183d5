"""Sending through EWS: the bot's own MIME, created and sent from the mailbox."""

from __future__ import annotations

import logging

from bot.config import EwsMailboxConfig
from bot.mailboxes.ews import connect_account, ews_errors, import_exchangelib
from replies.mime_recipients import require_only_recipient

log = logging.getLogger(__name__)


class EwsSender:
    """Sends each message with CreateItem, MimeContent and SendAndSaveCopy into Sent Items.

    Sending the MIME, rather than building an EWS message, keeps the headers the bot
    wrote: Message-ID, In-Reply-To, Auto-Submitted, X-Auto-Response-Suppress and the
    loop header.
    """

    def __init__(self, config: EwsMailboxConfig, password: str, mailbox: str) -> None:
        self.config = config
        self.password = password
        self.mailbox = mailbox
        self._account = None

    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        require_only_recipient(raw, recipient, "ews CreateItem")
        exchangelib = import_exchangelib()
        if self._account is None:
            self._account = connect_account(self.config, self.password, self.mailbox)
        with ews_errors("send"):
            exchangelib.Message(account=self._account, mime_content=raw).send(save_copy=True)
        log.debug("ews CreateItem sent one message")
