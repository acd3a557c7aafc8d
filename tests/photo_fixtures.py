"""Photos made in the tests with Pillow: with an EXIF GPS position, an orientation, an ICC
profile, transparency, or HTML hidden inside (a polyglot)."""

from __future__ import annotations

import io
from fractions import Fraction

import pillow_heif
from PIL import ExifTags, Image, ImageCms

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def _dms(degrees: float) -> tuple[Fraction, Fraction, Fraction]:
    """EXIF's degrees, minutes, seconds (seconds to 1/10000)."""
    whole = int(degrees)
    minutes_float = (degrees - whole) * 60
    minutes = int(minutes_float)
    seconds = Fraction(round((minutes_float - minutes) * 60 * 10_000), 10_000)
    return Fraction(whole), Fraction(minutes), seconds


def exif_of(
    lon: float | None = None, lat: float | None = None, *, orientation: int | None = None
) -> Image.Exif:
    """EXIF with a GPS position (when `lon` and `lat` are given) and an orientation."""
    exif = Image.Exif()
    if lon is not None and lat is not None:
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
            ExifTags.GPS.GPSLatitude: _dms(abs(lat)),
            ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
            ExifTags.GPS.GPSLongitude: _dms(abs(lon)),
            ExifTags.GPS.GPSMapDatum: "WGS-84",
        }
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    return exif


def picture(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: which way up it is can be told from the pixels."""
    image = Image.new(mode, (width, height), (220, 30, 30, 255)[: len(mode)])
    image.paste((30, 30, 220, 255)[: len(mode)], (width // 2, 0, width, height))
    return image


def jpeg(
    lon: float | None = None,
    lat: float | None = None,
    *,
    orientation: int | None = None,
    size: tuple[int, int] = (64, 48),
    comment: bytes = b"",
) -> bytes:
    """A JPEG with an sRGB profile, and the GPS position in its EXIF when `lon` and `lat` are
    given."""
    out = io.BytesIO()
    picture(*size).save(
        out,
        "JPEG",
        quality=90,
        exif=exif_of(lon, lat, orientation=orientation),
        comment=comment,
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )
    return out.getvalue()


def png_with_alpha() -> bytes:
    image = picture(mode="RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 16, 16))  # a transparent corner
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def heic(lon: float, lat: float) -> bytes:
    """An HEIC photo as an iPhone writes one, with its GPS position."""
    out = io.BytesIO()
    pillow_heif.from_pillow(picture()).save(out, quality=80, exif=exif_of(lon, lat).tobytes())
    return out.getvalue()


def polyglot(lon: float, lat: float) -> bytes:
    """A JPEG that is also an HTML page: the markup in a comment segment and after the end of
    the image, where browsers sniffing for HTML find it and image decoders never look."""
    return jpeg(lon, lat, comment=HTML) + HTML
