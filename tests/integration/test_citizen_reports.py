"""Citizen photo reports (随手拍) against real Redis and PostgreSQL and a leading engine: a
photo's EXIF GPS position opens the incident there, the photo is shown only to those who may
read the incident and is in its evidence package; a 20 MB upload is refused before it is read,
a file that is no image is refused, a polyglot is kept only as its re-encoded picture, and
senders over their hourly limit wait for the time they are told."""

from __future__ import annotations

import hashlib
import io
import json
import select
import socket
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.evidence.verify import verify_package
from dispatch.settings import Settings
from gis.coords import gcj02_to_wgs84
from harness.daemons import free_port
from tests.integration.helpers import bearer, serving, wait_until
from tests.integration.test_terminal_flow import city_files
from tests.photo_fixtures import HTML, heic, jpeg, polyglot

pytestmark = pytest.mark.timeout(180)

EAST = (119.6503, 29.0801)  # in city_files' east cell
FORM = {"category": "street_vending", "contact": "13800000000", "description": "路口有流动摊贩"}
MB = 1024 * 1024


def settings_for(tmp_path, redis_service, prefix, database_url, **more: Any) -> Settings:
    areas, roster = city_files(tmp_path)
    return Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        database_url=database_url,
        areas_file=areas,
        roster_file=roster,
        data_dir=tmp_path / "var",
        engine_id=f"engine-{prefix}",
        engine_lease_ms=3000,
        **more,
    )


@contextmanager
def running_center(
    tmp_path, redis_service, prefix, database_url, **more: Any
) -> Iterator[tuple[TestClient, Settings]]:
    settings = settings_for(tmp_path, redis_service, prefix, database_url, **more)
    with TestClient(create_app(settings, workers=("engine",))) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "the engine")
        yield client, settings


def send(
    client: TestClient,
    photo: bytes,
    *,
    name: str = "photo.jpg",
    media_type: str = "image/jpeg",
    **fields: Any,
) -> Any:
    """A citizen's report as the page posts it: the form, and the photo as a file."""
    form = {**FORM, **{k: str(v) for k, v in fields.items()}}
    return client.post("/api/reports", data=form, files={"photo": (name, photo, media_type)})


def opened(client: TestClient, headers: dict[str, str], incident: str) -> dict[str, Any]:
    wait_until(
        lambda: client.get(f"/api/incidents/{incident}", headers=headers).status_code == 200,
        10,
        f"the engine to open {incident}",
    )
    return dict(client.get(f"/api/incidents/{incident}", headers=headers).json())


def stored_files(settings: Settings) -> list[str]:
    root = settings.photos().root
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_photo_with_exif_gps_opens_an_incident_at_that_place(
    redis_service, prefix, tmp_path, database_url
) -> None:
    dispatcher = bearer(database_url, Role.DISPATCHER, name="d-1")
    officer = bearer(database_url, Role.OFFICER, name="zhang3")
    upload = jpeg(*EAST)
    with running_center(tmp_path, redis_service, prefix, database_url) as (client, settings):
        # No account: the channel is public. The photo's header says PNG; its bytes say JPEG.
        answer = send(client, upload, name="IMG_0001.png", media_type="image/png")
        assert answer.status_code == 201, answer.text
        report = answer.json()
        assert report["place_from"] == "exif"
        assert (report["lon"], report["lat"]) == pytest.approx(EAST, abs=1e-7)

        incident = opened(client, dispatcher, report["incident"])
        assert incident["location"] == pytest.approx(list(EAST), abs=1e-7)
        assert (incident["source"], incident["category"], incident["title"]) == (
            "citizen",
            "street_vending",
            FORM["description"],
        )
        assert incident["phase"] == "reported"

        photos = client.get(f"/api/incidents/{incident['id']}/photos", headers=dispatcher)
        assert photos.status_code == 200, photos.text
        (photo,) = photos.json()
        assert photo["sha256"] == report["photo"]
        assert (photo["contact"], photo["place_from"]) == ("13800000000", "exif")
        assert photo["received"] == {
            "media_type": "image/jpeg",
            "bytes": len(upload),
            "sha256": hashlib.sha256(upload).hexdigest(),
        }
        shown = client.get(photo["url"], headers=dispatcher)
        assert shown.status_code == 200
        assert shown.headers["content-type"] == "image/jpeg"
        assert hashlib.sha256(shown.content).hexdigest() == photo["sha256"]
        assert not Image.open(io.BytesIO(shown.content)).getexif()  # no GPS left in it
        assert stored_files(settings) == [f"{photo['sha256']}.jpg"]

        # Only those who may read the incident see it.
        assert client.get(photo["url"]).status_code == 401
        assert client.get(photo["url"], headers=officer).status_code == 403
        other = f"/api/incidents/{incident['id']}/photos/{'0' * 64}"
        assert client.get(other, headers=dispatcher).status_code == 404

        # A place the form gives (GCJ-02, as an Amap pick) wins over the EXIF's.
        gcj = (119.6545, 29.0775)
        by_form = send(client, upload, lon=gcj[0], lat=gcj[1], crs="gcj02", contact="13900000000")
        assert by_form.status_code == 201, by_form.text
        moved = opened(client, dispatcher, by_form.json()["incident"])
        assert moved["location"] == pytest.approx(list(gcj02_to_wgs84(*gcj)), abs=1e-9)
        assert by_form.json()["photo"] == report["photo"]  # the same picture, stored once
        assert len(stored_files(settings)) == 1

        # An iPhone's HEIC photo, with its position.
        from_iphone = send(client, heic(*EAST), name="IMG_0002.HEIC", media_type="image/heic")
        assert from_iphone.status_code == 201, from_iphone.text
        assert from_iphone.json()["place_from"] == "exif"

        admin = bearer(database_url, Role.ADMIN, name="admin-1")
        counts = client.get("/api/ingest/stats", headers=admin).json()["channels"]["citizen"]
        assert counts == {"created": 3}


