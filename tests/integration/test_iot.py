"""IoT sensors end to end over real Mosquitto and Redis: a smoke detector logged in with its
own credentials alarms 50 times and the center holds one incident counting 50, dispatched by
itself (fire_hazard); its clear is on the incident's timeline; bad readings are dead-lettered
with their reasons; a sensor silent past its heartbeat raises one alert; a sensor registered
with the CLI may publish its own two topics only."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
import shapely

from devices.registry import Binding
from dispatch.broker_accounts import BrokerAccounts
from dispatch.city import City
from dispatch.cli import main as yiwang
from dispatch.clock import Clock
from dispatch.core.feed import FeedType
from dispatch.core.model import Incident, Phase, Source
from dispatch.core.policy import PolicyBook
from dispatch.core.roster import OfficerId, Roster, Shift, Team, TeamId
from dispatch.core.sensors import Sensor
from dispatch.engine import Engine
from dispatch.store import Store
from gis.areas import GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat
from gis.routing import StraightLine
from tests.integration.helpers import mqtt_client, publish_all, verdicts, wait_until
from tests.integration.test_broker_auth import NOT_AUTHORIZED, Session

PLACE = LonLat(119.6500, 29.0800)


def city(now: float) -> City:
    areas = AreaIndex([Area(AreaId("cell"), "cell", GRID, shapely.box(119.60, 29.0, 119.70, 29.1))])
    roster = Roster(
        [Team(TeamId("t1"), "一中队", frozenset({AreaId("cell")}))],
        [Shift(TeamId("t1"), frozenset({OfficerId("zhang3")}), now - 3600, now + 3600)],
        areas,
    )
    return City(areas, roster, StraightLine())


@pytest.fixture
def start_engine(store: Store) -> Iterator[Callable[..., Engine]]:
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(clock: Clock | None = None) -> Engine:
        engine = Engine(
            store,
            holder=f"engine-{store.keys.prefix}",
            policies=PolicyBook.from_dict({}),
            lease_ms=3000,
            city=city(time.time()),
            clock=clock,
        )
        stop = threading.Event()
        thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread))
        wait_until(engine.leading.is_set, 10, "the engine to lead")
        return engine

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(10)


def sensor_login(broker, root: str, sensor: str) -> tuple[str, str]:
    """The sensor's own broker account, confined to its two topics."""
    username, password = f"iot/{sensor}", secrets.token_urlsafe(12)
    with BrokerAccounts(broker.admin(), root) as accounts:
        accounts.revoke_device(username)
        accounts.issue_sensor(username, sensor, password)
    return username, password


def reading(value: float, tst: float, state: str = "alarm", unit: str = "dB/m") -> bytes:
    return json.dumps(
        {"_type": "reading", "sensor_type": "smoke", "value": value, "unit": unit,
         "state": state, "tst": tst}
    ).encode()  # fmt: skip


def sensor_incidents(store: Store) -> list[Incident]:
    return [i for i in store.incidents.load_incidents().values() if i.source is Source.IOT_ALARM]


