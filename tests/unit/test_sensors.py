"""IoT sensors in the core and the engine's step, time stepped by hand: the catalogue as data,
alarms opening and counting on one incident within the window, clears recorded, readings
below threshold ignored, silence past the heartbeat reported once, and which screens see
a sensor's alerts."""

from __future__ import annotations

import json

import msgspec
import pytest

from devices.messages import Reading
from devices.quality import Limits
from devices.sensors import judge_reading
from dispatch.api.live import Scope
from dispatch.core import events as ev
from dispatch.core.access import AreaScope
from dispatch.core.center import CommandCenter
from dispatch.core.feed import FeedType
from dispatch.core.model import Incident, IncidentId, Phase, Source
from dispatch.core.policy import PolicyBook, PolicyError
from dispatch.core.roster import OfficerId
from dispatch.core.sensors import (
    SENSOR_TYPES,
    NotAnAlarm,
    Sensor,
    SensorCatalogue,
    SensorReport,
    SensorState,
    sensor_events,
    sensor_silence,
)
from dispatch.core.timeline import IllegalTransition, TimelineError
from dispatch.engine.step import EngineCore
from tests.unit.test_access import IN_D2, IN_G1
from tests.unit.test_access import scope as area_scope
from tests.unit.test_engine_step import CITY, SCENE, Reads, online

T0 = 1_800_000_000.0
CATALOGUE = SensorCatalogue()
SMOKE = Sensor("SM-1", "smoke", SCENE, registered_at=T0 - 60, place="幸福路 12 号")
EXHAUST = Sensor("KE-1", "kitchen_exhaust", SCENE, registered_at=T0 - 60)


def report(
    value: float = 0.3, state: SensorState = SensorState.ALARM, sensor: Sensor = SMOKE
) -> SensorReport:
    unit = SENSOR_TYPES[sensor.sensor_type].unit
    return SensorReport(
        sensor.id, sensor.sensor_type, state, value, unit, T0, sensor.location, sensor.place
    )


def decide(center: CommandCenter, sensor_report: SensorReport, now: float, n: int):
    return sensor_events(
        sensor_report,
        center.policies.sensors,
        center.incidents.values(),
        now=now,
        new_incident=IncidentId(f"IOT-{n}"),
    )


def apply(center: CommandCenter, sensor_report: SensorReport, now: float, n: int) -> list[str]:
    """Decide and apply one report; the names of the events it meant."""
    events = decide(center, sensor_report, now, n)
    assert not isinstance(events, NotAnAlarm), events
    for event in events:
        center.handle(event, now)
    return [type(e).__name__ for e in events]


def test_the_built_in_types_open_catalogue_categories() -> None:
    book = PolicyBook.from_dict({})
    assert set(book.sensors.types) == {
        "smoke",
        "kitchen_exhaust",
        "grease_trap",
        "noise",
        "water_level",
    }
    for kind in book.sensors.types.values():
        assert kind.category in book.categories
    assert book.for_incident(book.sensors.types["smoke"].category, 1).auto_dispatch


def test_the_policy_file_changes_a_type_key_by_key_and_adds_types() -> None:
    book = PolicyBook.from_dict(
        {
            "categories": {"gas_leak": {"label": "燃气泄漏", "auto_dispatch": True}},
            "sensors": {
                "smoke": {"threshold": 0.15, "merge_window_s": 600},
                "gas": {"unit": "%LEL", "threshold": 20, "category": "gas_leak", "priority": 1},
            },
        }
    )
    smoke = book.sensors.types["smoke"]
    assert (smoke.threshold, smoke.merge_window_s, smoke.unit) == (0.15, 600, "dB/m")
    gas = book.sensors.types["gas"]
    assert (gas.label, gas.category, gas.heartbeat_s) == ("gas", "gas_leak", 3600)


@pytest.mark.parametrize(
    ("sensors", "why"),
    [
        ({"gas": {"unit": "%LEL", "threshold": 20}}, r"needs \['category'\]"),
        ({"gas": {"unit": "%", "threshold": 1, "category": "nowhere"}}, "not in the catalogue"),
        ({"smoke": {"heartbeat_s": 0}}, "heartbeat_s 0.0 must be a positive"),
        ({"smoke": {"priority": 9}}, "priority 9"),
        ({"smoke": {"limit": 1}}, r"unknown keys \['limit'\]"),
        ({"smoke": {"threshold": "high"}}, "could not convert"),
    ],
)
def test_a_sensor_type_that_cannot_be_used_is_refused_naming_it(sensors, why) -> None:
    with pytest.raises(PolicyError, match=why):
        PolicyBook.from_dict({"sensors": sensors})


