"""The timeline as a hypothesis rule-based state machine: random events at random times.

Invariants: phases never go back (the re-dispatch loop to ACKNOWLEDGED aside), milestones are
recorded once and never removed, each alert fires once, a breach escalation fires exactly for
the milestones missed and in the first call at or after their deadline, and no deadline is
left in the past after `expire(now)`. With no timer due, `check` refuses exactly what `handle`
refuses, with the same error.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.center import CommandCenter
from dispatch.core.effects import Escalate, Warn
from dispatch.core.model import PROGRESS, IncidentId, Milestone, OrderId, Phase, Source
from dispatch.core.policy import PolicyBook, TimelinePolicy
from dispatch.core.roster import OfficerId
from dispatch.core.timeline import TimelineError
from gis.coords import LonLat

T0 = 1_000_000.0
INC = IncidentId("I")
OFFICERS = [OfficerId("a"), OfficerId("b"), OfficerId("c")]
POLICY = TimelinePolicy(
    deadlines_s={
        Milestone.RESPOND: 60.0,
        Milestone.TURN_OUT: 180.0,
        Milestone.ARRIVE: 600.0,
        Milestone.HANDLE: 900.0,
    }
)
REDISPATCH_FROM = {Phase.DISPATCHED, Phase.EN_ROUTE}


class Timeline(RuleBasedStateMachine):
    policy = POLICY

    def __init__(self) -> None:
        super().__init__()
        self.center = CommandCenter(PolicyBook(default=self.policy))
        self.now = T0
        self.center.handle(
            ev.IncidentReported(INC, "noise", 3, LonLat(120.0, 30.0), Source.CITIZEN_REPORT), T0
        )
        self.orders = 0
        self.alerts: list[tuple[Milestone, int]] = []
        self.breach_calls: dict[Milestone, tuple[float, float]] = {}  # (previous now, now)
        self.previous_call = T0
        self.stopped_at: float | None = None
        self.last_phase = Phase.REPORTED
        self.last_milestones: tuple = ()

    def crew(self, officer: OfficerId) -> tuple[OfficerId, ...]:
        return (officer,)

    @property
    def incident(self):
        return self.center.incidents[INC]

    def _observe(self, effects) -> None:
        for effect in effects:
            if isinstance(effect, Warn | Escalate):
                level = effect.level if isinstance(effect, Escalate) else 0
                self.alerts.append((effect.milestone, level))
            if isinstance(effect, Escalate) and effect.level == 1:
                self.breach_calls[effect.milestone] = (self.previous_call, self.now)
                assert self.incident.reached(effect.milestone) is None or (
                    self.incident.reached(effect.milestone).reached_at > effect.due_at
                )
        phase = self.incident.phase
        if self.stopped_at is None and (phase.terminal or phase is Phase.RESOLVED):
            self.stopped_at = self.now
        self.previous_call = self.now

    @rule(dt=st.sampled_from([0.0, 1.0, 12.0, 48.0, 60.0, 100.0, 250.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self._observe(self.center.expire(self.now))
        deadline = self.center.next_deadline()
        assert deadline is None or deadline > self.now

    @rule(
        kind=st.sampled_from(
            [
                "ack",
                "issue",
                "accept",
                "reject",
                "depart",
                "arrive",
                "offline",
                "reassign",
                "resolve",
                "close",
                "cancel",
            ]
        ),
        officer=st.sampled_from(OFFICERS),
        stale=st.booleans(),
    )
    def something_happens(self, kind: str, officer: OfficerId, stale: bool) -> None:
        order = self.incident.order
        order_id = OrderId("old") if stale or order is None else order.id
        if kind == "issue":
            self.orders += 1
            order_id = OrderId(f"O{self.orders}")
        event = {
            "ack": ev.IncidentAcknowledged(INC, by="d"),
            "issue": ev.OrderIssued(INC, order_id, self.crew(officer), by="d"),
            "accept": ev.OrderAccepted(INC, order_id, officer),
            "reject": ev.OrderRejected(INC, order_id, officer),
            "depart": ev.OfficerDeparted(INC, order_id, officer),
            "arrive": ev.OfficerArrived(INC, order_id, officer),
            "offline": ev.OfficerWentOffline(INC, officer),
            "reassign": ev.ReassignRequested(INC, by="d"),
            "resolve": ev.IncidentResolved(INC, by="d"),
            "close": ev.IncidentClosed(INC, by="d"),
            "cancel": ev.IncidentCancelled(INC, by="d"),
        }[kind]
        before = self.incident
        # With no timer due, `check` on the incident as it stands is the whole of the refusal.
        deadline = self.center.deadline_of(before)
        foreseen = deadline is None or deadline > self.now
        checked: TimelineError | None = None
        try:
            timeline.check(before, event, self.policy)
        except TimelineError as exc:
            checked = exc
        assert self.incident is before  # checking changes nothing
        try:
            effects = self.center.handle(event, self.now)
        except TimelineError as exc:
            assert self.incident is before  # refused: nothing changed, nothing fired
            if foreseen:
                assert (type(checked), str(checked)) == (type(exc), str(exc))
            return
        assert not foreseen or checked is None
        self._observe(effects)

    @invariant()
    def phases_never_go_back(self) -> None:
        phase, last = self.incident.phase, self.last_phase
        if last.terminal:
            assert phase is last
        elif phase in PROGRESS and last in PROGRESS:
            went_back = PROGRESS.index(phase) < PROGRESS.index(last)
            assert not went_back or (phase is Phase.ACKNOWLEDGED and last in REDISPATCH_FROM)
        self.last_phase = phase

    @invariant()
    def milestones_are_append_only_and_unique(self) -> None:
        milestones = self.incident.milestones
        assert milestones[: len(self.last_milestones)] == self.last_milestones
        assert len({m.milestone for m in milestones}) == len(milestones)
        for record in milestones:
            assert record.late_by_s == max(
                0.0, record.reached_at - (T0 + POLICY.deadlines_s[record.milestone])
            )
        self.last_milestones = milestones

    @invariant()
    def every_alert_fires_once(self) -> None:
        assert len(self.alerts) == len(set(self.alerts))

    @invariant()
    def breaches_fire_exactly_for_missed_milestones_and_on_time(self) -> None:
        for milestone, limit in POLICY.deadlines_s.items():
            due = T0 + limit
            record = self.incident.reached(milestone)
            ends = [
                t for t in (record.reached_at if record else None, self.stopped_at) if t is not None
            ]
            missed = due <= min(ends, default=float("inf"))  # the deadline instant is late
            fired = (milestone, 1) in self.alerts
            assert fired == (missed and due <= self.now), (milestone, fired, missed)
            if fired:
                previous, at = self.breach_calls[milestone]
                assert previous <= due <= at  # in the first call at or after the deadline

    @invariant()
    def closed_incidents_have_no_deadline(self) -> None:
        if self.incident.phase.terminal or self.incident.phase is Phase.RESOLVED:
            assert self.center.next_deadline() is None


Timeline.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestTimeline = Timeline.TestCase


class TwoOfficerTimeline(Timeline):
    """The same invariants under 双人执法: pairs, partners arriving later, the partner alert."""

    policy = replace(POLICY, two_officers=True, partner_within_s=100.0)

    def crew(self, officer: OfficerId) -> tuple[OfficerId, ...]:
        return (officer, OFFICERS[(OFFICERS.index(officer) + 1) % len(OFFICERS)])

    @invariant()
    def the_partner_alert_fires_at_most_once_and_only_for_a_lone_officer(self) -> None:
        incident = self.incident
        if incident.partner_alerted:
            arrived = incident.reached(Milestone.ARRIVE)
            assert arrived is not None and self.now >= arrived.reached_at + 100.0


TwoOfficerTimeline.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None
)
TestTwoOfficerTimeline = TwoOfficerTimeline.TestCase
