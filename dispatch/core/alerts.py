"""Alerts a dispatcher must see and acknowledge: what one is, its id, its acknowledgement and
which alerts a screen keeps (pure).

An alert is raised once per occurrence: its id is a digest of what happened (kind, incident,
level and the occurrence, e.g. the milestone or the sensor's silence), never of when the engine
noticed it, so a step redone after a crash, or a watcher looking again, raises the same id and
the store keeps the first. An alert goes from new to acknowledged (by whom, when) once; a
second acknowledgement is refused, naming the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.core.access import AreaScope
from dispatch.core.roster import TeamId
from gis.coords import LonLat

# An acknowledged alert stays on screens (and in the store) this long after its ack.
KEEP_ACKNOWLEDGED_S = 12 * 3600.0
# Screens are shown at most this many, the newest.
SCREEN_LIMIT = 200


class AlertKind(StrEnum):
    WARNING = "warning"
    ESCALATION = "escalation"
    REDISPATCH = "redispatch"
    PARTNER_MISSING = "partner_missing"
    PATROL_SHORTFALL = "patrol_shortfall"
    SENSOR_SILENT = "sensor_silent"
    SOS = "sos"
    NEW_INCIDENT = "new_incident"


class AlreadyAcknowledgedError(Exception):
    """The alert was acknowledged before; the message names by whom and when."""

    def __init__(self, alert: Alert, zone: str) -> None:
        assert alert.acknowledged_at is not None
        when = local_iso(alert.acknowledged_at, zone)
        super().__init__(
            f"alert {alert.id} was already acknowledged by {alert.acknowledged_by} at {when}"
        )
        self.alert = alert


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. `level` is the escalation ladder's level (1 the breach itself), 0 for the
    other kinds. `location` (lon, lat) and `team` say where it belongs, for area scopes."""

    id: str
    kind: AlertKind
    incident: str | None
    level: int
    message: str
    raised_at: float
    location: tuple[float, float] | None = None
    team: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


def alert_id(kind: AlertKind, incident: str | None, level: int, occurrence: str) -> str:
    """The id of one occurrence: the same inputs always give the same id."""
    text = f"{kind.value}|{incident or ''}|{level}|{occurrence}"
    return "ALR-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def new_alert(
    kind: AlertKind,
    *,
    occurrence: str,
    message: str,
    raised_at: float,
    incident: str | None = None,
    level: int = 0,
    location: tuple[float, float] | None = None,
    team: str | None = None,
) -> Alert:
    """An alert not acknowledged yet, its id from what happened (`occurrence`)."""
    return Alert(
        alert_id(kind, incident, level, occurrence),
        kind,
        incident,
        level,
        message,
        raised_at,
        location,
        team,
    )


def acknowledged(alert: Alert, by: str, at: float, *, zone: str) -> Alert:
    """The alert acknowledged by `by` at `at`; AlreadyAcknowledgedError if it was before."""
    if alert.is_acknowledged:
        raise AlreadyAcknowledgedError(alert, zone)
    return replace(alert, acknowledged_by=by, acknowledged_at=at)


def expired(alert: Alert, now: float) -> bool:
    """Acknowledged longer ago than screens keep it."""
    return alert.acknowledged_at is not None and alert.acknowledged_at < now - KEEP_ACKNOWLEDGED_S


def kept(alerts: Iterable[Alert], now: float, limit: int = SCREEN_LIMIT) -> list[Alert]:
    """What a screen shows: every alert not acknowledged and those acknowledged in the last
    12 h, the newest `limit`, newest first."""
    shown = [a for a in alerts if not expired(a, now)]
    return sorted(shown, key=lambda a: (-a.raised_at, a.id))[:limit]


def as_of(alert: Alert, at: float) -> Alert | None:
    """The alert as it was at `at`: None before it was raised, not acknowledged before its ack."""
    if alert.raised_at > at:
        return None
    if alert.acknowledged_at is not None and alert.acknowledged_at > at:
        return replace(alert, acknowledged_by=None, acknowledged_at=None)
    return alert


def in_scope(alert: Alert, scope: AreaScope) -> bool:
    """Whether an area scope sees the alert: by its place, else by its team; one that is
    neither placed nor a team's only the whole center sees."""
    if scope.whole_center:
        return True
    if alert.location is not None:
        return scope.covers_point(LonLat(*alert.location))
    team = scope.roster.teams.get(TeamId(alert.team)) if scope.roster and alert.team else None
    return team is not None and scope.covers_team(team)


def local_iso(epoch_s: float, zone: str) -> str:
    return datetime.fromtimestamp(epoch_s, ZoneInfo(zone)).isoformat(timespec="seconds")


def alert_record(alert: Alert, zone: str) -> dict[str, Any]:
    """The alert as stored and sent to screens, with its times also in the center's zone."""
    at = alert.acknowledged_at
    return {
        "id": alert.id,
        "kind": alert.kind.value,
        "incident": alert.incident,
        "level": alert.level,
        "message": alert.message,
        "raised_at": alert.raised_at,
        "raised_time": local_iso(alert.raised_at, zone),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": at,
        "acknowledged_time": None if at is None else local_iso(at, zone),
        "location": None if alert.location is None else list(alert.location),
        "team": alert.team,
    }


def alert_from_record(record: dict[str, Any]) -> Alert:
    location = record.get("location")
    return Alert(
        id=str(record["id"]),
        kind=AlertKind(record["kind"]),
        incident=record.get("incident"),
        level=int(record.get("level", 0)),
        message=str(record.get("message", "")),
        raised_at=float(record["raised_at"]),
        location=None if location is None else (float(location[0]), float(location[1])),
        team=record.get("team"),
        acknowledged_by=record.get("acknowledged_by"),
        acknowledged_at=record.get("acknowledged_at"),
    )