def test_a_report_that_cannot_open_an_incident_says_why(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with running_center(tmp_path, redis_service, prefix, database_url) as (client, settings):
        sos = send(client, jpeg(*EAST), category="sos")
        assert sos.status_code == 422
        assert (
            "sos" not in sos.json()["categories"] and "street_vending" in sos.json()["categories"]
        )
        public = client.get("/api/reports/categories").json()["categories"]
        assert public == sos.json()["categories"]

        nowhere = send(client, jpeg())  # no EXIF position and none in the form
        assert nowhere.status_code == 422 and "no place" in nowhere.json()["detail"]
        half = send(client, jpeg(), lon=EAST[0], lat=EAST[1])  # no datum declared
        assert half.status_code == 422 and "crs" in half.json()["detail"]
        away = send(client, jpeg(116.39, 39.91))  # Beijing, not this center's city
        assert away.status_code == 422 and "outside the areas" in away.json()["detail"]
        control = send(client, jpeg(*EAST), description="摊贩\x00")
        assert control.status_code == 422 and "description" in control.json()["detail"]
        no_phone = send(client, jpeg(*EAST), contact="call me")
        assert no_phone.status_code == 422 and "phone number" in no_phone.json()["detail"]
        assert stored_files(settings) == []


def test_a_file_that_is_not_an_image_is_refused(
    redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    with running_center(tmp_path, redis_service, prefix, database_url) as (client, settings):
        for upload in (HTML, b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'):
            refused = send(client, upload, lon=EAST[0], lat=EAST[1], crs="wgs84")
            assert refused.status_code == 415, refused.text
            assert "not a JPEG, PNG or HEIC photo" in refused.json()["detail"]
        not_a_form = client.post("/api/reports", json={**FORM, "lon": EAST[0], "lat": EAST[1]})
        assert not_a_form.status_code == 415 and "multipart" in not_a_form.json()["detail"]
        assert stored_files(settings) == []
        assert client.get("/api/incidents", headers=admin).json() == []


def test_a_polyglot_is_kept_only_as_its_re_encoded_picture(
    redis_service, prefix, tmp_path, database_url
) -> None:
    dispatcher = bearer(database_url, Role.DISPATCHER, name="d-1")
    upload = polyglot(*EAST)
    assert b"<html" in upload and b"<script" in upload
    with running_center(tmp_path, redis_service, prefix, database_url) as (client, settings):
        answer = send(client, upload, name="photo.html", media_type="text/html")
        assert answer.status_code == 201, answer.text
        sha256 = answer.json()["photo"]
        kept = settings.photos().path(sha256).read_bytes()
        assert hashlib.sha256(kept).hexdigest() == sha256 != hashlib.sha256(upload).hexdigest()
        assert b"<html" not in kept and b"<script" not in kept
        image = Image.open(io.BytesIO(kept))
        image.load()
        assert (image.format, image.size) == ("JPEG", (64, 48))
        shown = client.get(f"/api/incidents/{answer.json()['incident']}/photos/{sha256}",
                           headers=dispatcher)  # fmt: skip
        assert shown.content == kept
        assert shown.headers["x-content-type-options"] == "nosniff"


def test_the_photos_sha256_is_in_the_evidence_manifest(
    redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    with running_center(tmp_path, redis_service, prefix, database_url) as (client, settings):
        answer = send(client, jpeg(*EAST))
        assert answer.status_code == 201, answer.text
        incident, sha256 = answer.json()["incident"], answer.json()["photo"]
        opened(client, admin, incident)
        package = client.get(f"/api/incidents/{incident}/evidence", headers=admin)
        assert package.status_code == 200, package.text
        verdict = verify_package(package.content)
        assert verdict.ok, verdict.problems
        with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            assert manifest["files"][f"photos/{sha256}.jpg"] == sha256
            assert archive.read(f"photos/{sha256}.jpg") == settings.photos().read(sha256)
            (listed,) = json.loads(archive.read("photos.json"))
            assert listed["sha256"] == sha256 and listed["report"]["place"]["from"] == "exif"
            assert f'src="photos/{sha256}.jpg"' in archive.read("report.html").decode()


def test_senders_over_their_hourly_limit_are_told_when_to_come_back(
    redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    limits = {"reports_per_contact_per_hour": 2, "reports_per_address_per_hour": 3}
    with running_center(tmp_path, redis_service, prefix, database_url, **limits) as (client, _):
        photo = jpeg(*EAST)
        for _ in range(2):
            assert send(client, photo, contact="13800000001").status_code == 201
        # The same phone written another way is the same contact.
        again = send(client, photo, contact="+86 138-0000-0001")
        assert again.status_code == 429, again.text
        assert 3500 < int(again.headers["retry-after"]) <= 3600
        assert "try again in" in again.json()["detail"]
        # Another phone from the same address: its third report is the address's last.
        assert send(client, photo, contact="13800000002").status_code == 201
        crowded = send(client, photo, contact="13800000003")
        assert crowded.status_code == 429 and int(crowded.headers["retry-after"]) > 3500
        counts = client.get("/api/ingest/stats", headers=admin).json()["channels"]["citizen"]
        assert counts == {"created": 3, "refused:rate_limited": 2}


# Uploads too large, against a real server: refused before they are read --------------------


def multipart_head(port: int, boundary: str, length: str) -> bytes:
    return (
        f"POST /api/reports HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: multipart/form-data; boundary={boundary}\r\n{length}\r\n"
    ).encode()


def answer_of(connection: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def test_a_20_mb_upload_is_refused_without_being_read(
    redis_service, prefix, tmp_path, database_url
) -> None:
    settings = settings_for(tmp_path, redis_service, prefix, database_url, http_port=free_port())
    assert settings.report_max_bytes == 10 * MB
    part = (
        b'--b0\r\ncontent-disposition: form-data; name="photo"; filename="big.jpg"\r\n'
        b"content-type: image/jpeg\r\n\r\n" + jpeg(*EAST)
    )
    port = settings.http_port
    with serving(create_app(settings, workers=()), port):
        # Declared: 20 MB said, 64 KB sent, and the refusal comes at once.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(multipart_head(port, "b0", f"content-length: {20 * MB}\r\n"))
            connection.sendall(part + bytes(64 * 1024))
            answer = answer_of(connection)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

        # Not declared (chunked): read only until it passes the limit, then refused.
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(multipart_head(port, "b0", "transfer-encoding: chunked\r\n"))
            chunk = part.ljust(MB, b"\0")
            try:
                while sent < 20 * MB and not select.select([connection], [], [], 0.05)[0]:
                    connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed while the rest was on its way
            refused = answer_of(connection)
        assert refused.startswith(b"HTTP/1.1 413"), refused[:200]
        assert sent < 20 * MB, sent
