"""The OsmAnd protocol read into OwnTracks locations, without servers: Traccar's time rules,
the unit conversions, Traccar Client's "unknown" values and the refusals' reasons."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from devices import messages, osmand
from devices.quality import Reason
from devices.topics import Channel

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = 1_763_800_000.0


def read(**params: str) -> messages.Location:
    return osmand.read_query({"lat": "29.08", "lon": "119.65", **params}, now=NOW, zone=SHANGHAI)


@pytest.mark.parametrize(
    ("timestamp", "tst"),
    [
        ("1377177267", 1377177267),  # epoch seconds
        ("2147483646", 2147483646),  # the last second Traccar reads as seconds
        ("1442068686579", 1442068686.579),  # milliseconds
        ("2016-01-27T18:55:47Z", 1453920947),
        ("2016-01-28T02:55:47+08:00", 1453920947),
        ("2016-01-28 02:55:47", 1453920947),  # no offset: the center's zone
        ("", int(NOW)),  # no time: now
    ],
)
def test_a_timestamp_is_read_as_traccar_reads_it(timestamp: str, tst: float) -> None:
    assert read(timestamp=timestamp).tst == pytest.approx(tst)


def test_without_a_timestamp_a_position_is_of_now() -> None:
    assert read().tst == int(NOW)


def test_speed_in_knots_becomes_kmh_and_the_rest_keeps_its_units() -> None:
    location = read(
        speed="10", heading="90.5", altitude="30", accuracy="8", hdop="1.2", batt="87.4"
    )
    assert (location.vel, location.cog, location.alt, location.acc, location.hdop) == (
        18.52,
        90.5,
        30.0,
        8.0,
        1.2,
    )
    assert location.batt == 87
    assert read(bearing="271").cog == 271.0  # bearing and heading are one field


def test_location_gives_lat_then_lon() -> None:
    location = osmand.read_query({"location": "29.08,119.65"}, now=NOW, zone=SHANGHAI)
    assert (location.lon, location.lat) == (119.65, 29.08)


def test_traccar_clients_json_converts_ms_and_fractions_and_drops_unknowns() -> None:
    doc = {
        "device_id": "8737767034",
        "location": {
            "timestamp": "2021-07-21T08:06:34.444Z",
            "coords": {"latitude": 29.08, "longitude": 119.65, "speed": 10, "heading": -1},
            "battery": {"level": 0.5},
        },
    }
    assert osmand.json_device_id(doc) == "8737767034"
    location = osmand.read_json(doc, now=NOW, zone=SHANGHAI)
    assert (location.vel, location.cog, location.batt) == (36.0, None, 50)
    assert location.tst == pytest.approx(1626854794.444)
    doc["location"]["coords"]["speed"] = -1  # type: ignore[index]
    assert osmand.read_json(doc, now=NOW, zone=SHANGHAI).vel is None


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"lat": "north"}, Reason.BAD_FIELD),
        ({"lat": "nan"}, Reason.NOT_FINITE),
        ({"lon": ""}, Reason.MISSING_FIELD),
        ({"location": "29.08"}, Reason.BAD_FIELD),
        ({"timestamp": "last tuesday"}, Reason.BAD_FIELD),
        ({"valid": "0"}, Reason.BAD_FIELD),
        ({"speed": "fast"}, Reason.BAD_FIELD),
    ],
)
def test_a_request_that_is_no_position_is_refused_with_its_reason(
    params: dict[str, str], reason: Reason
) -> None:
    with pytest.raises(osmand.OsmAndError) as refused:
        read(**params)
    assert refused.value.reason is reason


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, Reason.MISSING_FIELD),
        ({"id": ""}, Reason.MISSING_FIELD),
        ({"id": "a\nb"}, Reason.BAD_FIELD),
    ],
)
def test_a_request_must_name_its_device(params: dict[str, str], reason: Reason) -> None:
    with pytest.raises(osmand.OsmAndError) as refused:
        osmand.query_device_id(params)
    assert refused.value.reason is reason
    assert osmand.query_device_id({"deviceid": "353861053849681"}) == "353861053849681"


def test_the_payload_decodes_as_the_location_and_keeps_the_request() -> None:
    location = read(timestamp="1377177267", speed="1")
    payload = osmand.payload(location, "id=1&lat=29.08&lon=119.65")
    assert messages.decode(Channel.LOCATION, payload) == location
    assert b'"osmand":"id=1&lat=29.08&lon=119.65"' in payload


def test_a_key_matches_only_its_digest() -> None:
    key = osmand.new_device_key()
    assert len(key) >= 32
    digest = osmand.key_digest(key)
    assert osmand.key_matches(key, digest)
    assert not osmand.key_matches(key + "x", digest)
    assert key not in digest
