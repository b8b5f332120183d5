"""Take inline uuencoded files out of a plain-text body.

Lotus Notes, Outlook Express and some scanners send attachments as uuencoded blocks
inside text/plain: a "begin 644 name" line, lines of encoded data, and an "end" line.
A mail client shows such a block as an attachment, so the reader does the same. Left in
the text, a block of a few hundred kilobytes of encoded characters would also be read
word by word by every later step.
"""

from __future__ import annotations

import binascii
import re

_BEGIN = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+?)[ \t]*$", re.MULTILINE)
_END = re.compile(r"^end[ \t]*$", re.MULTILINE)

# Blocks taken out of one body. Any block after this many stays in the text.
MAX_BLOCKS = 50


def split_uuencoded(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Return the text without its uuencoded blocks, and each block's (file name, data).

    A "begin" line without a matching "end" line is ordinary text and stays.
    """
    files: list[tuple[str, bytes]] = []
    pieces: list[str] = []
    position = 0
    while len(files) < MAX_BLOCKS:
        begin = _BEGIN.search(text, position)
        if begin is None:
            break
        end = _END.search(text, begin.end())
        if end is None:
            break
        data = _decode_lines(text[begin.end():end.start()].splitlines())
        if data is None:
            pieces.append(text[position:end.end()])
        else:
            pieces.append(text[position:begin.start()])
            files.append((begin.group(1).strip(), data))
        position = end.end()
    if not files:
        return text, []
    pieces.append(text[position:])
    return "".join(pieces), files


def _decode_lines(lines: list[str]) -> bytes | None:
    """Decode the data lines of one block, or return None when they are not uuencoded data."""
    chunks = []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            continue
        try:
            raw = line.encode("ascii")
        except UnicodeEncodeError:
            return None
        try:
            chunks.append(binascii.a2b_uu(raw))
        except binascii.Error:
            # Some encoders pad lines with extra characters. Only the length that the
            # line's first character declares is read, as the uu module of Python 3.11 does.
            length = (((raw[0] - 32) & 63) * 4 + 5) // 3
            try:
                chunks.append(binascii.a2b_uu(raw[:length]))
            except binascii.Error:
                return None
    return b"".join(chunks)
