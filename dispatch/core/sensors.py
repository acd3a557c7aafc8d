"""IoT sensors (物联感知): the catalogue of sensor types as data, the sensors registered at
their places, and what a sensor's report means for the incidents (pure).

A sensor type says what its readings measure (`unit`), the reading at or above which the
center counts an alarm (`threshold`), the incident an alarm opens (`category`, `priority`),
how long the sensor may stay silent before it is reported (`heartbeat_s`), and for how long
after its last alarm a new one still belongs to the same incident (`merge_window_s`). The
built-in types are the 综合行政执法 cases; the policy file's `sensors:` section changes them
key by key and adds others:

    sensors:
      smoke: {threshold: 0.15}
      gas: {label: 可燃气体, unit: "%LEL", threshold: 20, category: fire_hazard, priority: 1}

A sensor reports `alarm` or `clear`. An alarm whose reading is below its type's threshold is
no alarm (the center decides, not the device). An alarm within the window of the sensor's
open incident, while that incident is not yet resolved, is counted on it rather than opening
another (50 alarms of one smoke detector are one incident with a count of 50); after the
window, or once the incident is resolved, the next alarm opens a new incident. A clear is
recorded on the sensor's open incident. A sensor silent past its heartbeat is reported once,
and again only after it has been heard in between.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dispatch.core import events as ev
from dispatch.core.model import Incident, IncidentId, Phase, Source
from gis.coords import LonLat

TYPE_KEY_MAX = 32
PLACE_MAX = 120
DEFAULT_HEARTBEAT_S = 3600.0
DEFAULT_MERGE_WINDOW_S = 1800.0
# An alarm of these phases is counted on the incident; a resolved incident is handled, so an
# alarm after it is news.
_MERGING = frozenset(
    {Phase.REPORTED, Phase.ACKNOWLEDGED, Phase.DISPATCHED, Phase.EN_ROUTE, Phase.ON_SCENE}
)


@dataclass(frozen=True, slots=True)
class SensorType:
    key: str
    label: str
    unit: str
    threshold: float  # a reading at or above it is an alarm
    category: str
    priority: int = 3
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    merge_window_s: float = DEFAULT_MERGE_WINDOW_S


# Thresholds from the standards the teams enforce: EN 54-7 smoke detectors respond between
# 0.05 and 0.2 dB/m; GB 18483 allows restaurants' exhaust 2.0 mg/m³ of cooking fume; GB 3096
# puts daytime noise beside trunk roads at 70 dB(A). The grease trap's is its fill level and
# the water level's the depth of standing water on a road.
SENSOR_TYPES: Mapping[str, SensorType] = {
    t.key: t
    for t in (
        SensorType("smoke", "烟感", "dB/m", 0.1, "fire_hazard", 1, heartbeat_s=3600),
        SensorType("kitchen_exhaust", "油烟", "mg/m3", 2.0, "cooking_fume", 3, heartbeat_s=900),
        SensorType("grease_trap", "隔油池", "%", 80.0, "grease_trap", 3, heartbeat_s=3600),
        SensorType("noise", "噪声", "dB(A)", 70.0, "construction_noise", 3, heartbeat_s=600),
        SensorType("water_level", "积水", "cm", 20.0, "waterlogging", 2, heartbeat_s=900),
    )
}

_TYPE_KEYS = frozenset(
    {"label", "unit", "threshold", "category", "priority", "heartbeat_s", "merge_window_s"}
)


class SensorCatalogueError(ValueError):
    """A `sensors:` entry of the policy file that cannot be used; the message names it."""


class UnknownSensorType(ValueError):  # noqa: N818 - reads as what was asked for
    def __init__(self, key: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown sensor type {key!r}; known types: {', '.join(sorted(known))}")


@dataclass(frozen=True, slots=True)
class Sensor:
    """A registered sensor: where it is (WGS-84, and the area holding it) and what it is.

    A mobile sensor's own position, when its report carries one, places its alarm; otherwise
    the registered place does, so an alarm is never without one."""

    id: str
    sensor_type: str
    location: LonLat
    registered_at: float
    area: str | None = None
    place: str = ""  # the address or shop, for the incident's title
    heartbeat_s: float | None = None  # None: the type's
    mobile: bool = False


@dataclass(frozen=True, slots=True)
class SensorCatalogue:
    types: Mapping[str, SensorType] = field(default_factory=lambda: dict(SENSOR_TYPES))

    def type_or_raise(self, key: str) -> SensorType:
        try:
            return self.types[key]
        except KeyError:
            raise UnknownSensorType(key, self.types) from None

    def heartbeat_of(self, sensor: Sensor) -> float:
        """How long the sensor may stay silent: its own interval, else its type's."""
        if sensor.heartbeat_s is not None:
            return sensor.heartbeat_s
        kind = self.types.get(sensor.sensor_type)
        return DEFAULT_HEARTBEAT_S if kind is None else kind.heartbeat_s

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], categories: Mapping[str, str]) -> SensorCatalogue:
        """The built-in types changed and added to by a policy file's `sensors:` section
        (see the module); every type's category must be one of `categories`."""
        types = dict(SENSOR_TYPES)
        for key, given in data.items():
            name = str(key)
            if not name or len(name) > TYPE_KEY_MAX or "/" in name:
                raise SensorCatalogueError(f"sensor type {name!r}: a key of 1..32 characters")
            entry = dict(given or {})
            unknown = set(entry) - _TYPE_KEYS
            if unknown:
                raise SensorCatalogueError(f"sensor type {name}: unknown keys {sorted(unknown)}")
            base = types.get(name)
            if base is None:
                missing = {"unit", "threshold", "category"} - set(entry)
                if missing:
                    raise SensorCatalogueError(
                        f"sensor type {name}: a new type needs {sorted(missing)}"
                    )
                base = SensorType(name, name, "", 0.0, "")
            types[name] = _checked(_type_with(base, entry, name), categories)
        for kind in types.values():
            _checked(kind, categories)
        return cls(types)


