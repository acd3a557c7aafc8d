"""Inputs to the command center, in the past tense: what happened, who did it, to which
incident. Time is not part of an event: the caller passes `now` (server receive time)."""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.core.model import IncidentId, OrderId, Source
from dispatch.core.roster import OfficerId, TeamId
from gis.coords import LonLat


@dataclass(frozen=True, slots=True)
class IncidentReported:
    incident: IncidentId
    category: str
    priority: int
    location: LonLat
    source: Source
    title: str = ""
    team: TeamId | None = None
    by: str = "intake"
    area: str | None = None
    area_name: str = ""
    address: str = ""
    description: str = ""
    caller_name: str = ""
    caller_phone: str = ""
    ticket: str = ""


@dataclass(frozen=True, slots=True)
class IncidentAcknowledged:
    incident: IncidentId
    by: str


@dataclass(frozen=True, slots=True)
class OrderIssued:
    incident: IncidentId
    order: OrderId
    officers: tuple[OfficerId, ...]
    by: str


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    incident: IncidentId
    order: OrderId
    officer: OfficerId
    via: str = "terminal"


@dataclass(frozen=True, slots=True)
class OrderRejected:
    incident: IncidentId
    order: OrderId
    officer: OfficerId
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OfficerDeparted:
    incident: IncidentId
    order: OrderId
    officer: OfficerId
    via: str = "gps"


@dataclass(frozen=True, slots=True)
class OfficerArrived:
    incident: IncidentId
    order: OrderId
    officer: OfficerId
    via: str = "geofence"


@dataclass(frozen=True, slots=True)
class OfficerWentOffline:
    incident: IncidentId
    officer: OfficerId


@dataclass(frozen=True, slots=True)
class ReassignRequested:
    incident: IncidentId
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IncidentResolved:
    incident: IncidentId
    by: str
    result: str = ""


@dataclass(frozen=True, slots=True)
class IncidentClosed:
    incident: IncidentId
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IncidentCancelled:
    incident: IncidentId
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DuplicateMerged:
    incident: IncidentId
    into: IncidentId
    by: str


@dataclass(frozen=True, slots=True)
class SensorAlarmed:
    """An IoT sensor's alarm, counted on its incident; `sensor_at` is the sensor's clock."""

    incident: IncidentId
    sensor: str
    value: float
    unit: str
    sensor_at: float


@dataclass(frozen=True, slots=True)
class SensorCleared:
    """The sensor reports its alarm over (the incident stays open until it is handled)."""

    incident: IncidentId
    sensor: str
    value: float
    unit: str
    sensor_at: float


Event = (
    IncidentReported
    | IncidentAcknowledged
    | OrderIssued
    | OrderAccepted
    | OrderRejected
    | OfficerDeparted
    | OfficerArrived
    | OfficerWentOffline
    | ReassignRequested
    | IncidentResolved
    | IncidentClosed
    | IncidentCancelled
    | DuplicateMerged
    | SensorAlarmed
    | SensorCleared
)
