"""The HTML sanitiser: hostile markup in, harmless markup out."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from parsers.html_safe import message_html, sanitise_html

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

# (name, hostile HTML, text that must not survive)
HOSTILE = [
    ("script element", "<p>Hi</p><script>alert(1)</script>", "alert"),
    ("script in upper case", "<SCRIPT>alert(1)</SCRIPT>", "alert"),
    ("event handler", '<p onclick="steal()">Hi</p>', "onclick"),
    ("image error handler", '<img src=x onerror="steal()">', "onerror"),
    ("body onload", '<body onload="steal()">Hi</body>', "onload"),
    ("javascript link", '<a href="javascript:steal()">Open</a>', "javascript:"),
    ("javascript link mixed case", '<a href=" JaVaScRiPt:steal()">Open</a>', "steal"),
    ("javascript link with entity", '<a href="jav&#x09;ascript:steal()">Open</a>', "steal"),
    ("vbscript link", '<a href="vbscript:msgbox(1)">Open</a>', "vbscript"),
    ("data link", '<a href="data:text/html;base64,PHNjcmlwdD4=">Open</a>', "data:"),
    ("remote image", '<img src="https://tracker.example/pixel.gif?id=42" alt="logo">', "tracker.example"),
    ("protocol-relative image", '<img src="//tracker.example/p.gif">', "tracker.example"),
    ("relative image", '<img src="/messages/1/confirm">', "/messages"),
    ("svg data image", '<img src="data:image/svg+xml;base64,PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+">',
     "svg"),
    ("srcset", '<img srcset="https://tracker.example/a.png 1x">', "tracker.example"),
    ("background attribute", '<table background="https://tracker.example/b.png"><tr><td>x</td></tr></table>',
     "tracker.example"),
    ("css expression", '<div style="width: expression(alert(1))">x</div>', "expression"),
    ("css url", '<div style="background:url(https://tracker.example/c.png)">x</div>', "tracker.example"),
    ("style element", "<style>body{background:url(https://tracker.example/s.png)}</style><p>x</p>", "tracker"),
    ("svg script", "<svg><script>alert(1)</script><circle r=1 /></svg>", "alert"),
    ("svg onload", '<svg onload="alert(1)"><circle r=1 /></svg>', "onload"),
    ("math element", '<math><mtext><a href="javascript:alert(1)">x</a></mtext></math>', "javascript"),
    ("iframe", '<iframe src="https://evil.example/"></iframe>', "evil.example"),
    ("object", '<object data="https://evil.example/x.swf"></object>', "evil.example"),
    ("embed", '<embed src="https://evil.example/x.swf">', "evil.example"),
    ("form", '<form action="https://evil.example/"><input name="password"></form>', "evil.example"),
    ("form button", '<button formaction="https://evil.example/">Go</button>', "evil.example"),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example/">', "evil.example"),
    ("base element", '<base href="https://evil.example/"><a href="x">x</a>', "evil.example"),
    ("link stylesheet", '<link rel="stylesheet" href="https://tracker.example/s.css">', "tracker.example"),
    ("target blank", '<a href="https://ok.example/" target="_blank">x</a>', "target"),
    ("comment", "<!-- <script>alert(1)</script> --><p>x</p>", "alert"),
    ("id clobbering", '<p id="main-content" name="csrf_token">x</p>', "csrf_token"),
    ("broken markup", '<p <script>alert(1)</script>', "<script"),
]


@pytest.mark.parametrize("name, html, forbidden", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_markup_removed(name, html, forbidden):
    cleaned = sanitise_html(html)

    assert forbidden.lower() not in cleaned.lower()
    assert "<script" not in cleaned.lower()
    assert " on" not in cleaned.lower().replace(" only", "")


def test_harmless_markup_kept():
    html = ('<p>Dear <strong>team</strong>,</p><ul><li>one</li></ul>'
            '<table><tr><td colspan="2">cell</td></tr></table><blockquote>quoted</blockquote>')

    cleaned = sanitise_html(html)

    assert "<strong>team</strong>" in cleaned
    assert "<li>one</li>" in cleaned
    assert 'colspan="2"' in cleaned
    assert "<blockquote>quoted</blockquote>" in cleaned


def test_links_get_noopener_noreferrer():
    cleaned = sanitise_html('<a href="https://portal.example/form">the form</a>')

    assert 'href="https://portal.example/form"' in cleaned
    assert 'rel="noopener noreferrer"' in cleaned


def test_mailto_link_kept():
    assert 'href="mailto:ccas@council.example"' in sanitise_html('<a href="mailto:ccas@council.example">x</a>')


def test_raster_data_image_kept():
    cleaned = sanitise_html(f'<img src="{PNG}" alt="signature">')

    assert f'src="{PNG}"' in cleaned
    assert 'alt="signature"' in cleaned


def test_empty_input():
    assert sanitise_html("") == ""


def test_message_html_inlines_cid_images():
    message = EmailMessage()
    message["From"] = "a@school.example"
    message["Subject"] = "Logo"
    message.set_content("text")
    message.add_alternative('<p>Hello <img src="cid:logo1@school.example"></p>', subtype="html")
    message.get_payload()[1].add_related(base64.b64decode(PNG.split(",", 1)[1]), "image", "png",
                                         cid="<logo1@school.example>")

    html = sanitise_html(message_html(message.as_bytes()))

    assert 'src="data:image/png;base64,' in html
    assert "cid:" not in html


def test_message_html_plain_text_message():
    message = EmailMessage()
    message["Subject"] = "Plain"
    message.set_content("only text")

    assert message_html(message.as_bytes()) == ""
