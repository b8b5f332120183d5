"""Turn an HTML mail body into plain text that keeps paragraphs, lines, lists and tables."""

from __future__ import annotations

import logging
import re
import textwrap
from html.parser import HTMLParser

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

logger = logging.getLogger(__name__)

_TAG = re.compile(r"<[^>]*>")
_SKIPPED_BLOCKS = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)

_CONFIG = ParserConfig(display_links=False, display_images=False)

# Characters that mail clients put in HTML for layout only.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def html_to_text(html: str) -> str:
    """Return the text of an HTML document, without style and script content.

    inscriptis does the layout. If it fails (lxml rejects some broken or very deeply nested
    documents), a simple tag stripper from the standard library is used instead.
    """
    if not html or not html.strip():
        return ""
    try:
        text = get_text(html, _CONFIG)
    except Exception as error:  # noqa: BLE001 - any parser failure falls back to the stripper
        logger.debug("inscriptis failed, using the fallback stripper: %r", error)
        text = _strip_tags(html)

    # libxml2 stops building the tree below 256 levels of nesting and drops that text.
    if not text.strip() and _has_text_outside_tags(html):
        text = _strip_tags(html)
    return tidy_text(text)


def _has_text_outside_tags(html: str) -> bool:
    without_blocks = _SKIPPED_BLOCKS.sub(" ", html)
    return bool(_TAG.sub(" ", without_blocks).strip())


def tidy_text(text: str) -> str:
    """Normalise line endings and spaces, remove common indentation and collapse blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").translate(_INVISIBLE)
    lines = [line.rstrip() for line in text.split("\n")]
    text = textwrap.dedent("\n".join(lines))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


class _TagStripper(HTMLParser):
    """Collect text, starting a new line at block elements and skipping style and script."""

    _BLOCK = {
        "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "blockquote", "pre", "hr", "ul", "ol", "dl", "dt", "dd", "section", "article",
    }
    _SKIP = {"style", "script", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("  ")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def _strip_tags(html: str) -> str:
    stripper = _TagStripper()
    try:
        stripper.feed(html)
        stripper.close()
    except Exception as error:  # noqa: BLE001 - keep whatever text was collected
        logger.debug("fallback stripper stopped early: %r", error)
    lines = [line.strip() for line in "".join(stripper.parts).split("\n")]
    return "\n".join(lines)
