"""The incident model: phases, milestones, the immutable record of one incident, and the
timers the timeline derives from it (never stored: they follow from the record)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

from dispatch.core.roster import OfficerId, TeamId
from gis.coords import LonLat

IncidentId = NewType("IncidentId", str)
OrderId = NewType("OrderId", str)


class Phase(StrEnum):
    REPORTED = "reported"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    MERGED = "merged"

    @property
    def terminal(self) -> bool:
        return self in (Phase.CLOSED, Phase.CANCELLED, Phase.MERGED)


# Progress order: a phase never goes back past one it has left, except the re-dispatch loop
# (DISPATCHED or EN_ROUTE back to ACKNOWLEDGED) which keeps every milestone already reached.
PROGRESS = (
    Phase.REPORTED,
    Phase.ACKNOWLEDGED,
    Phase.DISPATCHED,
    Phase.EN_ROUTE,
    Phase.ON_SCENE,
    Phase.RESOLVED,
    Phase.CLOSED,
)


class Milestone(StrEnum):
    """The 1/3/15 clock: each is due a fixed time after the report, never reset."""

    RESPOND = "respond"  # acknowledged and an order issued
    TURN_OUT = "turn_out"  # the officer accepted and is moving
    ARRIVE = "arrive"  # on scene
    HANDLE = "handle"  # handling finished and reported


# The phase whose entry reaches each milestone.
MILESTONE_PHASE = {
    Milestone.RESPOND: Phase.DISPATCHED,
    Milestone.TURN_OUT: Phase.EN_ROUTE,
    Milestone.ARRIVE: Phase.ON_SCENE,
    Milestone.HANDLE: Phase.RESOLVED,
}


class Source(StrEnum):
    HOTLINE_12345 = "12345"
    HOTLINE_8890 = "8890"
    CITIZEN_REPORT = "citizen"
    PATROL_FIND = "patrol"
    IOT_ALARM = "iot"
    DEVICE_SOS = "sos"


@dataclass(frozen=True, slots=True)
class MilestoneRecord:
    milestone: Milestone
    due_at: float | None
    reached_at: float
    late_by_s: float
    by: str
    via: str


@dataclass(frozen=True, slots=True)
class Order:
    id: OrderId
    officers: tuple[OfficerId, ...]
    issued_at: float
    accepted_by: OfficerId | None = None
    on_scene: tuple[OfficerId, ...] = ()


@dataclass(frozen=True, slots=True)
class SensorAlarms:
    """An IoT sensor's alarms counted on the incident they opened: how many, the first and
    the latest (server times), the latest reading, and when the sensor last cleared (None
    while it alarms)."""

    sensor: str
    count: int
    first_at: float
    last_at: float
    value: float
    unit: str
    cleared_at: float | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    id: IncidentId
    category: str
    priority: int
    location: LonLat
    source: Source
    reported_at: float
    title: str = ""
    team: TeamId | None = None
    phase: Phase = Phase.REPORTED
    order: Order | None = None
    milestones: tuple[MilestoneRecord, ...] = ()
    past_officers: tuple[OfficerId, ...] = ()  # assigned before, excluded from re-dispatch
    merged_into: IncidentId | None = None
    # Alerts already raised, as (milestone, level): 0 the warning, 1 the breach, 2+ the ladder.
    alerts: tuple[tuple[Milestone, int], ...] = ()
    partner_alerted: bool = False  # 双人执法: one officer alone on scene past the limit
    alarms: SensorAlarms | None = None  # opened by an IoT sensor
    # Where and from whom (defaulted: records written before intake kept them still load).
    area: str | None = None  # the innermost area at report time; None outside every area
    area_name: str = ""
    address: str = ""
    description: str = ""
    caller_name: str = ""
    caller_phone: str = ""
    ticket: str = ""  # the external work order (工单号) that opened it

    def reached(self, milestone: Milestone) -> MilestoneRecord | None:
        return next((m for m in self.milestones if m.milestone is milestone), None)


class TimerKind(StrEnum):
    WARNING = "warning"  # a milestone at the policy's fraction of its deadline
    ESCALATION = "escalation"  # a ladder step past a missed deadline; level 1 is the breach
    REASSIGNMENT = "reassignment"  # a ladder step whose action is to reassign
    ACCEPT_TIMEOUT = "accept_timeout"  # an order nobody accepted within accept_within_s
    PARTNER_MISSING = "partner_missing"  # 双人执法: an officer alone on scene too long


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer due `at`. `level` is how far the alert has gone (0 a warning, 1 the breach, 2+
    the ladder), and of timers due at one instant the lower level fires first. An order's
    timers stand beside the alerts: an unaccepted order is a warning, a lone officer a breach.
    """

    at: float
    kind: TimerKind
    level: int
    milestone: Milestone | None = None
