"""OsmAnd / Traccar Client over HTTP, against real Redis and PostgreSQL: Traccar's own decoder
test requests (reference/devices.md §8.2) stored with the values they carry, in the same chain
as the device's MQTT fixes; devices without their key refused; malformed requests refused,
counted per channel and kept as dead letters."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devices.batch import BatchWriter, Received
from devices.osmand import key_digest
from devices.quality import Reason
from devices.registry import Binding
from devices.sink import IngestBatch, PendingWrite
from dispatch.api.app import create_app
from dispatch.cli.device_keys import issue_http_key, revoke_http_key
from dispatch.core.access import Role
from dispatch.core.track import DeviceKey, verify_chain
from dispatch.settings import Settings
from dispatch.store import Store
from dispatch.store.ingest import IngestStore
from tests.conftest import ingest_config
from tests.integration.helpers import bearer

pytestmark = pytest.mark.timeout(120)

# Traccar's vectors lie around the world and up to 13 years back: the test's center takes both.
WORLD = (-180.0, -90.0, 180.0, 90.0)
YEARS_S = 20 * 365 * 86400.0

# (request, device, the stored fix's expected values); derived values per devices.md §2.1:
# knots × 1.852 = km/h, m/s × 3.6 = km/h, a time without offset in Asia/Shanghai.
VECTORS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z"
        "&hdop=6.0&altitude=224.0&speed=0.0",
        "902064",
        {"lat": 42.06288, "lon": -88.23412, "fix_at": 1453920947, "hdop": 6.0, "alt_m": 224.0,
         "vel_kmh": 0.0},
    ),
    (
        "id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0"
        "&altitude=224.0&speed=0.0",
        "902064",
        {"lat": 42.06288, "lon": -88.23412, "fix_at": 1442068686, "hdop": 6.0, "alt_m": 224.0,
         "vel_kmh": 0.0, "backfill": True},
    ),
    (
        "lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0"
        "&id=353861053849681",
        "353861053849681",
        {"lat": 49.60688, "lon": 6.15788, "fix_at": 1401844211, "alt_m": 384.7, "vel_kmh": 0.0},
    ),
    (
        "id=123456&timestamp=1377177267&location=60.0,30.0",
        "123456",
        {"lat": 60.0, "lon": 30.0, "fix_at": 1377177267},
    ),
    (
        "id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000"
        "&batt=87",
        "861001000719969",
        {"lat": 41.666667, "lon": -0.883333, "alt_m": 350.059479, "vel_kmh": 0.0, "batt_pct": 87},
    ),
    # Ours: a moving phone bound as a pair, its speed in knots and its course.
    (
        "id=li4%2Fphone&lat=29.0895&lon=119.6495&timestamp=1763800000&speed=10&bearing=271.5"
        "&accuracy=12",
        "li4/phone",
        {"lat": 29.0895, "lon": 119.6495, "fix_at": 1763800000, "vel_kmh": 18.52,
         "cog_deg": 271.5, "acc_m": 12.0},
    ),
]  # fmt: skip
TRACCAR_CLIENT_JSON = {
    "location": {
        "event": "motionchange",
        "is_moving": False,
        "uuid": "0e9a2473-a9a7-4c00-997b-fb97d2154e75",
        "timestamp": "2021-07-21T08:06:34.444Z",
        "odometer": 0,
        "coords": {
            "latitude": -6.1148096,
            "longitude": 106.6837015,
            "accuracy": 3.8,
            "speed": 18.67,
            "speed_accuracy": 0.26,
            "heading": 63,
            "heading_accuracy": 0.28,
            "altitude": 35.7,
            "altitude_accuracy": 3.8,
        },
        "activity": {"type": "still", "confidence": 100},
        "battery": {"is_charging": False, "level": 0.79},
        "extras": {},
    },
    "device_id": "8737767034",
}
JSON_EXPECTED = {
    "lat": -6.1148096, "lon": 106.6837015, "fix_at": 1626854794, "acc_m": 3.8,
    "vel_kmh": 67.21, "cog_deg": 63.0, "alt_m": 35.7, "batt_pct": 79,
}  # fmt: skip
OFFICER = "zhang3"  # every serial above is one of zhang3's terminals
DEVICES = ["902064", "353861053849681", "123456", "861001000719969", "8737767034", "li4/phone"]


def binding_of(device: str) -> Binding:
    user, _, name = device.rpartition("/")
    return Binding(name, user or OFFICER, pair=bool(user))


def stored_key(device: str) -> DeviceKey:
    binding = binding_of(device)
    return DeviceKey(f"{binding.officer}/{binding.device}")


@dataclass(frozen=True)
class Center:
    client: TestClient
    store: Store
    admin: dict[str, str]  # bearer headers of an admin, who reads the ingest statistics


@pytest.fixture
def center(redis_service, prefix, database_url, tmp_path) -> Iterator[Center]:
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        topic_root=prefix,
        database_url=database_url,
        data_dir=tmp_path / "var",
        service_area_bbox=WORLD,
        max_age_s=YEARS_S,
    )
    store = Store.from_url(redis_service.url, prefix)
    store.registry.bind([binding_of(d) for d in DEVICES])
    with TestClient(create_app(settings, workers=())) as client:
        yield Center(client, store, bearer(database_url, Role.ADMIN))
    store.close()


def issue_keys(store: Store) -> dict[str, str]:
    keys = {device: f"key-of-{device}-{n:04d}-long-enough" for n, device in enumerate(DEVICES)}
    for device, key in keys.items():
        store.registry.record_http_key(device, key_digest(key), issued_at=time.time())
    return keys


def stored_fixes(store: Store, device: str) -> list[dict[str, Any]]:
    links = [link for _, link, _ in store.tracks.chain_links(stored_key(device))]
    verify_chain(stored_key(device), links)
    return [json.loads(link.canonical) for link in links]


def assert_carries(fix: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        assert fix.get(name) == pytest.approx(value), (name, fix)


def test_traccars_osmand_requests_are_stored_with_their_values(center) -> None:
    client, store = center.client, center.store
    keys = issue_keys(store)
    before = time.time()
    for query, device, _ in VECTORS:
        answer = client.get(f"/api/osmand?{query}&key={keys[device]}")
        assert answer.status_code == 200, (query, answer.text)
        assert answer.json() == {"device": device, "stored": True, "duplicate": False}
    answer = client.post(f"/api/osmand?key={keys['8737767034']}", json=TRACCAR_CLIENT_JSON)
    assert answer.status_code == 200, answer.text

    for device in {device for _, device, _ in VECTORS}:
        expected = [e for _, d, e in VECTORS if d == device]
        fixes = stored_fixes(store, device)
        assert len(fixes) == len(expected), device
        for fix, values in zip(fixes, expected, strict=True):
            assert_carries(fix, values)
            assert fix["device"] == stored_key(device)
    (no_time,) = stored_fixes(store, "861001000719969")
    assert before - 1 <= no_time["fix_at"] <= time.time()  # a request without time is of now
    (from_json,) = stored_fixes(store, "8737767034")
    assert_carries(from_json, JSON_EXPECTED)
    stats = admin_stats(center)
    assert stats["channels"]["osmand"] == {"accepted": len(VECTORS) + 1}
    assert stats["accepted"] == len(VECTORS) + 1


def test_a_form_body_and_a_repeat_are_stored_once_in_the_chain_mqtt_fixes_share(
    center, prefix
) -> None:
    client, store = center.client, center.store
    keys = issue_keys(store)
    now = int(time.time())
    form = f"id=li4%2Fphone&lat=29.0895&lon=119.6495&timestamp={now - 20}&speed=2"
    sent = client.post(
        f"/api/osmand?key={keys['li4/phone']}",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert sent.status_code == 200, sent.text
    repeated = client.post(
        f"/api/osmand?key={keys['li4/phone']}",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    # The client saw no answer the first time and resends: stored once, answered as stored.
    assert repeated.status_code == 200 and repeated.json()["duplicate"] is True
    # The same phone over MQTT, written by an ingest worker's own writer.
    mqtt = {"_type": "location", "lat": 29.0896, "lon": 119.6495, "tst": now - 10}
    writer = BatchWriter(store.ingest, ingest_config(prefix))
    writer.write([Received(1, 1, f"{prefix}/li4/phone", json.dumps(mqtt).encode(), now)])
    later = client.get(
        f"/api/osmand?id=li4/phone&lat=29.0897&lon=119.6495&timestamp={now}&key={keys['li4/phone']}"
    )
    assert later.status_code == 200, later.text

    fixes = stored_fixes(store, "li4/phone")  # one chain, verified link by link
    assert [f["lat"] for f in fixes] == [29.0895, 29.0896, 29.0897]
    assert fixes[0]["vel_kmh"] == pytest.approx(3.7)
    channel = admin_stats(center)["channels"]["osmand"]
    assert channel == {"accepted": 2, "duplicate": 1}


def test_a_device_without_its_key_is_refused(center) -> None:
    client, store = center.client, center.store
    keys = issue_keys(store)
    query = "id=902064&lat=42.06288&lon=-88.23412&timestamp=1453920947"
    missing = client.get(f"/api/osmand?{query}")
    assert missing.status_code == 401
    assert "key" in missing.json()["detail"]
    wrong = client.get(f"/api/osmand?{query}&key=not-the-key")
    assert wrong.status_code == 403
    assert "902064" in wrong.json()["detail"] and wrong.json()["reason"] == "wrong_key"
    borrowed = client.get(f"/api/osmand?{query}&key={keys['123456']}")
    assert borrowed.status_code == 403
    unknown = client.get(f"/api/osmand?id=999&lat=42.0&lon=-88.2&key={keys['123456']}")
    assert unknown.status_code == 403
    # A device unbound loses its key with its binding.
    store.registry.unbind("902064")
    store.registry.bind([binding_of("902064")])
    unbound = client.get(f"/api/osmand?{query}&key={keys['902064']}")
    assert unbound.status_code == 403

    assert stored_fixes(store, "902064") == []
    channel = admin_stats(center)["channels"]["osmand"]
    assert channel == {"refused:no_key": 1, "refused:wrong_key": 4}


def test_malformed_requests_are_refused_with_a_reason_counted_and_dead_lettered(center) -> None:
    client, store = center.client, center.store
    keys = issue_keys(store)
    key = keys["902064"]
    now = int(time.time())
    cases = [
        # Traccar's own "null" vector: no id.
        (f"timestamp=1377177267&lat=60.0&lon=30.0&key={key}", 400, "missing_field"),
        (f"id=902064&lat=95.0&lon=30.0&timestamp={now}&key={key}", 422, "lat_out_of_range"),
        (f"id=902064&lat=north&lon=30.0&timestamp={now}&key={key}", 422, "bad_field"),
        (f"id=902064&lon=30.0&timestamp={now}&key={key}", 422, "missing_field"),
        (f"id=902064&lat=60&lon=30&timestamp=yesterday&key={key}", 422, "bad_field"),
        (f"id=902064&lat=60&lon=30&timestamp={now}&speed=-3&key={key}", 422, "value_out_of_range"),
        (f"id=902064&lat=60&lon=30&timestamp={now}&valid=false&key={key}", 422, "bad_field"),
        (f"id=902064&lat=60&lon=30&timestamp={now + 86400}&key={key}", 422, "tst_in_future"),
    ]
    for query, status, reason in cases:
        answer = client.get(f"/api/osmand?{query}")
        assert answer.status_code == status, (query, answer.text)
        assert answer.json()["reason"] == reason, (query, answer.text)
        assert answer.json()["detail"].startswith(f"{reason}: ")
    not_json = client.post(
        f"/api/osmand?key={key}", content=b"[1, 2]", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    no_coords = client.post(
        f"/api/osmand?key={keys['8737767034']}",
        json={"device_id": "8737767034", "location": {"timestamp": "2021-07-21T08:06:34Z"}},
    )
    assert no_coords.status_code == 422 and no_coords.json()["reason"] == "missing_field"

    assert stored_fixes(store, "902064") == []
    stats = admin_stats(center)
    assert stats["channels"]["osmand"] == {
        "rejected:missing_field": 3,
        "rejected:lat_out_of_range": 1,
        "rejected:bad_field": 4,
        "rejected:value_out_of_range": 1,
        "rejected:tst_in_future": 1,
    }
    # Those of a device that proved itself are dead letters with the request, never the key.
    letters = store.ingest.deadletters()
    assert len(letters) == 8
    assert {letter["device"] for letter in letters} == {"zhang3/902064", "zhang3/8737767034"}
    assert all(key not in letter["payload"] for letter in letters)
    north = next(letter for letter in letters if "north" in letter["payload"])
    assert north["reason"] == "bad_field"
    assert north["payload_sha256"] == hashlib.sha256(north["payload"].encode()).hexdigest()


def admin_stats(center: Center) -> dict[str, Any]:
    answer = center.client.get("/api/ingest/stats", headers=center.admin)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_printed_settings_carry_a_key_that_works_until_it_is_revoked(center, capsys) -> None:
    client, store = center.client, center.store
    assert issue_http_key(store, "353861053849681", "https://yiwang.example.cn/") == 0
    printed = capsys.readouterr().out
    url = next(line.split()[-1] for line in printed.splitlines() if "Server URL" in line)
    assert url.startswith("https://yiwang.example.cn/api/osmand?key=")
    query = f"&id=353861053849681&lat=49.60688&lon=6.15788&timestamp={int(time.time())}"
    path = url.removeprefix("https://yiwang.example.cn")
    assert client.get(path + query).status_code == 200
    assert issue_http_key(store, "unbound-device", "https://yiwang.example.cn") == 1

    assert revoke_http_key(store, "353861053849681") == 0
    assert client.get(path + query).status_code == 403
    assert revoke_http_key(store, "353861053849681") == 1


class _FailsOnce(IngestStore):
    """A sink whose first batch write raises, as a fault in the store's function would."""

    failed = False

    def send_batch(self, batch: IngestBatch, received_at: float) -> PendingWrite:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the first write fails")
        return super().send_batch(batch, received_at)


def test_each_message_of_a_write_that_raised_still_gets_its_verdict(store, prefix) -> None:
    sink = _FailsOnce(store.redis, store.keys, store.registry)
    writer = BatchWriter(sink, ingest_config(prefix))
    now = time.time()
    good = {"_type": "location", "lat": 29.08, "lon": 119.65, "tst": int(now)}
    bad = {**good, "lat": 95}
    messages = [
        Received(0, 0, f"{prefix}/li4/phone", json.dumps(fix).encode(), now) for fix in (good, bad)
    ]
    stored, refused = writer.write_judged(messages)
    assert sink.failed and stored is None
    assert refused is not None and refused.reason is Reason.LAT_OUT_OF_RANGE
    assert [f["lat"] for f in stored_fixes(store, "li4/phone")] == [29.08]