def _type_with(base: SensorType, entry: Mapping[str, Any], name: str) -> SensorType:
    try:
        kind = replace(
            base,
            label=str(entry.get("label", base.label)),
            unit=str(entry.get("unit", base.unit)),
            threshold=float(entry.get("threshold", base.threshold)),
            category=str(entry.get("category", base.category)),
            priority=int(entry.get("priority", base.priority)),
            heartbeat_s=float(entry.get("heartbeat_s", base.heartbeat_s)),
            merge_window_s=float(entry.get("merge_window_s", base.merge_window_s)),
        )
    except (TypeError, ValueError) as exc:
        raise SensorCatalogueError(f"sensor type {name}: {exc}") from None
    return kind


def _checked(kind: SensorType, categories: Mapping[str, str]) -> SensorType:
    problem = None
    if kind.category not in categories:
        problem = f"category {kind.category!r} is not in the catalogue (add it under categories:)"
    elif not kind.unit:
        problem = "a unit is required"
    elif not math.isfinite(kind.threshold):
        problem = f"threshold {kind.threshold} is not a finite number"
    elif not 1 <= kind.priority <= 4:
        problem = f"priority {kind.priority} is not 1..4"
    elif not (math.isfinite(kind.heartbeat_s) and kind.heartbeat_s > 0):
        problem = f"heartbeat_s {kind.heartbeat_s} must be a positive number of seconds"
    elif not (math.isfinite(kind.merge_window_s) and kind.merge_window_s >= 0):
        problem = f"merge_window_s {kind.merge_window_s} must be zero or more seconds"
    if problem:
        raise SensorCatalogueError(f"sensor type {kind.key}: {problem}")
    return kind


class SensorState(StrEnum):
    ALARM = "alarm"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class SensorReport:
    """A registered sensor's report as the ingest filed it: the place already chosen."""

    sensor: str
    sensor_type: str
    state: SensorState
    value: float
    unit: str
    sensor_at: float  # the sensor's clock: evidence, never the timeline's
    location: LonLat
    place: str = ""


@dataclass(frozen=True, slots=True)
class NotAnAlarm:
    """A report that changes no incident, and why (kept in the audit)."""

    reason: str


def sensor_incident(incidents: Iterable[Incident], sensor: str) -> Incident | None:
    """The newest incident of the sensor that has not ended, if any."""
    found: Incident | None = None
    for incident in incidents:
        alarms = incident.alarms
        if alarms is None or alarms.sensor != sensor or incident.phase.terminal:
            continue
        if found is None or incident.reported_at > found.reported_at:
            found = incident
    return found


