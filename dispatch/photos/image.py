"""Making an uploaded photo safe to keep and show: sniffed, decoded, re-encoded (no I/O).

What a citizen uploads is untrusted bytes. Its type is read from the bytes themselves (the
header a browser sends is whatever it was told), and only JPEG, PNG and HEIC (the iPhone's
camera format, through the `pillow-heif` wheel, which carries libheif) are taken. The image is
decoded and its pixels, turned upright as the EXIF orientation says, with transparency laid on
white and the colour profile applied, are written as a new baseline JPEG: no EXIF, no ICC
profile, no comment, nothing after the image. So a polyglot (a JPEG that is also an HTML page
or a script) keeps only its picture, and a file that merely looks like an image is refused.
The GPS position of the EXIF is read before it is dropped: it may be the report's place.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from functools import cache

import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from gis.coords import LonLat

# The most pixels decoded for one photo: 64 MP of RGB is 192 MB, and phones save 12 to 50 MP.
MAX_PIXELS = 64_000_000
JPEG_QUALITY = 90
MEDIA_TYPE = "image/jpeg"
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "HEIF": "image/heic"}


class PhotoRefused(ValueError):  # noqa: N818 - reads as what happened
    """An upload that is no photo this center takes; `reason` names why for the counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    jpeg: bytes  # the re-encoded photo: what is stored, served and put in evidence
    sha256: str  # of `jpeg`
    width: int
    height: int
    received_type: str  # the media type the upload's bytes are (not the one it claimed)
    received_bytes: int
    received_sha256: str  # of the upload as it came, which is not kept
    gps: LonLat | None  # from the EXIF, WGS-84; None without a usable position

    def record(self) -> dict[str, object]:
        """What the center keeps about the photo beside its bytes."""
        return {
            "sha256": self.sha256,
            "media_type": MEDIA_TYPE,
            "bytes": len(self.jpeg),
            "width": self.width,
            "height": self.height,
            "received": {
                "media_type": self.received_type,
                "bytes": self.received_bytes,
                "sha256": self.received_sha256,
            },
        }


def sniff(data: bytes) -> str | None:
    """The Pillow format the bytes begin as (JPEG, PNG or HEIF), or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def clean_photo(data: bytes) -> CleanPhoto:
    """The upload re-encoded as a metadata-free JPEG, with the EXIF's GPS position.
    PhotoRefused for bytes that are not a JPEG, PNG or HEIC image this can decode."""
    kind = sniff(data)
    if kind is None:
        raise PhotoRefused(
            "not_an_image",
            f"the file is not a JPEG, PNG or HEIC photo (it begins {data[:8].hex(' ')!r})",
        )
    _heif_registered()
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoRefused(
                    "too_many_pixels",
                    f"the photo is {width}×{height} pixels; at most {MAX_PIXELS:,} are taken",
                )
            gps = _exif_gps(image.getexif())
            pixels = _upright_srgb(image)
    except PhotoRefused:
        raise
    except Image.DecompressionBombError as exc:
        raise PhotoRefused("too_many_pixels", f"the photo is too large to decode: {exc}") from None
    # Decoders of untrusted bytes raise many kinds: truncated data, bad markers, bad chunks.
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PhotoRefused(
            "undecodable", f"the file is not a {kind} image that can be decoded ({exc})"
        ) from None
    out = io.BytesIO()
    pixels.save(out, "JPEG", quality=JPEG_QUALITY)
    jpeg = out.getvalue()
    return CleanPhoto(
        jpeg,
        hashlib.sha256(jpeg).hexdigest(),
        pixels.width,
        pixels.height,
        _MEDIA_TYPES[kind],
        len(data),
        hashlib.sha256(data).hexdigest(),
        gps,
    )


@cache
def _heif_registered() -> None:
    pillow_heif.register_heif_opener()


def _upright_srgb(image: Image.Image) -> Image.Image:
    """The decoded pixels, upright, in sRGB, without transparency, in a new image that
    carries none of the file's metadata."""
    upright = ImageOps.exif_transpose(image)
    profile = upright.info.get("icc_profile")
    if profile and upright.mode in ("RGB", "CMYK"):
        try:
            converted = ImageCms.profileToProfile(
                upright,
                ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            assert converted is not None  # not converted in place
            upright = converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a profile lcms cannot read: the pixels as they are
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
    else:
        flat = upright.convert("RGB")
    fresh = Image.new("RGB", flat.size)
    fresh.paste(flat)
    return fresh


def _exif_gps(exif: Image.Exif) -> LonLat | None:
    """The EXIF GPS position, if it holds a usable one (not void, not 0,0, in range)."""
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except (KeyError, ValueError, TypeError, OSError):
        return None
    if _text(gps.get(ExifTags.GPS.GPSStatus)) == "V":  # void: the receiver had no fix
        return None
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude))
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude))
    if lat is None or lon is None:
        return None
    if _text(gps.get(ExifTags.GPS.GPSLatitudeRef)) == "S":
        lat = -lat
    if _text(gps.get(ExifTags.GPS.GPSLongitudeRef)) == "W":
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    # Seconds as rationals come back with float noise (29.080099999999998): 1e-7° is 1 cm.
    return LonLat(round(lon, 7), round(lat, 7))


def _degrees(value: object) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals, or fewer of them."""
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(n) and n >= 0 for n in numbers):
        return None
    return sum(n / 60.0**k for k, n in enumerate(numbers))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip("\x00 ").upper()
