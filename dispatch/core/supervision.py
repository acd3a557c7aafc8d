"""Supervision (监督考核): what one incident's recorded timeline says about the 1/3/15 clock.

`outcome_of(incident, records, area=..., zone=...)` reads the incident's final snapshot and
its audit records (as the engine wrote them: `kind`, `at`, `event`, `detail`) and returns its
`Outcome`. Everything follows from the record by the rules below; nothing is guessed twice.

Milestone status (respond, turn_out, arrive, handle; seconds are counted from the report):
- on_time: reached, it has a deadline, and it was not late (late_by_s == 0);
- late: reached after its deadline;
- missed: never reached, and its breach was recorded (an escalation of level 1 names it);
- untimed: reached, with no deadline (arrive, under the default policy);
- not_due: never reached and no breach recorded (ended, or still open, before its deadline;
  or a policy with an empty ladder, which records no breach of a milestone never reached).
A milestone is breached when it is late or missed.

Breach causes. The chain respond → turn_out → arrive → handle breaks at its first breached
milestone M, with deadline D; the cause is decided there, from the records at or before D,
and every later breached milestone of the incident has the same cause (a late response makes
the turn-out late; supervision asks where the chain broke). The first rule that holds wins:
- respond (no order out by D):
  1. no_candidate: the engine found no officer to recommend (a `no_candidate` record);
  2. no_acknowledgement: nobody at the console acknowledged the incident;
  3. unknown.
- turn_out, arrive (nobody moving, or nobody on scene, by D):
  1. officer_offline: an officer on the order went offline (the order was withdrawn);
  2. rejected: an officer rejected an order;
  3. not_accepted: an order was re-dispatched for not being accepted in time, or the order
     out at D had not been accepted by then;
  4. long_travel: the order out at D went out with an ETA (`eta_s` of its `order_sent`
     record: the soonest its officers could be there, by the center's travel times) that
     already ended after the turn-out deadline;
  5. no_candidate: as for respond (a re-dispatch found nobody);
  6. unknown.
- handle (not resolved by D):
  1. late_handling: an officer was on scene before D, and the handling overran;
  2. the rules of turn_out, 1 to 6.

Re-dispatches are counted with their reason (rejected, officer offline, not accepted in time,
reassigned by the dispatcher, a missed milestone's reassign step of the ladder, other).
Escalations are counted by ladder level. Orders: sent, refused (rejected by an officer) and
unanswered (withdrawn for not being accepted in time). Officer workload, per officer: orders
naming them, their refusals, orders they left unanswered, and whole seconds on scene, from
their first arrival to the incident's resolution or cancellation (none while still open).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from dispatch.core.model import Incident, IncidentId, Milestone

# The reason the timeline gives an accept-timeout re-dispatch (TIMER_TRANSITIONS).
_NOT_ACCEPTED_REASON = "order not accepted in time"


class Status(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    MISSED = "missed"
    UNTIMED = "untimed"
    NOT_DUE = "not_due"


BREACHED = frozenset({Status.LATE, Status.MISSED})


class Cause(StrEnum):
    NO_ACKNOWLEDGEMENT = "no_acknowledgement"
    NO_CANDIDATE = "no_candidate"
    NOT_ACCEPTED = "not_accepted"
    REJECTED = "rejected"
    OFFICER_OFFLINE = "officer_offline"
    LONG_TRAVEL = "long_travel"
    LATE_HANDLING = "late_handling"
    UNKNOWN = "unknown"


class RedispatchReason(StrEnum):
    REJECTED = "rejected"
    OFFICER_OFFLINE = "officer_offline"
    NOT_ACCEPTED = "not_accepted"
    REASSIGNED = "reassigned"
    ESCALATED = "escalated"  # the ladder's reassign step after a missed milestone
    OTHER = "other"


# How the timeline words each re-dispatch (timeline._why and TIMER_TRANSITIONS), by prefix.
_REDISPATCH_WORDING = (
    ("rejected by the officer", RedispatchReason.REJECTED),
    ("officer went offline", RedispatchReason.OFFICER_OFFLINE),
    (_NOT_ACCEPTED_REASON, RedispatchReason.NOT_ACCEPTED),
    ("reassigned by the dispatcher", RedispatchReason.REASSIGNED),
)


@dataclass(frozen=True, slots=True)
class MilestoneOutcome:
    milestone: Milestone
    status: Status
    seconds: float | None  # from the report to reaching it; None if never reached
    cause: Cause | None  # set exactly when breached

    @property
    def breached(self) -> bool:
        return self.status in BREACHED


@dataclass(frozen=True, slots=True)
class OfficerWork:
    officer: str
    orders: int
    refused: int
    unanswered: int
    on_scene_s: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One incident as supervision counts it; the dimensions are those it is grouped by."""

    incident: IncidentId
    reported_at: float
    area: str | None
    team: str | None
    category: str
    source: str
    priority: int
    hour: int  # local hour of the report, in the center's zone
    phase: str
    milestones: tuple[MilestoneOutcome, ...]  # one per Milestone, in its order
    redispatches: Mapping[RedispatchReason, int]  # only reasons that occurred
    escalations: Mapping[int, int]  # ladder level -> how many; only levels raised
    orders: int
    orders_refused: int
    orders_unanswered: int
    officers: tuple[OfficerWork, ...]  # sorted by officer

    def milestone(self, milestone: Milestone) -> MilestoneOutcome:
        return next(m for m in self.milestones if m.milestone is milestone)


