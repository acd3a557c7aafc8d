"""The map labels' glyph ranges: the protobuf decodes as MapLibre reads it, each glyph's
distance field carries the 3 px border, the ranges are bounded, and the route answers bad
requests with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatch import glyphs
from dispatch.api import glyphs as glyph_route
from dispatch.glyphs import (
    BUFFER_PX,
    FONTSTACK,
    GlyphError,
    GlyphRanges,
    UnknownFontstackError,
    distance_field,
    range_start,
)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value) pairs: varints and length-delimited only,
    the two wire types the glyph format uses."""
    fields: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            fields.append((number, value))
        elif wire == 2:
            size, at = _varint(data, at)
            fields.append((number, data[at : at + size]))
            at += size
        else:
            raise AssertionError(f"wire type {wire} in a glyph range")
    return fields


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def decode(pbf: bytes) -> tuple[str, str, list[dict[str, int | bytes]]]:
    [(number, stack)] = _fields(pbf)
    assert number == 1 and isinstance(stack, bytes)
    name = range_ = ""
    glyphs = []
    for number, value in _fields(stack):
        assert isinstance(value, bytes)
        if number == 1:
            name = value.decode()
        elif number == 2:
            range_ = value.decode()
        elif number == 3:
            glyph = dict(_fields(value))
            glyph[5] = _unzigzag(int(glyph[5]))
            glyph[6] = _unzigzag(int(glyph[6]))
            glyphs.append(
                dict(zip(("id", "bitmap", "width", "height", "left", "top", "advance"),
                         (glyph[n] for n in range(1, 8)), strict=True))
            )  # fmt: skip
    return name, range_, glyphs


@pytest.fixture(scope="module")
def ranges() -> GlyphRanges:
    return GlyphRanges(capacity=2)


def test_a_latin_range_decodes_with_every_letter_and_digit_in_it(ranges) -> None:
    name, range_, glyphs = decode(ranges.range_pbf(FONTSTACK, "0-255"))
    assert (name, range_) == (FONTSTACK, "0-255")
    ids = [int(g["id"]) for g in glyphs]
    assert all(0 <= i <= 255 for i in ids)
    assert len(ids) == len(set(ids))
    for char in "ABCXYZabcxyz0123456789 .-":
        assert ord(char) in ids, char
    assert 10 not in ids  # a control character has nothing to draw
    for glyph in glyphs:
        width, height = int(glyph["width"]), int(glyph["height"])
        assert len(glyph["bitmap"]) == (width + 2 * BUFFER_PX) * (height + 2 * BUFFER_PX)
    by_char = {chr(int(g["id"])): g for g in glyphs}
    space, letter = by_char[" "], by_char["H"]
    assert (space["width"], space["height"]) == (0, 0) and int(space["advance"]) > 0
    assert 10 < int(letter["height"]) < 24 and 0 < int(letter["width"]) <= int(letter["advance"])
    # A capital's top sits below the line's top; a full stop's far lower.
    assert int(by_char["."]["top"]) < int(letter["top"]) < 0
    # Inside the H's stems the field is above the outline's value, in the border's corner below.
    field = np.frombuffer(letter["bitmap"], np.uint8).reshape(int(letter["height"]) + 6, -1)
    assert field.max() > 192 > field[0, 0]


def test_a_distance_field_puts_the_outline_at_three_quarters() -> None:
    square = np.zeros((10, 10), np.uint8)
    square[2:8, 2:8] = 255
    field = np.frombuffer(distance_field(square), np.uint8).reshape(16, 16)
    row = field[8]  # through the middle; the square spans columns 5..10 of the padded field
    assert row[7] > 192 > row[4]  # inside above the edge value, outside below
    assert row[0] < row[2] < row[4]  # falling away from the outline
    assert distance_field(np.zeros((0, 0), np.uint8)) == bytes(36)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0-256", "must end at 255"),
        ("1-256", "not a multiple of 256"),
        ("65536-65791", "goes past 65535"),
        ("a-b", "not start-end"),
        ("-255", "not start-end"),
        ("٠-٢٥٥", "not start-end"),  # digits, but not ASCII ones
        ("9" * 5000 + "-1", "not start-end"),
    ],
)
def test_a_malformed_range_is_refused_with_a_reason(text, reason) -> None:
    with pytest.raises(GlyphError, match=reason):
        range_start(text)


def test_ranges_are_cached_up_to_the_bound(ranges) -> None:
    first = ranges.range_pbf(FONTSTACK, "0-255")
    assert ranges.range_pbf(FONTSTACK, "0-255") is first
    ranges.range_pbf(FONTSTACK, "256-511")
    ranges.range_pbf(FONTSTACK, "512-767")
    assert len(ranges._cache) == 2
    assert ranges.range_pbf(FONTSTACK, "0-255") is not first


def test_an_unknown_font_stack_names_the_one_served(ranges) -> None:
    with pytest.raises(UnknownFontstackError, match=FONTSTACK):
        ranges.range_pbf("Open Sans Regular", "0-255")


def test_the_route_answers_with_a_range_or_a_reason() -> None:
    app = FastAPI()
    glyph_route.install(app)
    client = TestClient(app)
    ok = client.get(f"/glyphs/{FONTSTACK}/0-255.pbf")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/x-protobuf"
    assert decode(ok.content)[1] == "0-255"
    unknown = client.get("/glyphs/Open Sans Regular,Arial Unicode MS Regular/0-255.pbf")
    assert unknown.status_code == 404 and FONTSTACK in unknown.json()["detail"]
    assert client.get(f"/glyphs/{FONTSTACK}/0-511.pbf").status_code == 422
    assert "multiple of 256" in client.get(f"/glyphs/{FONTSTACK}/7-262.pbf").json()["detail"]
    long = client.get(f"/glyphs/{'x' * 101}/0-255.pbf")
    assert long.status_code == 422 and "longer than 100" in long.json()["detail"]
    assert client.get(f"/glyphs/{FONTSTACK}/0-255.png").status_code == 404


def test_without_fontconfig_the_debian_font_is_used_and_without_any_font_the_route_says_so(
    monkeypatch,
) -> None:
    monkeypatch.setattr(glyphs.shutil, "which", lambda _: None)
    assert glyphs.find_font() == glyphs.DEBIAN_FONTS[0]
    monkeypatch.setattr(glyphs, "DEBIAN_FONTS", ((Path("/nonexistent/font.ttf"), 0),))
    app = FastAPI()
    glyph_route.install(app)
    missing = TestClient(app).get(f"/glyphs/{FONTSTACK}/0-255.pbf")
    assert missing.status_code == 503 and "fonts-noto-cjk" in missing.json()["detail"]
