"""The 1/3/15 incident timeline: everything that moves an incident's phase lives here.

The rules, in order of reading:
1. `TRANSITIONS` says, for each phase, which events are legal and the phase they lead to. An
   event missing from the table raises `IllegalTransition` naming both, and changes nothing.
   `check(incident, event)` raises whatever `handle` would refuse the event with, and changes
   nothing: one set of rules for the engine and for the API that asks first.
2. Entering a phase reaches every milestone up to it (an officer seen arriving has also turned
   out). A milestone is recorded once, with its deadline and how late it was.
3. Deadlines count from the report and are never reset: a re-dispatch sends the incident back
   to ACKNOWLEDGED but keeps every milestone reached and every alert already raised.
4. Timers are derived, not stored: for each milestone not yet reached, a warning at the policy's
   fraction of the deadline, the breach at the deadline, then each further ladder step; for an
   order nobody accepted, a re-dispatch after `accept_within_s`; under 双人执法, an alert for an
   officer alone on scene. `TIMER_TRANSITIONS` says, for each kind, the phases it runs in, the
   alert it raises and where it re-dispatches. Each fires exactly once.
5. An IoT sensor's reports (`SensorAlarmed`, `SensorCleared`) never move the phase: they are
   counted on the incident (`Incident.alarms`), only for the sensor that opened it.

Sans-I/O: `handle(incident, event, now, policy)` and `expire(incident, now, policy)` return the
new incident and the effects to carry out; `next_deadline(incident, policy)` says when to call
`expire` again. Nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from dispatch.core import events as ev
from dispatch.core.effects import (
    Effect,
    Escalate,
    PartnerMissing,
    Publish,
    RecordMilestone,
    Redispatch,
    SendOrder,
    Warn,
    WithdrawOrder,
)
from dispatch.core.model import (
    MILESTONE_PHASE,
    PROGRESS,
    Incident,
    Milestone,
    MilestoneRecord,
    Order,
    Phase,
    SensorAlarms,
    Timer,
    TimerKind,
)
from dispatch.core.policy import EscalationAction, TimelinePolicy

P = Phase
_ENDINGS: dict[type, Phase] = {ev.IncidentCancelled: P.CANCELLED, ev.DuplicateMerged: P.MERGED}
_REDISPATCH: dict[type, Phase] = {
    ev.OrderRejected: P.ACKNOWLEDGED,
    ev.OfficerWentOffline: P.ACKNOWLEDGED,
    ev.ReassignRequested: P.ACKNOWLEDGED,
}


def _sensor_reports(phase: Phase, *, alarms: bool = True) -> dict[type, Phase]:
    """An IoT sensor's reports leave the phase as it is: alarms are counted while the
    incident is being handled, a clear is recorded until it ends."""
    stays: dict[type, Phase] = {ev.SensorCleared: phase}
    if alarms:
        stays[ev.SensorAlarmed] = phase
    return stays


TRANSITIONS: dict[Phase, dict[type, Phase]] = {
    P.REPORTED: {
        ev.IncidentAcknowledged: P.ACKNOWLEDGED,
        ev.OrderIssued: P.DISPATCHED,
        **_ENDINGS,
        **_sensor_reports(P.REPORTED),
    },
    P.ACKNOWLEDGED: {ev.OrderIssued: P.DISPATCHED, **_ENDINGS, **_sensor_reports(P.ACKNOWLEDGED)},
    P.DISPATCHED: {
        ev.OrderAccepted: P.DISPATCHED,
        ev.OfficerDeparted: P.EN_ROUTE,
        ev.OfficerArrived: P.ON_SCENE,
        **_REDISPATCH,
        **_ENDINGS,
        **_sensor_reports(P.DISPATCHED),
    },
    P.EN_ROUTE: {
        ev.OrderAccepted: P.EN_ROUTE,  # the button pressed after GPS already saw departure
        ev.OfficerArrived: P.ON_SCENE,
        ev.OfficerWentOffline: P.ACKNOWLEDGED,
        ev.ReassignRequested: P.ACKNOWLEDGED,
        **_ENDINGS,
        **_sensor_reports(P.EN_ROUTE),
    },
    P.ON_SCENE: {
        ev.OfficerArrived: P.ON_SCENE,  # the partner of a two-officer order
        ev.IncidentResolved: P.RESOLVED,
        ev.IncidentCancelled: P.CANCELLED,
        **_sensor_reports(P.ON_SCENE),
    },
    # Handled: a new alarm of the sensor opens a new incident (dispatch.core.sensors).
    P.RESOLVED: {ev.IncidentClosed: P.CLOSED, **_sensor_reports(P.RESOLVED, alarms=False)},
    P.CLOSED: {},
    P.CANCELLED: {},
    P.MERGED: {},
}

# A dispatcher's actions (`POST /api/incidents/{id}/<name>`, `dispatch.api.incidents.ACTIONS`)
# and the event each sends: an action is allowed in a phase whose row takes its event.
ACTION_EVENTS: dict[str, type] = {
    "acknowledge": ev.IncidentAcknowledged,
    "assign": ev.OrderIssued,
    "reassign": ev.ReassignRequested,
    "cancel": ev.IncidentCancelled,
    "resolve": ev.IncidentResolved,
    "close": ev.IncidentClosed,
    "merge": ev.DuplicateMerged,
}
# Actions a dispatcher can only take with a reason, which the audit keeps.
REASON_REQUIRED = frozenset({"cancel", "close"})


def allowed_actions(incident: Incident) -> tuple[str, ...]:
    """The actions `TRANSITIONS` allows in the incident's phase, in `ACTION_EVENTS` order:
    what a screen offers, so that it never restates the rules."""
    allowed = TRANSITIONS[incident.phase]
    return tuple(name for name, event in ACTION_EVENTS.items() if event in allowed)


_ORDER_EVENTS = (ev.OrderAccepted, ev.OrderRejected, ev.OfficerDeparted, ev.OfficerArrived)
_OFFICER_EVENTS = (*_ORDER_EVENTS, ev.OfficerWentOffline)
_SENSOR_EVENTS = (ev.SensorAlarmed, ev.SensorCleared)

# Beside what each event does, what each kind of timer does: `TIMER_TRANSITIONS` below.
Alert = Callable[[Incident, Timer, TimelinePolicy], tuple[Incident, list[Effect]]]


@dataclass(frozen=True, slots=True)
class TimerRule:
    """What one kind of timer does when it fires: raise its alert, remembered so that it fires
    once; then, in a phase of `redispatch_in`, withdraw the order out (if any), go back to
    ACKNOWLEDGED and ask for another officer, giving `reason` (`{milestone}` filled in)."""

    runs_in: frozenset[Phase]
    alert: Alert | None  # None: the re-dispatch takes the order, and the timer, away
    redispatch_in: frozenset[Phase] = frozenset()
    reason: str = ""


def _warn(
    incident: Incident, timer: Timer, policy: TimelinePolicy
) -> tuple[Incident, list[Effect]]:
    incident, milestone, due = _raise(incident, timer, policy)
    return incident, [Warn(incident.id, milestone, due)]


def _escalate(
    incident: Incident, timer: Timer, policy: TimelinePolicy
) -> tuple[Incident, list[Effect]]:
    incident, milestone, due = _raise(incident, timer, policy)
    action = policy.ladder[timer.level - 1].action
    return incident, [Escalate(incident.id, milestone, timer.level, action, due)]


def _raise(
    incident: Incident, timer: Timer, policy: TimelinePolicy
) -> tuple[Incident, Milestone, float]:
    """A milestone's alert, remembered as (milestone, level); its deadline."""
    milestone = timer.milestone
    assert milestone is not None
    due = policy.due_at(milestone, incident.reported_at)
    assert due is not None
    return replace(incident, alerts=(*incident.alerts, (milestone, timer.level))), milestone, due