@dataclass(frozen=True, slots=True)
class _Record:
    at: float
    kind: str
    event: str
    detail: Mapping[str, Any]


def outcome_of(
    incident: Incident, records: Iterable[Mapping[str, Any]], *, area: str | None, zone: tzinfo
) -> Outcome:
    """The incident's outcome from its snapshot and its audit records (any order)."""
    timeline = sorted((_parse(r) for r in records), key=lambda r: r.at)
    milestones = _milestones(incident, timeline)
    withdrawn = [r for r in timeline if r.kind == "order_withdrawn"]
    return Outcome(
        incident=incident.id,
        reported_at=incident.reported_at,
        area=area,
        team=incident.team,
        category=incident.category,
        source=incident.source.value,
        priority=incident.priority,
        hour=datetime.fromtimestamp(incident.reported_at, zone).hour,
        phase=incident.phase.value,
        milestones=milestones,
        redispatches=dict(
            Counter(_redispatch_reason(r.detail) for r in timeline if r.kind == "redispatch")
        ),
        escalations=dict(
            Counter(int(r.detail.get("level", 0)) for r in timeline if r.kind == "escalation")
        ),
        orders=sum(1 for r in timeline if r.kind == "order_sent"),
        orders_refused=sum(1 for r in timeline if r.event == "OrderRejected"),
        orders_unanswered=sum(1 for r in withdrawn if _unanswered(r)),
        officers=_workload(timeline),
    )


def _parse(record: Mapping[str, Any]) -> _Record:
    detail = record.get("detail") or "{}"
    return _Record(
        at=float(record.get("at", 0.0)),
        kind=str(record.get("kind", "")),
        event=str(record.get("event", "")),
        detail=json.loads(detail) if isinstance(detail, str) else dict(detail),
    )


def _milestones(incident: Incident, timeline: list[_Record]) -> tuple[MilestoneOutcome, ...]:
    breach_due = {
        str(r.detail.get("milestone")): float(r.detail["due_at"])
        for r in timeline
        if r.kind == "escalation" and int(r.detail.get("level", 0)) == 1
    }
    first_cause: Cause | None = None
    found = []
    dues: dict[Milestone, float | None] = {}
    for milestone in Milestone:
        record = incident.reached(milestone)
        seconds = None if record is None else record.reached_at - incident.reported_at
        due: float | None
        if record is not None:
            due = record.due_at
            if due is None:
                status = Status.UNTIMED
            else:
                status = Status.LATE if record.late_by_s > 0 else Status.ON_TIME
        elif milestone.value in breach_due:
            due, status = breach_due[milestone.value], Status.MISSED
        else:
            due, status = None, Status.NOT_DUE
        dues[milestone] = due
        cause = None
        if status in BREACHED:
            assert due is not None
            if first_cause is None:
                turn_out_due = dues.get(Milestone.TURN_OUT)
                first_cause = _cause(milestone, due, turn_out_due, incident, timeline)
            cause = first_cause
        found.append(MilestoneOutcome(milestone, status, seconds, cause))
    return tuple(found)