def test_fifty_alarms_within_the_window_are_one_incident_counting_fifty() -> None:
    center = CommandCenter(PolicyBook.from_dict({}))
    assert apply(center, report(), T0, 0) == ["IncidentReported", "SensorAlarmed"]
    for n in range(1, 50):
        assert apply(center, report(0.2 + n / 100), T0 + 30 * n, n) == ["SensorAlarmed"]
    (incident,) = center.incidents.values()
    assert incident.id == "IOT-0" and incident.source is Source.IOT_ALARM
    assert (incident.category, incident.priority, incident.location) == ("fire_hazard", 1, SCENE)
    assert incident.title == "烟感报警 SM-1 幸福路 12 号: 0.3 dB/m (≥ 0.1)"
    alarms = incident.alarms
    assert alarms is not None
    assert (alarms.count, alarms.first_at, alarms.last_at) == (50, T0, T0 + 30 * 49)
    assert alarms.value == pytest.approx(0.69)
    assert incident.phase is Phase.REPORTED  # counting never moves the clock's phase


def test_an_alarm_past_the_window_or_after_the_handling_opens_a_new_incident() -> None:
    center = CommandCenter(PolicyBook.from_dict({}))
    window = SENSOR_TYPES["smoke"].merge_window_s
    apply(center, report(), T0, 0)
    assert apply(center, report(), T0 + window, 1) == ["SensorAlarmed"]  # the window's edge
    assert apply(center, report(), T0 + 2 * window + 1, 2)[0] == "IncidentReported"
    assert apply(center, report(), T0 + 2 * window + 2, 3) == ["SensorAlarmed"]
    assert {i.id: i.alarms.count for i in center.incidents.values() if i.alarms} == {
        "IOT-0": 2,
        "IOT-2": 2,
    }
    handled = center.incidents[IncidentId("IOT-2")]
    center.handle(ev.OrderIssued(handled.id, "O1", (OfficerId("zhang3"),), by="d"), T0 + 4000)
    center.handle(ev.OfficerArrived(handled.id, "O1", OfficerId("zhang3")), T0 + 4001)
    center.handle(ev.IncidentResolved(handled.id, by="zhang3"), T0 + 4002)
    # Resolved: the next alarm is news, and is counted on the newest incident from then on.
    assert apply(center, report(), T0 + 4003, 4)[0] == "IncidentReported"
    assert apply(center, report(), T0 + 4004, 5) == ["SensorAlarmed"]
    assert center.incidents[IncidentId("IOT-4")].alarms.count == 2


def test_a_clear_is_recorded_on_the_open_incident_and_a_new_alarm_counts_again() -> None:
    center = CommandCenter(PolicyBook.from_dict({}))
    apply(center, report(), T0, 0)
    assert apply(center, report(0.01, SensorState.CLEAR), T0 + 60, 1) == ["SensorCleared"]
    alarms = center.incidents[IncidentId("IOT-0")].alarms
    assert (alarms.count, alarms.cleared_at, alarms.value) == (1, T0 + 60, 0.01)
    apply(center, report(), T0 + 90, 2)
    alarms = center.incidents[IncidentId("IOT-0")].alarms
    assert (alarms.count, alarms.cleared_at) == (2, None)


def test_a_reading_below_the_threshold_or_a_clear_with_nothing_open_is_no_alarm() -> None:
    center = CommandCenter(PolicyBook.from_dict({}))
    low = decide(center, report(0.05), T0, 0)
    assert low == NotAnAlarm("0.05 dB/m is below the 烟感 threshold 0.1 dB/m")
    cleared = decide(center, report(0.0, SensorState.CLEAR), T0, 1)
    assert cleared == NotAnAlarm("sensor SM-1 cleared with no open incident")
    other_unit = SensorReport("SM-1", "smoke", SensorState.ALARM, 9.0, "mg/m3", T0, SCENE)
    assert decide(center, other_unit, T0, 2) == NotAnAlarm("smoke reads dB/m, not mg/m3")
    assert not center.incidents


def test_alarms_of_two_sensors_are_two_incidents() -> None:
    center = CommandCenter(PolicyBook.from_dict({}))
    apply(center, report(), T0, 0)
    apply(center, report(5.0, sensor=EXHAUST), T0 + 1, 1)
    apply(center, report(6.0, sensor=EXHAUST), T0 + 2, 2)
    counts = {i.alarms.sensor: (i.category, i.alarms.count) for i in center.incidents.values()}
    assert counts == {"SM-1": ("fire_hazard", 1), "KE-1": ("cooking_fume", 2)}