def _partner_missing(
    incident: Incident, _timer: Timer, _policy: TimelinePolicy
) -> tuple[Incident, list[Effect]]:
    order = incident.order
    assert order is not None
    missing = tuple(o for o in order.officers if o not in order.on_scene)
    alert = PartnerMissing(incident.id, order.on_scene, missing)
    return replace(incident, partner_alerted=True), [alert]


_TIMED = frozenset({P.REPORTED, P.ACKNOWLEDGED, P.DISPATCHED, P.EN_ROUTE, P.ON_SCENE})

TIMER_TRANSITIONS: dict[TimerKind, TimerRule] = {
    TimerKind.WARNING: TimerRule(_TIMED, _warn),
    TimerKind.ESCALATION: TimerRule(_TIMED, _escalate),
    TimerKind.REASSIGNMENT: TimerRule(
        _TIMED, _escalate, redispatch_in=_TIMED - {P.ON_SCENE}, reason="{milestone} missed"
    ),
    TimerKind.ACCEPT_TIMEOUT: TimerRule(
        frozenset({P.DISPATCHED}), None, frozenset({P.DISPATCHED}), "order not accepted in time"
    ),
    TimerKind.PARTNER_MISSING: TimerRule(frozenset({P.ON_SCENE}), _partner_missing),
}
# The kinds of timer that run in each phase: none once resolved or ended.
_RUNNING = {
    phase: frozenset(kind for kind, rule in TIMER_TRANSITIONS.items() if phase in rule.runs_in)
    for phase in Phase
}


