"""Turn an HTML mail body into plain text that keeps paragraphs, lines, lists and tables."""

from __future__ import annotations

import logging
import re
import textwrap
from html import unescape

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

logger = logging.getLogger(__name__)


_CONFIG = ParserConfig(display_links=False, display_images=False)

# Characters that mail clients put in HTML for layout only.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def html_to_text(html: str) -> str:
    """Return the text of an HTML document, without style and script content.

    inscriptis does the layout. If it fails (lxml rejects some broken or very deeply nested
    documents) or finds no text, the tag stripper _strip_tags is used instead.
    """
    if not html or not html.strip():
        return ""
    try:
        text = get_text(html, _CONFIG)
    except Exception as error:  # noqa: BLE001 - any parser failure falls back to the stripper
        logger.debug("inscriptis failed, using the fallback stripper: %r", error)
        text = ""

    # libxml2 stops building the tree below 256 levels of nesting and drops that text.
    if not text.strip():
        fallback = _strip_tags(html)
        if fallback.strip():
            text = fallback
    return tidy_text(text)


def tidy_text(text: str) -> str:
    """Normalise line endings and spaces, remove common indentation and collapse blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").translate(_INVISIBLE)
    lines = [line.rstrip() for line in text.split("\n")]
    text = textwrap.dedent("\n".join(lines))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


# Block elements that start a new line, and elements whose content is never text.
_BLOCK = {
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "pre", "hr", "ul", "ol", "dl", "dt", "dd", "section", "article",
}
_SKIP = {"style", "script", "head", "title"}
# One piece of markup: a comment opener, a start or end tag (cut short at the next "<" when
# its ">" is missing), or a declaration. No part can run past the next "<" or ">", so one
# pass over the document is linear in its length.
_MARKUP = re.compile(r"<(?:!--|(/?)([A-Za-z][A-Za-z0-9]*)[^<>]*>?|[!?][^<>]*>?)")
_SPACES = re.compile(r"[ \t\r\n]+")


def _strip_tags(html: str) -> str:
    """Return the text of `html` without tags, with a line break at block elements.

    This is the fallback for documents inscriptis cannot lay out, which are often broken
    or hostile. The standard library's HTMLParser takes time quadratic in the length of
    an unclosed tag, so one pass with _MARKUP is used instead.
    """
    parts: list[str] = []
    position = 0
    while position < len(html):
        markup = _MARKUP.search(html, position)
        if markup is None:
            parts.append(_text(html[position:]))
            break
        parts.append(_text(html[position:markup.start()]))
        position = markup.end()
        if markup.group(0) == "<!--":
            end = html.find("-->", position)
            position = len(html) if end < 0 else end + 3
            continue
        name = (markup.group(2) or "").lower()
        closing = bool(markup.group(1))
        if name in _SKIP and not closing:
            closer = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(html, position)
            position = len(html) if closer is None else closer.end()
        elif name in _BLOCK:
            parts.append("\n")
        elif name in ("td", "th") and not closing:
            parts.append("  ")
    lines = [line.strip() for line in "".join(parts).split("\n")]
    return "\n".join(lines)


def _text(data: str) -> str:
    return _SPACES.sub(" ", unescape(data))