def test_the_timeline_counts_only_the_sensor_that_opened_the_incident() -> None:
    center = CommandCenter(PolicyBook.from_dict({}))
    apply(center, report(), T0, 0)
    with pytest.raises(TimelineError, match="counts the alarms of sensor SM-1, not KE-1"):
        center.handle(ev.SensorAlarmed(IncidentId("IOT-0"), "KE-1", 5.0, "mg/m3", T0), T0 + 1)
    center.handle(
        ev.IncidentReported(IncidentId("H"), "street_vending", 3, SCENE, Source.HOTLINE_12345),
        T0,
    )
    with pytest.raises(TimelineError, match="no sensor alarm to clear"):
        center.handle(ev.SensorCleared(IncidentId("H"), "SM-1", 0.0, "dB/m", T0), T0 + 1)
    center.handle(ev.IncidentCancelled(IncidentId("IOT-0"), by="d"), T0 + 2)
    with pytest.raises(IllegalTransition):
        center.handle(ev.SensorCleared(IncidentId("IOT-0"), "SM-1", 0.0, "dB/m", T0), T0 + 3)


def test_a_silent_sensor_is_reported_once_and_again_only_after_it_was_heard() -> None:
    heartbeat_s = SENSOR_TYPES["smoke"].heartbeat_s
    heard_at = T0
    first = sensor_silence([(SMOKE, heard_at)], CATALOGUE, {}, now=T0 + heartbeat_s)
    assert first.silent == []  # silent exactly the heartbeat: not yet
    late = T0 + heartbeat_s + 1
    check = sensor_silence([(SMOKE, heard_at)], CATALOGUE, {}, now=late)
    (silent,) = check.silent
    assert (silent.sensor, silent.silent_since, silent.heartbeat_s) == ("SM-1", T0, heartbeat_s)
    assert silent.summary(late) == (
        "sensor SM-1 (幸福路 12 号), smoke: silent for 3601 s, heartbeat 3600 s"
    )
    reported = {"SM-1": T0}
    again = sensor_silence([(SMOKE, heard_at)], CATALOGUE, reported, now=late + 600)
    assert (again.silent, again.heard_again) == ([], [])
    back = sensor_silence([(SMOKE, late + 700)], CATALOGUE, reported, now=late + 701)
    assert (back.silent, back.heard_again) == ([], ["SM-1"])
    gone = sensor_silence([], CATALOGUE, reported, now=late + 701)
    assert gone.unregistered == ["SM-1"]


def test_a_sensor_never_heard_is_silent_from_its_registration_and_its_own_heartbeat_wins() -> None:
    own = Sensor("SM-2", "smoke", SCENE, registered_at=T0, heartbeat_s=60.0)
    assert [s.sensor for s in sensor_silence([(own, None)], CATALOGUE, {}, now=T0 + 61).silent] == [
        "SM-2"
    ]
    assert sensor_silence([(own, None)], CATALOGUE, {}, now=T0 + 59).silent == []


# --- the engine's step ----------------------------------------------------------------------


def iot_entry(value: float, state: str = "alarm", tst: float = T0, sensor: Sensor = SMOKE):
    """The inbox entry the ingest files for a sensor's reading."""
    unit = SENSOR_TYPES[sensor.sensor_type].unit
    reading = Reading(sensor.sensor_type, value, unit, state, tst)  # type: ignore[arg-type]
    body = judge_reading(sensor, reading, CATALOGUE, Limits())
    assert isinstance(body, dict)
    return {"kind": "iot", "device": f"iot/{sensor.id}", "body": json.dumps({**body, "rx": tst})}


def engine(**kwargs) -> EngineCore:
    return EngineCore(
        PolicyBook.from_dict({}), city=CITY, first_silence_check_at=T0 + 10**6, **kwargs
    )


def test_the_step_opens_one_fire_incident_for_fifty_alarms_and_dispatches_it_itself() -> None:
    core = engine()
    entries = [(f"1-{n}", iot_entry(0.2 + n / 1000, tst=T0 + n)) for n in range(50)]
    step = core.step(entries, [], Reads(online("near", "far")), T0 + 60)
    assert list(step.incidents) == ["IOT-1-0"]
    incident = msgspec.json.decode(step.incidents["IOT-1-0"], type=Incident)
    assert incident.alarms is not None and incident.alarms.count == 50
    # fire_hazard dispatches by itself: the nearest free officer has the order.
    assert incident.phase is Phase.DISPATCHED
    assert incident.order is not None and incident.order.officers == ("near",)
    events = [a["event"] for a in step.audit if a["kind"] == "event"]
    assert events.count("SensorAlarmed") == 50 and events.count("IncidentReported") == 1
    assert step.inbox_done == [e for e, _ in entries]