class TimelineError(ValueError):
    """An event the incident cannot take now; the incident is unchanged.

    Beside its sentence it carries a `code` and the `params` that fill it, so a screen can say
    the same in the user's language (the console's and the officer page's catalogues)."""

    def __init__(self, message: str, code: str = "refused", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class IllegalTransition(TimelineError):  # noqa: N818 - reads as what happened
    def __init__(self, incident: Incident, event: ev.Event) -> None:
        super().__init__(
            f"incident {incident.id} is {incident.phase.value}: "
            f"{type(event).__name__} is not allowed in that phase",
            "not_in_phase",
            phase=incident.phase.value,
            event=type(event).__name__,
        )


class StaleOrder(TimelineError):  # noqa: N818
    def __init__(
        self, incident: Incident, event: ev.Event, why: str, code: str, **params: Any
    ) -> None:
        super().__init__(
            f"incident {incident.id}: {type(event).__name__} ignored, {why}",
            code,
            event=type(event).__name__,
            **params,
        )


def report(event: ev.IncidentReported, now: float) -> tuple[Incident, list[Effect]]:
    incident = Incident(
        id=event.incident,
        category=event.category,
        priority=event.priority,
        location=event.location,
        source=event.source,
        reported_at=now,
        title=event.title,
        team=event.team,
        area=event.area,
        area_name=event.area_name,
        address=event.address,
        description=event.description,
        caller_name=event.caller_name,
        caller_phone=event.caller_phone,
        ticket=event.ticket,
    )
    return incident, [Publish(incident)]


def check(incident: Incident, event: ev.Event, policy: TimelinePolicy | None = None) -> None:
    """Raise the TimelineError `handle` would raise for `event` on `incident` as it stands.

    Changes nothing. A caller that checks before queueing the event (the API) gets the reason
    at once; `handle` checks again after firing the timers due, which can move the phase. The
    rules of a policy (two officers under 双人执法) are checked only when `policy` is given.
    """
    if type(event) not in TRANSITIONS[incident.phase]:
        raise IllegalTransition(incident, event)
    if isinstance(event, _OFFICER_EVENTS):
        order = incident.order
        if order is None:
            raise StaleOrder(incident, event, "it has no order", "no_order")
        if isinstance(event, _ORDER_EVENTS) and event.order != order.id:
            raise StaleOrder(
                incident,
                event,
                f"order {event.order} was replaced by {order.id}",
                "order_replaced",
                order=event.order,
                current=order.id,
            )
        if event.officer not in order.officers:
            raise StaleOrder(
                incident,
                event,
                f"officer {event.officer} is not on order {order.id}",
                "not_on_order",
                officer=event.officer,
                order=order.id,
            )
    if isinstance(event, _SENSOR_EVENTS):
        alarms = incident.alarms
        if alarms is None and isinstance(event, ev.SensorCleared):
            raise TimelineError(f"incident {incident.id}: no sensor alarm to clear")
        if alarms is not None and alarms.sensor != event.sensor:
            raise TimelineError(
                f"incident {incident.id} counts the alarms of sensor {alarms.sensor}, "
                f"not {event.sensor}"
            )
    if isinstance(event, ev.OrderIssued):
        if not event.officers:
            raise TimelineError(
                f"incident {incident.id}: an order needs at least one officer", "no_officer"
            )
        if policy is not None and policy.two_officers and len(set(event.officers)) < 2:
            raise TimelineError(
                f"incident {incident.id}: {incident.category} needs two officers (双人执法)",
                "two_officers",
                category=incident.category,
            )


def handle(
    incident: Incident, event: ev.Event, now: float, policy: TimelinePolicy
) -> tuple[Incident, list[Effect]]:
    """Apply one event at `now`; raises TimelineError and changes nothing if it cannot.

    Timers due at or before `now` fire first, whether or not the caller expired them: a
    milestone reached late is then always escalated before it is recorded. A deadline is the
    first instant at which the milestone is late.
    """
    incident, effects = _fire_due(incident, now, policy)
    check(incident, event, policy)
    if isinstance(event, _SENSOR_EVENTS):
        counted = replace(incident, alarms=_counted(incident.alarms, event, now))
        return counted, [*effects, Publish(counted)]
    target = TRANSITIONS[incident.phase][type(event)]
    changed = incident
    if isinstance(event, ev.OrderIssued):
        changed = replace(changed, order=Order(event.order, event.officers, now))
    elif isinstance(event, ev.OrderAccepted | ev.OfficerDeparted | ev.OfficerArrived):
        order = changed.order
        assert order is not None
        if order.accepted_by is None:
            order = replace(order, accepted_by=event.officer)
        if isinstance(event, ev.OfficerArrived) and event.officer not in order.on_scene:
            order = replace(order, on_scene=(*order.on_scene, event.officer))
        changed = replace(changed, order=order)
    elif isinstance(event, ev.DuplicateMerged):
        changed = replace(changed, merged_into=event.into)
    if target is P.ACKNOWLEDGED and incident.order is not None:
        changed, more = _redispatch(changed, _why(event), withdraw=True)
        effects += more
    elif target.terminal and incident.order is not None and incident.phase is not P.RESOLVED:
        effects.append(
            WithdrawOrder(incident.id, incident.order.id, incident.order.officers, _why(event))
        )
    changed, reached = _enter(changed, target, now, policy, by=_actor(event), via=_via(event))
    if isinstance(event, ev.OrderIssued):
        assert changed.order is not None
        effects.append(SendOrder(changed, changed.order))
    return changed, [*effects, *reached, Publish(changed)]


def expire(incident: Incident, now: float, policy: TimelinePolicy) -> tuple[Incident, list[Effect]]:
    """Fire every timer due at or before `now`, oldest first."""
    incident, effects = _fire_due(incident, now, policy)
    if effects:
        effects.append(Publish(incident))
    return incident, effects


def next_deadline(incident: Incident, policy: TimelinePolicy) -> float | None:
    timer = _next_timer(incident, policy)
    return None if timer is None else timer.at


# --- internals --------------------------------------------------------------------------


def _fire_due(
    incident: Incident, now: float, policy: TimelinePolicy
) -> tuple[Incident, list[Effect]]:
    effects: list[Effect] = []
    while (timer := _next_timer(incident, policy)) is not None and timer.at <= now:
        incident, fired = _fire(incident, timer, policy)
        effects += fired
    return incident, effects


def _counted(
    alarms: SensorAlarms | None, event: ev.SensorAlarmed | ev.SensorCleared, now: float
) -> SensorAlarms:
    """The incident's sensor alarms after one more report (`check` has vouched for it)."""
    if isinstance(event, ev.SensorCleared):
        assert alarms is not None
        return replace(alarms, value=event.value, cleared_at=now)
    if alarms is None:
        return SensorAlarms(event.sensor, 1, now, now, event.value, event.unit)
    return replace(alarms, count=alarms.count + 1, last_at=now, value=event.value, cleared_at=None)


def _redispatch(
    incident: Incident, reason: str, *, withdraw: bool
) -> tuple[Incident, list[Effect]]:
    order = incident.order
    assert order is not None
    tried = tuple(dict.fromkeys((*incident.past_officers, *order.officers)))
    effects: list[Effect] = []
    if withdraw:
        effects.append(WithdrawOrder(incident.id, order.id, order.officers, reason))
    effects.append(Redispatch(incident.id, reason, tried))
    return replace(incident, order=None, past_officers=tried), effects


def _enter(
    incident: Incident, phase: Phase, now: float, policy: TimelinePolicy, *, by: str, via: str
) -> tuple[Incident, list[Effect]]:
    effects: list[Effect] = []
    if phase in PROGRESS:
        depth = PROGRESS.index(phase)
        for milestone, milestone_phase in MILESTONE_PHASE.items():
            if PROGRESS.index(milestone_phase) <= depth and incident.reached(milestone) is None:
                due = policy.due_at(milestone, incident.reported_at)
                late = 0.0 if due is None else max(0.0, now - due)
                record = MilestoneRecord(milestone, due, now, late, by, via)
                incident = replace(incident, milestones=(*incident.milestones, record))
                effects.append(RecordMilestone(incident.id, record))
    return replace(incident, phase=phase), effects


def _next_timer(incident: Incident, policy: TimelinePolicy) -> Timer | None:
    running = _RUNNING[incident.phase]
    if not running:
        return None
    # Of timers due at one instant and of one level, the first armed fires first.
    return min(_armed(incident, policy, running), key=lambda t: (t.at, t.level), default=None)


def _armed(
    incident: Incident, policy: TimelinePolicy, running: frozenset[TimerKind]
) -> Iterator[Timer]:
    fired = set(incident.alerts)
    for milestone in Milestone:
        due = policy.due_at(milestone, incident.reported_at)
        if due is None or incident.reached(milestone) is not None:
            continue
        warn = policy.warn_at(milestone, incident.reported_at)
        if warn is not None and (milestone, 0) not in fired and TimerKind.WARNING in running:
            yield Timer(warn, TimerKind.WARNING, 0, milestone)
        for level, step in enumerate(policy.ladder, start=1):
            if (milestone, level) not in fired:
                reassigns = step.action is EscalationAction.REASSIGN
                kind = TimerKind.REASSIGNMENT if reassigns else TimerKind.ESCALATION
                if kind in running:
                    yield Timer(due + step.after_breach_s, kind, level, milestone)
                break  # the ladder is climbed one step at a time
    order = incident.order
    if TimerKind.ACCEPT_TIMEOUT in running and order is not None and order.accepted_by is None:
        yield Timer(order.issued_at + policy.accept_within_s, TimerKind.ACCEPT_TIMEOUT, 0)
    arrived = incident.reached(Milestone.ARRIVE)
    if (
        TimerKind.PARTNER_MISSING in running
        and policy.two_officers
        and order is not None
        and len(order.on_scene) < len(order.officers)
        and arrived is not None
        and not incident.partner_alerted
    ):
        yield Timer(arrived.reached_at + policy.partner_within_s, TimerKind.PARTNER_MISSING, 1)


def _fire(
    incident: Incident, timer: Timer, policy: TimelinePolicy
) -> tuple[Incident, list[Effect]]:
    rule = TIMER_TRANSITIONS[timer.kind]
    effects: list[Effect] = []
    if rule.alert is not None:
        incident, effects = rule.alert(incident, timer, policy)
    if incident.phase in rule.redispatch_in:
        milestone = "" if timer.milestone is None else timer.milestone.value
        reason = rule.reason.format(milestone=milestone)
        if incident.order is None:  # none out yet: ask for one
            effects.append(Redispatch(incident.id, reason, incident.past_officers))
        else:
            incident, more = _redispatch(incident, reason, withdraw=True)
            incident = replace(incident, phase=P.ACKNOWLEDGED)
            effects += more
    return incident, effects


def _actor(event: ev.Event) -> str:
    if isinstance(event, _OFFICER_EVENTS):
        return str(event.officer)
    return str(getattr(event, "by", "system"))


def _via(event: ev.Event) -> str:
    return str(getattr(event, "via", "dispatcher"))


def _why(event: ev.Event) -> str:
    reasons = {
        ev.OrderRejected: "rejected by the officer",
        ev.OfficerWentOffline: "officer went offline",
        ev.ReassignRequested: "reassigned by the dispatcher",
        ev.IncidentCancelled: "incident cancelled",
        ev.DuplicateMerged: "merged into another incident",
    }
    detail = getattr(event, "reason", "")
    base = reasons.get(type(event), type(event).__name__)
    return f"{base}: {detail}" if detail else base