def _cause(
    milestone: Milestone,
    due: float,
    turn_out_due: float | None,
    incident: Incident,
    timeline: list[_Record],
) -> Cause:
    """Why the first breached milestone was missed: the module docstring's rules, in order."""
    before = [r for r in timeline if r.at <= due]
    events = {r.event for r in before if r.kind == "event"}
    no_candidate = any(r.kind == "no_candidate" for r in before)
    if milestone is Milestone.RESPOND:
        if no_candidate:
            return Cause.NO_CANDIDATE
        if "IncidentAcknowledged" not in events:
            return Cause.NO_ACKNOWLEDGEMENT
        return Cause.UNKNOWN
    arrived = incident.reached(Milestone.ARRIVE)
    if milestone is Milestone.HANDLE and arrived is not None and arrived.reached_at < due:
        return Cause.LATE_HANDLING
    if "OfficerWentOffline" in events:
        return Cause.OFFICER_OFFLINE
    if "OrderRejected" in events:
        return Cause.REJECTED
    out = _order_out(before)
    unaccepted = out is not None and not _accepted(before, str(out.detail.get("order_id")))
    if unaccepted or any(r.kind == "redispatch" and _unanswered(r) for r in before):
        return Cause.NOT_ACCEPTED
    if _too_far(out, turn_out_due):
        return Cause.LONG_TRAVEL
    if no_candidate:
        return Cause.NO_CANDIDATE
    return Cause.UNKNOWN


def _order_out(before: list[_Record]) -> _Record | None:
    """The `order_sent` record of the order out at the end of `before`, if one is."""
    out: _Record | None = None
    for r in before:
        if r.kind == "order_sent":
            out = r
        elif (
            r.kind == "order_withdrawn"
            and out is not None
            and r.detail.get("order") == out.detail.get("order_id")
        ):
            out = None
    return out


def _too_far(out: _Record | None, turn_out_due: float | None) -> bool:
    """Whether the order went out with an ETA ending after the turn-out deadline."""
    eta_s = None if out is None else out.detail.get("eta_s")
    if out is None or eta_s is None or turn_out_due is None:
        return False
    return out.at + float(eta_s) > turn_out_due


def _accepted(before: list[_Record], order: str) -> bool:
    """Whether an officer of `order` accepted it (or was seen on the way, or there)."""
    return any(
        r.event in ("OrderAccepted", "OfficerDeparted", "OfficerArrived")
        and str(r.detail.get("order")) == order
        for r in before
    )


def _unanswered(record: _Record) -> bool:
    return str(record.detail.get("reason", "")).startswith(_NOT_ACCEPTED_REASON)


def _redispatch_reason(detail: Mapping[str, Any]) -> RedispatchReason:
    reason = str(detail.get("reason", ""))
    for wording, meaning in _REDISPATCH_WORDING:
        if reason.startswith(wording):
            return meaning
    if reason.endswith(" missed"):
        return RedispatchReason.ESCALATED
    return RedispatchReason.OTHER


def _workload(timeline: list[_Record]) -> tuple[OfficerWork, ...]:
    orders: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    unanswered: Counter[str] = Counter()
    arrived: dict[str, float] = {}
    on_scene: Counter[str] = Counter()
    for r in timeline:
        if r.kind == "order_sent":
            orders.update(str(o) for o in r.detail.get("officers", ()))
        elif r.kind == "order_withdrawn" and _unanswered(r):
            unanswered.update(str(o) for o in r.detail.get("officers", ()))
        elif r.event == "OrderRejected":
            refused[str(r.detail.get("officer"))] += 1
        elif r.event == "OfficerArrived":
            arrived.setdefault(str(r.detail.get("officer")), r.at)
        elif r.event in ("IncidentResolved", "IncidentCancelled"):
            for officer, since in arrived.items():
                # Whole seconds, so that sums are exact wherever they are added up.
                on_scene[officer] += round(r.at - since)
            arrived.clear()
    return tuple(
        OfficerWork(o, orders[o], refused[o], unanswered[o], on_scene[o])
        for o in sorted({*orders, *refused})
    )
