"""The map's label glyphs, served from this machine: MapLibre asks for a font stack's glyphs in
ranges of 256 code points and draws text from signed distance fields (SDF), so each range is
rendered here from a local font file with Pillow, turned into distance fields with scipy, and
encoded as the small protobuf MapLibre reads (fontstack{name, range, glyphs{id, bitmap, width,
height, left, top, advance}}). Chinese text does not come through here: MapLibre draws
ideographs with the browser's local font (`localIdeographFontFamily`).

The font is found once, on the first request, through fontconfig (`fc-match`) or at the paths
Debian installs it to; rendered ranges are kept in a bounded LRU cache.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageFont
from scipy import ndimage

# MapLibre's glyph metrics: a 24 px em, bitmaps padded by 3 px on each side (GLYPH_PBF_BORDER).
EM_PX = 24
BUFFER_PX = 3
# The distance field's reach and where the edge sits in it, as MapLibre's shader expects:
# the glyph's outline is at 0.75 (192 of 255), a pixel 8 px outside it at 0.
RADIUS_PX = 8.0
CUTOFF = 0.25
RANGE_SIZE = 256
LAST_CODE_POINT = 0xFFFF  # MapLibre asks only for the Basic Multilingual Plane
FONTSTACK_MAX_CHARS = 100
CACHED_RANGES = 64

# The one font stack served: the style's labels ask for it by this name. It is a CSS family
# name too, because MapLibre draws the stack's ideographs locally in the family it names.
FONTSTACK = "Noto Sans CJK SC"
# Where Debian puts the fonts when fontconfig is absent: the CJK face carries Latin and digits.
DEBIAN_FONTS = (
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),  # the SC face
    (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"), 0),
)
_RANGE = re.compile(r"([0-9]{1,6})-([0-9]{1,6})")
# General categories with nothing to draw: controls, surrogates, private use, unassigned.
_NOT_DRAWN = frozenset({"Cc", "Cs", "Co", "Cn"})


class GlyphError(ValueError):
    """A glyph request that cannot be answered as asked; the message says why."""


class UnknownFontstackError(GlyphError):
    """A font stack this server does not have."""


class FontMissingError(RuntimeError):
    """No font file to render glyphs from on this machine."""


@dataclass(frozen=True)
class Glyph:
    id: int
    bitmap: bytes  # (width + 6) × (height + 6) distance values, row by row
    width: int
    height: int
    left: int
    top: int  # from the line's top (the font's ascent) to the glyph's top, negative downward
    advance: int


def range_start(text: str) -> int:
    """The first code point of a range written `start-end` (e.g. `256-511`), as MapLibre asks."""
    bounds = _RANGE.fullmatch(text)
    if bounds is None:
        raise GlyphError(f"range {text[:20]!r} is not start-end, e.g. 0-255")
    start, end = int(bounds[1]), int(bounds[2])
    if start % RANGE_SIZE:
        raise GlyphError(f"range start {start} is not a multiple of {RANGE_SIZE}")
    if end != start + RANGE_SIZE - 1:
        raise GlyphError(f"range {start}-{end} must end at {start + RANGE_SIZE - 1}")
    if end > LAST_CODE_POINT:
        raise GlyphError(f"range {start}-{end} goes past {LAST_CODE_POINT}")
    return start


def check_fontstack(name: str) -> str:
    if len(name) > FONTSTACK_MAX_CHARS:
        raise GlyphError(f"font stack name is longer than {FONTSTACK_MAX_CHARS} characters")
    if name != FONTSTACK:
        raise UnknownFontstackError(f"no font stack {name!r}; this server has {FONTSTACK!r}")
    return name


def distance_field(alpha: np.ndarray) -> bytes:
    """An SDF of a coverage bitmap (0..255), padded by BUFFER_PX: 255 deep inside, 192 on the
    outline, falling to 0 at RADIUS_PX outside."""
    padded = np.pad(alpha, BUFFER_PX) >= 128
    if not padded.any():
        return bytes(padded.size)
    # Pixel centres: an outside pixel next to the glyph is half a pixel from its edge.
    outside = ndimage.distance_transform_edt(~padded) - 0.5
    inside = ndimage.distance_transform_edt(padded) - 0.5
    signed = np.where(padded, -inside, outside)
    value = 255 - 255 * (signed / RADIUS_PX + CUTOFF)
    return bytes(np.clip(np.round(value), 0, 255).astype(np.uint8).tobytes())


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def encode_range(fontstack: str, start: int, glyphs: list[Glyph]) -> bytes:
    """The protobuf MapLibre parses: glyphs{stacks=1: fontstack{name=1, range=2, glyphs=3}}."""
    stack = _bytes_field(1, fontstack.encode()) + _bytes_field(
        2, f"{start}-{start + RANGE_SIZE - 1}".encode()
    )
    for glyph in glyphs:
        body = (
            _field(1, glyph.id)
            + _bytes_field(2, glyph.bitmap)
            + _field(3, glyph.width)
            + _field(4, glyph.height)
            + _field(5, _zigzag(glyph.left))
            + _field(6, _zigzag(glyph.top))
            + _field(7, glyph.advance)
        )
        stack += _bytes_field(3, body)
    return _bytes_field(1, stack)


def find_font() -> tuple[Path, int]:
    """The font file (and face index in a collection) to render with."""
    fc_match = shutil.which("fc-match")
    if fc_match is not None:
        result = subprocess.run(
            [fc_match, "--format=%{file}\n%{index}", "Noto Sans CJK SC:style=Regular"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        file, _, index = result.stdout.partition("\n")
        if result.returncode == 0 and Path(file).is_file():
            return Path(file), int(index or 0)
    for path, face in DEBIAN_FONTS:
        if path.is_file():
            return path, face
    raise FontMissingError(
        "no font to draw map labels with: install fonts-noto-cjk (or fontconfig)"
    )


class GlyphFont:
    """One font face at MapLibre's em size, drawing glyphs for the code points it has."""

    def __init__(self, path: Path, index: int = 0) -> None:
        self.font = ImageFont.truetype(str(path), EM_PX, index=index)
        self.ascent, _ = self.font.getmetrics()
        # What the face draws for a code point it lacks (U+FFFF is never a character).
        self._missing = self._draw(0xFFFF)

    def _draw(self, code_point: int) -> Glyph:
        char = chr(code_point)
        mask, (left, top) = self.font.getmask2(char, mode="L", anchor="ls")
        alpha = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])
        # Pillow's box spans the advance; MapLibre wants the ink only, placed by left and top.
        rows, cols = np.nonzero(alpha)
        if rows.size:
            alpha = alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            left, top = left + int(cols.min()), top + int(rows.min())
        else:
            alpha = alpha[:0, :0]
        height, width = alpha.shape
        return Glyph(
            id=code_point,
            bitmap=distance_field(alpha),
            width=width,
            height=height,
            left=left,
            top=-top - self.ascent,
            advance=round(self.font.getlength(char)),
        )

    def glyph(self, code_point: int) -> Glyph | None:
        if unicodedata.category(chr(code_point)) in _NOT_DRAWN:
            return None
        drawn = self._draw(code_point)
        missing = self._missing
        if drawn.bitmap == missing.bitmap and drawn.advance == missing.advance:
            return None
        return drawn


class GlyphRanges:
    """Encoded glyph ranges, rendered on first request and kept for the last CACHED_RANGES.

    Routes run on a thread pool, so the cache and the font are guarded by one lock; a range
    renders in tens of milliseconds, rarely enough that serialising it costs nothing."""

    def __init__(self, capacity: int = CACHED_RANGES) -> None:
        self.capacity = capacity
        self._font: GlyphFont | None = None
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def range_pbf(self, fontstack: str, text: str) -> bytes:
        """The encoded range `text` (`start-end`) of `fontstack`; raises GlyphError on a bad
        request and FontMissingError where the machine has no font."""
        key = (check_fontstack(fontstack), range_start(text))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if self._font is None:
                self._font = GlyphFont(*find_font())
            font, start = self._font, key[1]
            glyphs = [g for c in range(start, start + RANGE_SIZE) if (g := font.glyph(c))]
            encoded = encode_range(fontstack, start, glyphs)
            self._cache[key] = encoded
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
            return encoded