def test_fifty_alarms_are_one_dispatched_incident_and_the_clear_is_on_its_timeline(
    broker, logins, store, prefix, start_ingest, start_engine
) -> None:
    now = time.time()
    sensor = f"SM-{prefix[-6:]}"
    store.registry.bind([Binding("BC-1", "zhang3", "t1")])
    store.sensors.register(Sensor(sensor, "smoke", PLACE, now, area="cell", place="幸福路 12 号"))
    start_ingest()
    start_engine()
    officer = mqtt_client(broker.port, f"{prefix}-officer", mqtt.MQTTv311, logins.simulator)
    fix = {"_type": "location", "lon": 119.648, "lat": 29.08, "tst": int(now), "acc": 5}
    publish_all(officer, [(f"{prefix}/zhang3/BC-1", json.dumps(fix).encode())])
    wait_until(lambda: verdicts(store) == 1, 10, "the officer's fix")

    device = mqtt_client(
        broker.port, f"{prefix}-smoke", mqtt.MQTTv311, sensor_login(broker, prefix, sensor)
    )
    alarm_topic = f"{prefix}/iot/{sensor}/alarm"
    publish_all(device, [(alarm_topic, reading(0.2 + n / 1000, now + n)) for n in range(50)])
    wait_until(
        lambda: [i.alarms.count for i in sensor_incidents(store) if i.alarms] == [50],
        20,
        "one incident counting 50 alarms",
    )
    (incident,) = sensor_incidents(store)
    assert (incident.category, incident.priority, incident.location) == ("fire_hazard", 1, PLACE)
    assert incident.title.startswith(f"烟感报警 {sensor} 幸福路 12 号")
    # fire_hazard dispatches by itself: the officer on duty nearby has the order.
    assert incident.phase is Phase.DISPATCHED
    assert incident.order is not None and incident.order.officers == ("zhang3",)
    assert store.ingest.stats()["msg:iot"] == 50

    publish_all(device, [(alarm_topic, reading(0.0, now + 60, "clear"))])
    wait_until(
        lambda: sensor_incidents(store)[0].alarms.cleared_at is not None, 10, "the clear recorded"
    )
    timeline = store.incidents.incident_audit(incident.id)
    events = [r["event"] for r in timeline if r["kind"] == "event"]
    assert events.count("SensorAlarmed") == 50 and events[-1] == "SensorCleared"
    assert events.count("IncidentReported") == 1 and "OrderIssued" in events
    (only,) = sensor_incidents(store)
    assert only.alarms is not None and only.alarms.count == 50
    device.loop_stop()
    officer.loop_stop()


def test_bad_readings_are_dead_lettered_with_their_reasons_and_counted(
    broker, logins, store, prefix, start_ingest, start_engine
) -> None:
    now = time.time()
    store.sensors.register(Sensor("SM-1", "smoke", PLACE, now))
    start_ingest()
    start_engine()
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(
        client,
        [
            (f"{prefix}/iot/SM-1/alarm", b'{"_type":"reading","sensor_type":"smoke"'),
            (f"{prefix}/iot/SM-2/alarm", reading(0.5, now)),
            (f"{prefix}/iot/SM-2/hb", b'{"_type":"devstat","tst":1}'),
            (f"{prefix}/iot/SM-1/alarm", reading(0.5, now, unit="%obs/m")),
            (f"{prefix}/iot/SM-1", reading(0.5, now + 1)),
            (f"{prefix}/zhang3/BC-1/alarm", reading(0.5, now + 2)),
            (f"{prefix}/iot/SM-1/alarm", reading(0.05, now + 3)),  # below the threshold
        ],
    )
    wait_until(lambda: verdicts(store) == 7, 10, "seven verdicts")
    stats = store.ingest.stats()
    rejected = {k: v for k, v in stats.items() if k.startswith("rejected:")}
    assert rejected == {
        "rejected:malformed_json": 1,
        "rejected:unknown_sensor": 2,
        "rejected:wrong_unit": 1,
        "rejected:bad_topic": 2,
    }
    reasons = {d["reason"] for d in store.ingest.deadletters()}
    assert reasons == {"malformed_json", "unknown_sensor", "wrong_unit", "bad_topic"}
    # The low reading reached the engine, which found it no alarm.
    wait_until(
        lambda: any(r["kind"] == "not_an_alarm" for r in store.incidents.audit_records()),
        10,
        "the low reading judged",
    )
    assert not sensor_incidents(store)
    client.loop_stop()


