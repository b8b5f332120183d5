"""The parsed form of one incoming message, shared by every pipeline step."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Address:
    """One mailbox from an address header: display name and lower-cased address."""

    name: str
    email: str

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass
class Attachment:
    """A file part of the message (inline images without a filename are not attachments)."""

    filename: str
    content_type: str
    size: int
    payload: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False
    text: str = ""
    kind: str = "other"  # ihcp | eha | medical_evidence | other


@dataclass
class ParsedMessage:
    """The content the reader took from the raw bytes.

    Every field has a safe empty value, so later steps never need to guard against
    a header that was missing or could not be decoded. `defects` lists reason codes
    for anything the reader had to repair or skip.
    """

    message_id: str | None = None
    subject: str = ""
    sender: Address | None = None
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    date: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    return_path: str | None = None
    headers: dict[str, list[str]] = field(default_factory=dict)
    content_type: str = "text/plain"
    text: str = ""
    html_text: str = ""
    new_text: str = ""
    # Text of a forwarded message: a message/rfc822 part, or the part of the body below
    # an inline forward marker. `forwarded_from` is its original author when known.
    forwarded_text: str = ""
    forwarded_from: Address | None = None
    attachments: list[Attachment] = field(default_factory=list)
    encrypted: bool = False
    delivery_status: str | None = None
    returned_headers: dict[str, list[str]] = field(default_factory=dict)
    returned_text: str = ""  # body of the message a delivery report returned
    defects: list[str] = field(default_factory=list)
    # Reason codes from reading the attachments, such as "attachment:encrypted", listed in
    # parsers/attachments.py. A person should look at a file the bot could not read.
    attachment_notes: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        """Return the first value of a header (case-insensitive), or an empty string."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def body(self) -> str:
        """The text a person reads: the plain part, or the HTML part turned into text."""
        return self.html_text or self.text
