"""Build small PDF and DOCX files for tests, so no document is copied from elsewhere.

The PDFs are written object by object with a correct cross-reference table, because a
reader that has to rebuild a broken table would hide faults in the reader under test.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import docx
import pypdf


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text_stream(lines: list[str]) -> bytes:
    """Return a content stream that draws each line in Helvetica, top to bottom."""
    commands = ["BT", "/F1 11 Tf", "14 TL", "72 760 Td"]
    for line in lines:
        commands.append(f"({_escape(line)}) Tj T*")
    commands.append("ET")
    return "\n".join(commands).encode("latin-1")


def _image_stream() -> bytes:
    """Return a content stream that paints the page's one image over the whole page."""
    return b"q 612 0 0 792 0 0 cm /Im1 Do Q"


def _assemble(objects: list[bytes]) -> bytes:
    """Number the objects from 1, write them with a cross-reference table; object 1 is the catalogue."""
    output = io.BytesIO()
    output.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(output.tell())
        output.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = output.tell()
    output.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        output.write(f"{offset:010d} 00000 n \n".encode())
    output.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return output.getvalue()


def _stream_object(data: bytes, extra: str = "") -> bytes:
    compressed = zlib.compress(data)
    header = f"<< /Length {len(compressed)} /Filter /FlateDecode {extra}>>\nstream\n".encode()
    return header + compressed + b"\nendstream"


def make_pdf(pages: list[list[str]] | None = None, *, scanned_pages: int = 0) -> bytes:
    """Return a PDF with one page per list of text lines, or `scanned_pages` image-only pages."""
    pages = pages or []
    page_count = len(pages) + scanned_pages
    # Objects: 1 catalogue, 2 page tree, 3 font, 4 image, then a page and its content per page.
    first_page = 5
    kids = " ".join(f"{first_page + 2 * index} 0 R" for index in range(page_count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {page_count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        _stream_object(bytes([0x80]) * 64,
                       "/Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray "
                       "/BitsPerComponent 8 "),
    ]
    contents = [_text_stream(lines) for lines in pages] + [_image_stream()] * scanned_pages
    for index, content in enumerate(contents):
        content_number = first_page + 2 * index + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> "
            f"/Contents {content_number} 0 R >>".encode()
        )
        objects.append(_stream_object(content))
    return _assemble(objects)


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    """Return `data` encrypted with RC4-128, which pypdf writes without an extra package."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None, *,
              title: str | None = None, header: str | None = None) -> bytes:
    """Return a DOCX with an optional Title-styled line, paragraphs, one table and a page header."""
    document = docx.Document()
    if header:
        document.sections[0].header.paragraphs[0].text = header
    if title:
        document.add_paragraph(title, style="Title")
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=max(len(row) for row in table))
        for row_cells, row in zip(grid.rows, table):
            for cell, text in zip(row_cells.cells, row):
                cell.text = text
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def make_zip_bomb_docx(member_bytes: int) -> bytes:
    """Return a valid DOCX plus one extra member of `member_bytes` zeros, which deflates to almost nothing."""
    base = make_docx(["Early Help Assessment"])
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as source, zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info.filename))
        with target.open("word/media/padding.bin", "w", force_zip64=True) as member:
            chunk = bytes(1024 * 1024)
            for _ in range(member_bytes // len(chunk)):
                member.write(chunk)
    return output.getvalue()