def test_a_sensor_silent_past_its_heartbeat_raises_one_alert_until_it_is_heard(
    broker, logins, store, prefix, start_ingest, start_engine
) -> None:
    # The center's clock runs 100 times faster: a silence check every 0.05 s.
    clock = Clock(100.0, time.time())
    store.sensors.register(Sensor("WL-1", "water_level", PLACE, clock() - 7200, place="地下通道"))
    start_ingest()
    start_engine(clock)

    def alerts() -> list[dict[str, str]]:
        return [e for e in store.recent_events() if e["type"] == FeedType.SENSOR_SILENT]

    wait_until(lambda: len(alerts()) == 1, 10, "the silence alert")
    time.sleep(0.5)  # ten more silence checks on the center's clock
    (alert,) = alerts()
    body = json.loads(alert["body"])
    assert (body["sensor"], body["heartbeat_s"], body["place"]) == ("WL-1", 900, "地下通道")
    assert "silent for" in body["summary"]
    assert list(store.incidents.silent_sensors()) == ["WL-1"]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, [(f"{prefix}/iot/WL-1/hb", b'{"_type":"devstat","tst":1,"batt":80}')])
    wait_until(lambda: not store.incidents.silent_sensors(), 10, "the sensor heard again")
    kinds = [r["kind"] for r in store.incidents.audit_records()]
    assert (kinds.count("sensor_silent"), kinds.count("sensor_heard")) == (1, 1)
    client.loop_stop()


def test_a_sensor_registered_by_the_cli_publishes_only_its_own_two_topics(
    broker, logins, redis_service, store, prefix, tmp_path, monkeypatch, capsys
) -> None:
    cell = {"type": "Polygon", "coordinates": [[[119.6, 29.0], [119.7, 29.0], [119.7, 29.1],
                                                [119.6, 29.1], [119.6, 29.0]]]}  # fmt: skip
    areas = tmp_path / "areas.geojson"
    areas.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": "cell", "name": "格"},
                        "geometry": cell,
                    }
                ],
            }
        )
    )
    environment = {
        "redis_url": redis_service.url,
        "key_prefix": prefix,
        "topic_root": prefix,
        "mqtt_port": str(broker.port),
        "areas_file": str(areas),
        **logins.settings,
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"YIWANG_{name.upper()}", value)
    sensor = f"KE-{prefix[-6:]}"
    register = ["devices", "register-sensor", sensor, "--type", "kitchen_exhaust"]
    assert yiwang([*register, "--lon", "119.65", "--lat", "29.08", "--issue-credentials"]) == 0
    printed = capsys.readouterr().out
    assert f"sensor {sensor}: 油烟 (kitchen_exhaust), alarm at ≥ 2 mg/m3" in printed
    password = next(line.split()[1] for line in printed.splitlines() if "password " in line)
    registered = store.sensors.sensor(sensor)
    assert registered is not None and (registered.area, registered.sensor_type) == (
        "cell",
        "kitchen_exhaust",
    )
    outside = ["--lon", "116.4", "--lat", "39.9"]
    assert yiwang(["devices", "register-sensor", "KE-x", "--type", "noise", *outside]) == 1
    assert "outside every area of the city" in capsys.readouterr().err

    session = Session(broker.port, f"{prefix}-ke", (f"iot/{sensor}", password))
    own = f"{prefix}/iot/{sensor}"
    # Taken (with no ingest running here, nobody subscribes: still no failure).
    assert not session.publish(f"{own}/alarm", reading(1.0, time.time())).is_failure
    assert not session.publish(f"{own}/hb", b'{"_type":"devstat","tst":1}').is_failure
    for foreign in (own, f"{own}/sos", f"{prefix}/iot/KE-other/alarm", f"{prefix}/zhang3/BC-1"):
        assert session.publish(foreign, reading(1.0, time.time())).value == NOT_AUTHORIZED, foreign
    assert session.subscribe(f"{prefix}/#").value == NOT_AUTHORIZED
    session.close()
    assert yiwang(["devices", "revoke-credentials", f"iot/{sensor}"]) == 0
    assert yiwang(["devices", "unregister-sensor", sensor]) == 0
    assert store.sensors.sensor(sensor) is None