def test_the_step_audits_a_low_reading_and_a_clear_on_the_incident() -> None:
    core = engine()
    low = core.step([("1-0", iot_entry(0.01))], [], Reads({}), T0)
    assert not low.incidents
    (ignored,) = low.audit
    assert (ignored["kind"], ignored["sensor"]) == ("not_an_alarm", "SM-1")
    core.step([("2-0", iot_entry(0.5))], [], Reads(online("near")), T0 + 1)
    cleared = core.step([("3-0", iot_entry(0.0, "clear"))], [], Reads({}), T0 + 2)
    (record,) = [a for a in cleared.audit if a["kind"] == "event"]
    assert (record["event"], record["incident"]) == ("SensorCleared", "IOT-2-0")
    assert json.loads(record["detail"])["value"] == 0.0
    incident = msgspec.json.decode(cleared.incidents["IOT-2-0"], type=Incident)
    assert incident.alarms is not None and incident.alarms.cleared_at == T0 + 2


def test_a_sensor_silent_past_its_heartbeat_raises_one_alert_until_heard_again() -> None:
    core = EngineCore(PolicyBook.from_dict({}), city=CITY, first_silence_check_at=T0)
    heartbeat_s = SENSOR_TYPES["smoke"].heartbeat_s
    now = T0 + heartbeat_s + 1
    heard = [(SMOKE, T0)]
    first = core.step([], [], Reads({}), now, sensors=lambda: heard)
    (alert,) = first.events
    assert alert["type"] == FeedType.SENSOR_SILENT
    assert json.loads(alert["body"])["sensor"] == "SM-1"
    assert [a["kind"] for a in first.audit] == ["sensor_silent"]
    assert first.silent_sensors == {"SM-1": T0}
    for n in range(1, 4):  # each silence check after: no second alert
        later = core.step([], [], Reads({}), now + 10 * n, sensors=lambda: heard)
        assert not later.events and not later.silent_sensors
    # A restarted engine remembers what was reported.
    restarted = EngineCore(
        PolicyBook.from_dict({}), city=CITY, silent_sensors={"SM-1": T0}, first_silence_check_at=T0
    )
    assert not restarted.step([], [], Reads({}), now + 60, sensors=lambda: heard).events
    back = restarted.step([], [], Reads({}), now + 70, sensors=lambda: [(SMOKE, now + 65)])
    assert back.silent_sensors == {"SM-1": None}
    assert [a["kind"] for a in back.audit] == ["sensor_heard"]


def test_a_step_reads_sensors_only_when_it_checks_for_silence() -> None:
    reads = []
    core = EngineCore(PolicyBook.from_dict({}), city=CITY, first_silence_check_at=T0)
    for n in range(10):
        core.step([], [], Reads({}), T0 + n, sensors=lambda: reads.append(1) or [])
    assert len(reads) == 2  # at T0 and T0 + 5 s


def test_an_iot_entry_that_cannot_be_read_is_refused_with_the_reason() -> None:
    entry = {"kind": "iot", "body": json.dumps({"sensor": "SM-1", "state": "alarm"})}
    step = engine().step([("1-0", entry)], [], Reads({}), T0)
    (refused,) = step.audit
    assert refused["kind"] == "refused" and "is not a non-empty string" in refused["reason"]


def test_a_scoped_screen_sees_a_sensors_alerts_and_readings_by_its_place() -> None:
    inside = {"sensor": "SM-1", "location": list(IN_G1)}
    outside = {"sensor": "SM-2", "location": list(IN_D2)}
    street = Scope(None, None, area_scope("S1"))
    assert street.view(FeedType.SENSOR_SILENT, inside) == inside
    assert street.view(FeedType.SENSOR_SILENT, outside) is None
    reading = {"sensor": "SM-1", "lon": IN_G1.lon, "lat": IN_G1.lat}
    assert street.view(FeedType.IOT, reading) == reading
    assert street.view(FeedType.IOT, {"lon": IN_D2.lon, "lat": IN_D2.lat}) is None
    # An officer's page shows their own orders, no sensor's.
    officer = Scope(None, "gao", AreaScope(None, None, None))
    assert officer.view(FeedType.SENSOR_SILENT, inside) is None
