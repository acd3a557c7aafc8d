"""IoT sensors on the wire, without a broker: their topics, their payload, how a reading is
judged against the registry and the catalogue, registering a sensor at its place, and what
a sensor's broker account may publish."""

from __future__ import annotations

import pytest
import shapely

from devices import messages
from devices.quality import Limits, Reason, Rejection
from devices.registry import BindingError, make_binding, make_sensor
from devices.sensors import judge_reading
from devices.topics import Channel, TopicError, parse_topic
from dispatch.broker_accounts import Acl, sensor_acls
from dispatch.core.sensors import Sensor, SensorCatalogue
from gis.areas import GRID, Area, AreaId, AreaIndex
from gis.coords import Datum, LonLat, gcj02_to_wgs84
from gis.service_area import box_area

CATALOGUE = SensorCatalogue()
HOME = LonLat(119.65, 29.08)
T0 = 1_800_000_000.0
AREAS = AreaIndex([Area(AreaId("cell"), "cell", GRID, shapely.box(119.60, 29.0, 119.70, 29.1))])


def reading(**fields: object) -> messages.Reading:
    given = {"sensor_type": "smoke", "value": 0.3, "unit": "dB/m", "state": "alarm", "tst": T0}
    return messages.Reading(**(given | fields))  # type: ignore[arg-type]


def test_a_sensor_publishes_its_readings_and_heartbeats_under_the_sensors_level() -> None:
    alarm = parse_topic("ot", "ot/iot/SM-1/alarm")
    assert (alarm.sensor, alarm.device, alarm.channel) == (True, "SM-1", Channel.ALARM)
    assert parse_topic("ot", "ot/iot/SM-1/hb").sensor
    assert not parse_topic("ot", "ot/zhang3/BC-1/sos").sensor


@pytest.mark.parametrize(
    "topic", ["ot/iot/SM-1", "ot/iot/SM-1/sos", "ot/iot/SM-1/conn", "ot/zhang3/BC-1/alarm"]
)
def test_sensor_and_officer_channels_do_not_mix(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic("ot", topic)


def test_no_officer_may_be_named_as_the_sensors_level() -> None:
    with pytest.raises(BindingError, match="sensors' topic level"):
        make_binding(device="phone", user="iot")
    with pytest.raises(BindingError, match="sensors' topic level"):
        make_binding(device="BC-1", officer="iot")


def test_a_reading_round_trips_and_a_bad_one_is_refused_with_a_reason() -> None:
    original = reading(lat=29.0, lon=119.6, seq=7)
    assert messages.decode(Channel.ALARM, messages.encode(original)) == original
    for payload, reason in (
        (b'{"sensor_type":"smoke","value":1,"unit":"dB/m","tst":1}', "missing_field"),
        (b'{"sensor_type":"smoke","value":1,"unit":"dB/m","state":"on","tst":1}', "bad_field"),
        (b'{"sensor_type":"smoke","value":"1","unit":"dB/m","state":"alarm","tst":1}', "bad_field"),
        (b'{"sensor_type":"","value":1,"unit":"dB/m","state":"alarm","tst":1}', "bad_field"),
        (
            b'{"sensor_type":"smoke","value":1e999,"unit":"dB/m","state":"alarm","tst":1}',
            "bad_field",
        ),
        (b'{"sensor_type":"smoke",', "malformed_json"),
    ):
        with pytest.raises(messages.PayloadError) as err:
            messages.decode(Channel.ALARM, payload)
        assert err.value.reason == reason, payload


def test_a_reading_is_filed_with_the_registered_place() -> None:
    fixed = Sensor("SM-1", "smoke", HOME, T0, area="cell", place="幸福路 12 号")
    # A fixed sensor's own position (a wrong one, here) never moves its alarm.
    body = judge_reading(fixed, reading(lat=30.0, lon=120.0, seq=3), CATALOGUE, Limits())
    assert body == {
        "_type": "reading",
        "sensor": "SM-1",
        "sensor_type": "smoke",
        "state": "alarm",
        "value": 0.3,
        "unit": "dB/m",
        "tst": T0,
        "place": "幸福路 12 号",
        "lon": HOME.lon,
        "lat": HOME.lat,
        "seq": 3,
    }


def test_a_mobile_sensor_is_placed_by_its_own_position_while_it_can_be_used() -> None:
    mobile = Sensor("NZ-9", "noise", HOME, T0, mobile=True)
    limits = Limits(service_area=box_area(119.0, 28.5, 120.5, 29.5))
    own = reading(sensor_type="noise", unit="dB(A)", value=80, lon=119.7, lat=29.1, crs="gcj02")
    body = judge_reading(mobile, own, CATALOGUE, limits)
    assert isinstance(body, dict)
    assert (body["lon"], body["lat"]) == pytest.approx(gcj02_to_wgs84(119.7, 29.1))
    far = reading(sensor_type="noise", unit="dB(A)", value=80, lon=116.4, lat=39.9)
    body = judge_reading(mobile, far, CATALOGUE, limits)
    assert isinstance(body, dict)
    assert (body["lon"], body["lat"]) == HOME  # the alarm holds, at the registered place
    assert str(body["position_refused"]).startswith("outside_service_area: ")


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"sensor_type": "noise", "unit": "dB(A)"}, Reason.WRONG_SENSOR_TYPE),
        ({"unit": "%obs/m"}, Reason.WRONG_UNIT),
        ({"value": float("inf")}, Reason.NOT_FINITE),
    ],
)
def test_a_reading_as_another_type_or_in_another_unit_is_refused(given, reason) -> None:
    fixed = Sensor("SM-1", "smoke", HOME, T0)
    judged = judge_reading(fixed, reading(**given), CATALOGUE, Limits())
    assert isinstance(judged, Rejection) and judged.reason is reason


def test_a_sensor_is_registered_in_wgs84_in_the_area_holding_it() -> None:
    sensor = make_sensor(
        sensor_id="KE-1",
        sensor_type="kitchen_exhaust",
        lon=119.65,
        lat=29.08,
        datum=Datum.GCJ02,
        catalogue=CATALOGUE,
        areas=AREAS,
        registered_at=T0,
        place=" 老王烧烤 ",
    )
    assert sensor.location == pytest.approx(gcj02_to_wgs84(119.65, 29.08))
    assert (sensor.area, sensor.place, sensor.heartbeat_s) == ("cell", "老王烧烤", None)
    assert CATALOGUE.heartbeat_of(sensor) == 900


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"sensor_type": "gas"}, "unknown sensor type 'gas'; known types: grease_trap"),
        ({"lon": 116.4, "lat": 39.9}, "outside every area of the city"),
        ({"lat": 91.0}, "lat 91.0 is outside"),
        ({"sensor_id": "a/b"}, "holds a '/'"),
        ({"heartbeat_s": 0.0}, "positive number of seconds"),
    ],
)
def test_a_sensor_that_cannot_be_registered_is_refused_naming_why(given, why) -> None:
    fields = {
        "sensor_id": "SM-1",
        "sensor_type": "smoke",
        "lon": 119.65,
        "lat": 29.08,
        "datum": Datum.WGS84,
        "catalogue": CATALOGUE,
        "areas": AREAS,
        "registered_at": T0,
    }
    with pytest.raises(BindingError, match=why):
        make_sensor(**(fields | given))  # type: ignore[arg-type]


def test_a_sensor_account_may_publish_its_two_topics_and_read_nothing() -> None:
    assert sensor_acls("ot", "SM-1") == [
        Acl("publishClientSend", "ot/iot/SM-1/alarm"),
        Acl("publishClientSend", "ot/iot/SM-1/hb"),
    ]
