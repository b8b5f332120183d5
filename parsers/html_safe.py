"""Showing a message's HTML body to a coordinator without running anything the sender wrote.

`sanitise_html` keeps an allow-list of harmless tags and attributes (nh3, the Python
binding of the Rust crate ammonia). It removes scripts, styles, frames, objects, forms,
event handlers and every URL scheme but http, https and mailto on links. Images keep only
`data:` URLs of raster types. A remote image would tell the sender when the message was
opened, so its `src` is removed. `message_html` takes the HTML body out of the raw bytes
and turns the message's own inline images (`cid:` references) into `data:` URLs, so they
still show.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
import re
from email.message import EmailMessage

import nh3

log = logging.getLogger(__name__)

ALLOWED_TAGS = frozenset({
    "a", "abbr", "acronym", "address", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code",
    "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre",
    "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
})
# Tags removed together with their content: code, styles, embedded documents and metadata.
REMOVED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
    "noembed", "noframes", "template", "title", "head", "svg", "math", "select", "textarea", "button",
})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "acronym": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "table": {"summary"},
    "time": {"datetime"},
    "q": {"cite"},
    "blockquote": {"cite"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# Raster images only: an SVG image can carry script when opened on its own.
DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+", re.IGNORECASE)
# Largest inline image turned into a data: URL; a larger one is left out of the page.
MAX_INLINE_IMAGE_BYTES = 2 * 1024 * 1024
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Keep a URL attribute only when it is safe to show; every other allowed attribute stays."""
    if attribute == "src":
        return value if tag == "img" and DATA_IMAGE.fullmatch(value.strip()) else None
    if attribute in ("href", "cite"):
        scheme = _SCHEME.match(value)
        return value if scheme and scheme.group(1).lower() in LINK_SCHEMES else None
    return value


def sanitise_html(html: str) -> str:
    """Return `html` reduced to harmless markup, safe to place inside a page as it is."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(REMOVED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=set(LINK_SCHEMES) | {"data"},
    )


def message_html(raw: bytes) -> str:
    """Return the HTML body of a raw message with its inline images as data: URLs, or "".

    Only the message's own body is read, not a forwarded message inside it. The result
    still needs `sanitise_html` before it is shown.
    """
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("html",)) if isinstance(message, EmailMessage) else None
        if body is None or body.get_content_type() != "text/html":
            return ""
        html = body.get_content()
    except Exception:  # noqa: BLE001 - broken mail shows its text body instead
        log.warning("the HTML body of a message could not be read; its text body is shown instead")
        return ""
    return _inline_images(message, html)


def _inline_images(message: EmailMessage, html: str) -> str:
    images: dict[str, str] = {}
    for part in message.walk():
        content_id = (part.get("Content-ID") or "").strip().strip("<>").lower()
        if not content_id or part.get_content_maintype() != "image":
            continue
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001 - an unreadable image is left out
            continue
        if len(payload) <= MAX_INLINE_IMAGE_BYTES:
            encoded = base64.b64encode(payload).decode("ascii")
            images[content_id] = f"data:{part.get_content_type()};base64,{encoded}"

    def replace(found: re.Match[str]) -> str:
        return images.get(found.group(1).lower(), "")

    return re.sub(r"cid:([^\"'\s>)]+)", replace, html, flags=re.IGNORECASE)
