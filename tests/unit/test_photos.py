"""Citizens' photos: the type read from the bytes, the EXIF GPS position read before the
metadata goes, the pixels re-encoded upright with nothing of the upload kept but its picture,
and the folder that keeps photos by digest."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from PIL import Image

from dispatch.photos import PhotoFolder, PhotoRefused, clean_photo, sniff
from dispatch.photos.image import MAX_PIXELS
from tests.photo_fixtures import HTML, heic, jpeg, png_with_alpha, polyglot

LON, LAT = 119.6503, 29.0801


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_the_exif_gps_position_is_read_in_degrees() -> None:
    photo = clean_photo(jpeg(LON, LAT))
    assert photo.gps is not None
    assert (photo.gps.lon, photo.gps.lat) == pytest.approx((LON, LAT), abs=1e-7)
    south_west = clean_photo(jpeg(-70.25, -33.5)).gps
    assert south_west is not None and (south_west.lon, south_west.lat) == pytest.approx(
        (-70.25, -33.5)
    )
    assert clean_photo(jpeg()).gps is None
    assert clean_photo(jpeg(0.0, 0.0)).gps is None  # a receiver that had no fix


def test_what_is_kept_is_a_new_jpeg_without_any_metadata() -> None:
    upload = jpeg(LON, LAT, comment=b"camera notes")
    photo = clean_photo(upload)
    assert photo.sha256 == hashlib.sha256(photo.jpeg).hexdigest()
    assert photo.received_sha256 == hashlib.sha256(upload).hexdigest()
    assert (photo.received_type, photo.received_bytes) == ("image/jpeg", len(upload))
    kept = decoded(photo.jpeg)
    assert kept.format == "JPEG" and kept.size == (64, 48)
    assert not kept.getexif() and "icc_profile" not in kept.info and "comment" not in kept.info
    assert b"camera notes" not in photo.jpeg and b"Exif" not in photo.jpeg
    # The picture itself survives: red on the left, blue on the right.
    red, blue = kept.getpixel((5, 24)), kept.getpixel((58, 24))
    assert red[0] > 180 > red[2] and blue[2] > 180 > blue[0]


def test_a_photo_taken_sideways_is_kept_upright() -> None:
    # Orientation 6: the camera was turned; the stored pixels must need no EXIF to show right.
    photo = clean_photo(jpeg(orientation=6))
    kept = decoded(photo.jpeg)
    assert kept.size == (48, 64)
    top, bottom = kept.getpixel((24, 5)), kept.getpixel((24, 58))
    assert top[0] > 180 and bottom[2] > 180  # red (the left side) turned to the top


def test_a_polyglot_keeps_only_its_picture() -> None:
    upload = polyglot(LON, LAT)
    assert b"<script" in upload and sniff(upload) == "JPEG"
    photo = clean_photo(upload)
    assert b"<html" not in photo.jpeg and b"<script" not in photo.jpeg
    assert photo.jpeg.endswith(b"\xff\xd9")  # nothing after the end of the image
    assert decoded(photo.jpeg).size == (64, 48)
    assert photo.gps is not None


@pytest.mark.parametrize(
    "upload",
    [
        HTML,
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"GIF89a" + bytes(40),
        b"%PDF-1.7\n",
        HTML + jpeg(LON, LAT),  # an HTML page with a photo appended
        b"",
    ],
    ids=["html", "svg", "gif", "pdf", "html-then-jpeg", "empty"],
)
def test_what_is_not_a_jpeg_png_or_heic_is_refused(upload: bytes) -> None:
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(upload)
    assert refused.value.reason == "not_an_image"
    assert "JPEG, PNG or HEIC" in str(refused.value)


def test_bytes_that_only_begin_like_a_jpeg_are_refused() -> None:
    for upload in (b"\xff\xd8\xff\xe0" + HTML, jpeg(LON, LAT)[:200]):
        with pytest.raises(PhotoRefused) as refused:
            clean_photo(upload)
        assert refused.value.reason == "undecodable"


def test_a_png_with_transparency_is_laid_on_white() -> None:
    photo = clean_photo(png_with_alpha())
    assert photo.received_type == "image/png"
    kept = decoded(photo.jpeg)
    assert kept.format == "JPEG" and kept.mode == "RGB"
    assert min(kept.getpixel((4, 4))) > 240  # the transparent corner is white


def test_an_iphone_heic_photo_is_taken_with_its_position() -> None:
    upload = heic(LON, LAT)
    assert sniff(upload) == "HEIF"
    photo = clean_photo(upload)
    assert photo.received_type == "image/heic"
    assert decoded(photo.jpeg).format == "JPEG"
    assert photo.gps is not None
    assert (photo.gps.lon, photo.gps.lat) == pytest.approx((LON, LAT), abs=1e-6)


def test_a_photo_of_too_many_pixels_is_refused_before_it_is_decoded() -> None:
    # 72 MP of one bit: a PNG of a few kilobytes that would decode to 216 MB of RGB.
    side = 8_500
    assert side * side > MAX_PIXELS
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(out.getvalue())
    assert refused.value.reason == "too_many_pixels"


def test_the_folder_keeps_a_photo_once_under_its_digest(tmp_path) -> None:
    folder = PhotoFolder(tmp_path / "photos")
    data = clean_photo(jpeg(LON, LAT)).jpeg
    sha256 = folder.put(data)
    assert sha256 == hashlib.sha256(data).hexdigest()
    path = folder.path(sha256)
    assert path == tmp_path / "photos" / sha256[:2] / f"{sha256}.jpg"
    assert path.read_bytes() == data and folder.read(sha256) == data
    before = path.stat().st_mtime_ns
    assert folder.put(data) == sha256 and path.stat().st_mtime_ns == before
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind
    assert folder.read("0" * 64) is None
    for name in ("../" * 3 + "etc/passwd", sha256.upper(), sha256[:-1]):
        with pytest.raises(ValueError, match="sha256"):
            folder.path(name)
