"""The fast path for address headers must give exactly what the strict parser gives."""

from __future__ import annotations

import pytest

from parsers.mime_decode import _simple_addresses, _split_address_list, _strict_addresses

COMMON = [
    "jo.hartley@oakfield.sch.example",
    "Jo Hartley <jo.hartley@oakfield.sch.example>",
    "  Jo   Hartley   <Jo.Hartley@Oakfield.sch.example>  ",
    '"Hartley, Jo" <jo.hartley@oakfield.sch.example>',
    '"Jo  Hartley (SENCo)" <jo.hartley@oakfield.sch.example>',
    "<ccas@testshire.gov.example>",
    "ccas@testshire.gov.example, Jo Hartley <jo@oakfield.sch.example>,send@testshire.gov.example",
    "o'brien+ccas@testshire.gov.example",
]

LEFT_TO_STRICT = [
    "J. Hartley <jo@oakfield.sch.example>",
    "=?utf-8?q?Zo=C3=AB?= <zoe@oakfield.sch.example>",
    "Zoë Hartley <zoe@oakfield.sch.example>",
    '"Hartley, Jo" <jo@oakfield.sch.example>, ccas@testshire.gov.example',
    "undisclosed-recipients:;",
    "jo@oakfield.sch.example (Jo Hartley)",
    "Jo <jo..hartley@oakfield.sch.example>",
    '"Jo \\"JH\\" Hartley" <jo@oakfield.sch.example>',
]


@pytest.mark.parametrize("value", COMMON)
def test_fast_path_equals_strict(value):
    fast = _simple_addresses(value)

    assert fast is not None
    assert fast == _strict_addresses("to", value.strip())


@pytest.mark.parametrize("value", LEFT_TO_STRICT)
def test_unusual_shapes_left_to_strict(value):
    assert _simple_addresses(value) is None


@pytest.mark.parametrize(("text", "pieces"), [
    ("a@x.example, b@x.example; c@x.example", ["a@x.example", "b@x.example", "c@x.example"]),
    ('"Hartley, Jo" <jo@x.example>, b@x.example', ['"Hartley, Jo" <jo@x.example>', "b@x.example"]),
    ("Jo <jo@x.example> (Head, Oakfield), b@x.example", ["Jo <jo@x.example> (Head, Oakfield)", "b@x.example"]),
    ("<a,b@x.example>, c@x.example", ["<a,b@x.example>", "c@x.example"]),
    (",, ;", []),
])
def test_address_list_split(text, pieces):
    assert _split_address_list(text) == pieces
