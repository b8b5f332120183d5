"""Sending through Microsoft Graph: the bot's own MIME, posted to the mailbox's sendMail."""

from __future__ import annotations

import base64
import logging

from bot.errors import RemoteError
from bot.graph import GraphClient
from replies.mime_recipients import require_only_recipient

log = logging.getLogger(__name__)


class GraphSender:
    """Sends each message as MIME with `POST /users/{mailbox}/sendMail`.

    Sending the MIME, rather than a JSON message, keeps every header the bot wrote:
    Message-ID, In-Reply-To, Auto-Submitted, X-Auto-Response-Suppress and the loop
    header. Graph returns 202 Accepted, which means queued for delivery, not delivered,
    and saves a copy in Sent Items.
    """

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def send(self, raw: bytes, recipient: str, envelope_from: str, message_id: str) -> None:
        require_only_recipient(raw, recipient, "graph sendMail")
        # NOTE: Graph rejects request bodies above its size limit, and base64 adds a third,
        # so a forward with a large original attached may fail here. Upload sessions,
        # which large messages need, are not implemented.
        response = self.client.request(
            "POST", self.client.user_url("sendMail"), operation="sendMail",
            data=base64.b64encode(raw), headers={"Content-Type": "text/plain"})
        if response.status_code != 202:
            raise RemoteError(f"graph sendMail returned HTTP {response.status_code}, expected 202")
        log.debug("graph sendMail accepted one message")