def sensor_events(
    report: SensorReport,
    catalogue: SensorCatalogue,
    incidents: Iterable[Incident],
    *,
    now: float,
    new_incident: IncidentId,
) -> list[ev.Event] | NotAnAlarm:
    """The events a report means: a clear on the sensor's open incident; an alarm counted on
    it while it is unresolved and within the window of its last alarm; otherwise an alarm
    reports `new_incident` (an id the caller derives from the report, so that a redone step
    opens the same one) and counts on it."""
    kind = catalogue.types.get(report.sensor_type)
    if kind is None:
        return NotAnAlarm(f"sensor type {report.sensor_type!r} is not in the catalogue")
    if report.unit != kind.unit:
        return NotAnAlarm(f"{report.sensor_type} reads {kind.unit}, not {report.unit}")
    current = sensor_incident(incidents, report.sensor)
    if report.state is SensorState.CLEAR:
        if current is None:
            return NotAnAlarm(f"sensor {report.sensor} cleared with no open incident")
        return [
            ev.SensorCleared(current.id, report.sensor, report.value, report.unit, report.sensor_at)
        ]
    if report.value < kind.threshold:
        return NotAnAlarm(
            f"{report.value:g} {report.unit} is below the {kind.label} threshold "
            f"{kind.threshold:g} {kind.unit}"
        )
    if current is not None and _merges(current, kind, now):
        return [
            ev.SensorAlarmed(current.id, report.sensor, report.value, report.unit, report.sensor_at)
        ]
    return [
        ev.IncidentReported(
            new_incident,
            category=kind.category,
            priority=kind.priority,
            location=report.location,
            source=Source.IOT_ALARM,
            title=_title(report, kind),
            by=f"sensor:{report.sensor}",
        ),
        ev.SensorAlarmed(new_incident, report.sensor, report.value, report.unit, report.sensor_at),
    ]


def _merges(incident: Incident, kind: SensorType, now: float) -> bool:
    alarms = incident.alarms
    return (
        incident.phase in _MERGING
        and alarms is not None
        and now - alarms.last_at <= kind.merge_window_s
    )


def _title(report: SensorReport, kind: SensorType) -> str:
    where = f" {report.place[:PLACE_MAX]}" if report.place else ""
    return (
        f"{kind.label}报警 {report.sensor}{where}: {report.value:g} {report.unit} "
        f"(≥ {kind.threshold:g})"
    )


@dataclass(frozen=True, slots=True)
class SensorSilent:
    """A sensor heard from last at `silent_since` (or registered then), past its heartbeat."""

    sensor: str
    sensor_type: str
    silent_since: float
    heartbeat_s: float
    location: LonLat
    area: str | None
    place: str

    def summary(self, now: float) -> str:
        where = f" ({self.place})" if self.place else ""
        return (
            f"sensor {self.sensor}{where}, {self.sensor_type}: silent for "
            f"{now - self.silent_since:.0f} s, heartbeat {self.heartbeat_s:.0f} s"
        )


@dataclass(frozen=True, slots=True)
class SilenceCheck:
    silent: list[SensorSilent]  # to report now
    heard_again: list[str]  # reported before, heard (or registered again) since
    unregistered: list[str]  # reported before, no longer registered


def sensor_silence(
    heard: Iterable[tuple[Sensor, float | None]],
    catalogue: SensorCatalogue,
    reported: Mapping[str, float],
    *,
    now: float,
) -> SilenceCheck:
    """Which sensors to report silent now, and which reported ones to forget.

    `heard` is each registered sensor with when it was last heard (None: never); `reported`
    the sensors reported silent, each with the time it was silent since. A sensor reported
    is not reported again until it has been heard after that time (or registered again),
    and is then forgotten, as is one no longer registered."""
    check = SilenceCheck([], [], [])
    registered = set()
    for sensor, heard_at in heard:
        registered.add(sensor.id)
        since = max(sensor.registered_at, heard_at if heard_at is not None else -math.inf)
        reported_since = reported.get(sensor.id)
        if reported_since is not None:
            if since > reported_since:
                check.heard_again.append(sensor.id)
            continue
        heartbeat_s = catalogue.heartbeat_of(sensor)
        if now - since > heartbeat_s:
            check.silent.append(
                SensorSilent(
                    sensor.id,
                    sensor.sensor_type,
                    since,
                    heartbeat_s,
                    sensor.location,
                    sensor.area,
                    sensor.place,
                )
            )
    check.unregistered.extend(sorted(s for s in reported if s not in registered))
    return check
