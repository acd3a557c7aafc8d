"""What one engine step does, decided without I/O: inbox entries and positions in, the
records to write out.

`EngineCore.step(entries, positions, officers, now)` applies the dispatcher commands and
device messages of the inbox, watches the positions of officers on their way, re-dispatches
orders of officers gone silent, reports IoT sensors gone silent, fires the deadlines that came
due and returns an `EngineStep` (incidents, deadlines, screen events, audit records, orders).
`officers` is called at most once per step, and only when a decision needs to know where
officers are: reading every device costs a round trip the shell should not pay on every step;
`sensors` (each registered sensor and when it was last heard) only when silence is checked. The shell (leader.py) reads,
calls `step`, writes the result in one transaction; nothing here reads a clock or Redis.

An entry whose processing raises stops the step with `EntryError` naming it: the shell
rebuilds the core from the saved state (the step may have changed half of it) and redoes the
step; an entry that fails twice is passed back in `poisoned` and is dead-lettered, unread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from devices.downlink import OrderNotice
from devices.presence import Presence
from devices.translate import Assignments, Untranslatable, sensor_report, translate
from dispatch.city import City
from dispatch.core import effects as fx
from dispatch.core.alert_sources import effect_alert, reported_alert, silence_alert
from dispatch.core.assignment import (
    CrewRefused,
    OfficerState,
    check_crew,
    choose_crew,
    crew_eta_s,
    order_id,
)
from dispatch.core.center import CommandCenter
from dispatch.core.events import Event, IncidentReported, OrderIssued
from dispatch.core.feed import FeedType, PositionRow, incident_body
from dispatch.core.intake import placed
from dispatch.core.model import Incident, IncidentId, Milestone, Order, OrderId
from dispatch.core.policy import PolicyBook
from dispatch.core.roster import OfficerId
from dispatch.core.sensors import NotAnAlarm, Sensor, sensor_events, sensor_silence
from dispatch.core.step import EngineStep
from dispatch.core.timeline import TimelineError
from dispatch.core.tracking import SceneWatcher, officers_on_the_way, silent_officers
from dispatch.officers import officer_states, recommend_for
from gis.coords import LonLat

# Where each officer is and how present: the best of their devices.
OfficerPositions = dict[OfficerId, tuple[Presence, LonLat]]
# Each registered sensor and when it was last heard (None: never).
SensorsHeard = Sequence[tuple[Sensor, float | None]]

SILENCE_CHECK_S = 5.0
_ORDER_KINDS = ("ack", "transition", "conn", "lwt")
_NO_ORDERS = Assignments({}, {})


@dataclass(frozen=True, slots=True)
class _Alert:
    """How an alerting effect reaches screens and the audit."""

    feed: FeedType
    audit: str


# Effects that are screen alerts, by type: what the screens see and what the audit calls it.
ALERTS: dict[type[fx.Effect], _Alert] = {
    fx.Warn: _Alert(FeedType.WARNING, "warning"),
    fx.Escalate: _Alert(FeedType.ESCALATION, "escalation"),
    fx.PartnerMissing: _Alert(FeedType.PARTNER_MISSING, "partner_missing"),
    fx.Redispatch: _Alert(FeedType.REDISPATCH, "redispatch"),
}


class EntryError(Exception):
    """Processing one inbox entry raised; the step is void and must be redone."""

    def __init__(self, entry_id: str, error: Exception) -> None:
        super().__init__(f"inbox entry {entry_id}: {type(error).__name__}: {error}")
        self.entry_id = entry_id
        self.error = error


class EngineCore:
    """The command center with what the engine keeps between steps."""

    def __init__(
        self,
        policies: PolicyBook,
        *,
        city: City | None,
        incidents: Sequence[Incident] = (),
        silent_sensors: Mapping[str, float] | None = None,
        first_silence_check_at: float = 0.0,
    ) -> None:
        self.center = CommandCenter(policies)
        for incident in incidents:
            self.center.restore(incident)
        self.city = city
        # Sensors reported silent, each with the time it is silent since (kept in Redis).
        self.silent_sensors: dict[str, float] = dict(silent_sensors or {})
        self.watcher = SceneWatcher()
        self._silence_check_at = first_silence_check_at
        self._sync_watcher()

    @property
    def watching(self) -> bool:
        """Whether an officer is on the way somewhere: positions then matter every step."""
        return bool(self.watcher)

    def next_deadline(self) -> float | None:
        return self.center.next_deadline()

    def step(
        self,
        entries: Sequence[tuple[str, dict[str, str]]],
        positions: Sequence[PositionRow],
        officers: Callable[[], OfficerPositions],
        now: float,
        released: Collection[str] = (),
        poisoned: Mapping[str, str] | None = None,
        sensors: Callable[[], SensorsHeard] = tuple,
    ) -> EngineStep:
        """Apply inbox entries, then positions, then silence (of officers on their way and of
        sensors) and deadlines, then forget the `released` incidents (ended, and kept by the
        history); returns what to write. The caller writes it in one transaction, or not at
        all (and redoes it).

        Entries in `poisoned` (id -> error) are dead-lettered without being read; an entry
        that raises makes the step raise EntryError."""
        # Read on first need and kept for the rest of the step.
        run = _Step(self, functools.cache(officers), now)
        for entry_id, entry in entries:
            if poisoned and entry_id in poisoned:
                run.dead_letter(entry_id, entry, poisoned[entry_id])
                continue
            try:
                run.entry(entry_id, entry)
            except Exception as exc:
                raise EntryError(entry_id, exc) from exc
        for row in positions:
            officer = OfficerId(row.device.split("/", 1)[0])
            point = LonLat(row.lon, row.lat)
            for event in self.watcher.observe(officer, point, float(row.fix_at), row.acc_m):
                run.event(
                    event, f"fix:{row.device}:{row.fix_at}", at=run.seen_at(event, row.fix_at)
                )
        if now >= self._silence_check_at:
            self._silence_check_at = now + SILENCE_CHECK_S
            run.silence()
            run.sensor_silence(sensors())
        run.perform(self.center.expire(now))
        # An incident written in this step is not dropped in it: its snapshot goes out first.
        # Ids already gone are passed on too, so the release list empties.
        gone = [r for r in released if r not in self.center.incidents]
        dropped = self.center.forget(r for r in released if r not in run.out.incidents)
        run.out.forgotten = [*dropped, *gone]
        self._sync_watcher()
        return run.out

    def _sync_watcher(self) -> None:
        center = self.center
        self.watcher.sync(center.incidents.values(), lambda i: center.policy(i).arrive_radius_m)


class _Step:
    """One step's work in progress."""

    def __init__(
        self, core: EngineCore, officers: Callable[[], OfficerPositions], now: float
    ) -> None:
        self.core = core
        self.center = core.center
        self.officers = officers
        self.now = now
        self.out = EngineStep()
        self.actors: dict[str, str] = {}

    def entry(self, entry_id: str, entry: dict[str, str]) -> None:
        self.out.inbox_done.append(entry_id)
        if entry.get("actor"):
            # The authenticated account behind the entry, audited with the events it causes.
            self.actors[entry_id] = entry["actor"]
        if entry.get("kind") == "iot":
            self.sensor_entry(entry_id, entry)
            return
        # Only device messages refer to current orders; building the index costs a scan.
        needs_orders = entry.get("kind") in _ORDER_KINDS
        assignments = self._assignments() if needs_orders else _NO_ORDERS
        result = translate(entry_id, entry, assignments, self._last_known(entry))
        if isinstance(result, Untranslatable):
            self.audit("refused", entry_id=entry_id, reason=result.reason)
            return
        for event in result:
            self.event(event, entry_id)

    def sensor_entry(self, entry_id: str, entry: Mapping[str, str]) -> None:
        """An IoT sensor's reading: an alarm opens or counts on the sensor's incident, a clear
        is recorded on it (dispatch.core.sensors); anything else is audited with why not."""
        report = sensor_report(entry_id, entry)
        if isinstance(report, Untranslatable):
            self.audit("refused", entry_id=entry_id, reason=report.reason)
            return
        result = sensor_events(
            report,
            self.center.policies.sensors,
            self.center.incidents.values(),
            now=self.now,
            new_incident=IncidentId(f"IOT-{entry_id}"),
        )
        if isinstance(result, NotAnAlarm):
            self.audit(
                "not_an_alarm", entry_id=entry_id, sensor=report.sensor, reason=result.reason
            )
            return
        for event in result:
            self.event(event, entry_id)

    def sensor_silence(self, heard: SensorsHeard) -> None:
        """Report each sensor newly silent past its heartbeat once, on the screens and in the
        audit; forget those heard again."""
        reported = self.core.silent_sensors
        check = sensor_silence(heard, self.center.policies.sensors, reported, now=self.now)
        for silent in check.silent:
            body = _json({**msgspec.to_builtins(silent), "summary": silent.summary(self.now)})
            self.out.events.append({"type": FeedType.SENSOR_SILENT, "body": body})
            self.audit("sensor_silent", sensor=silent.sensor, detail=body)
            self.out.alerts.append(silence_alert(silent, self.now))
            reported[silent.sensor] = self.out.silent_sensors[silent.sensor] = silent.silent_since
        for sensor in check.heard_again:
            self.audit("sensor_heard", sensor=sensor)
        for sensor in (*check.heard_again, *check.unregistered):
            del reported[sensor]
            self.out.silent_sensors[sensor] = None

    def _last_known(self, entry: Mapping[str, str]) -> LonLat | None:
        """Where the officer of an SOS was last seen (read only for alarms: they are rare)."""
        if entry.get("kind") != "sos":
            return None
        known = self.officers().get(OfficerId(entry.get("officer", "")))
        return None if known is None else known[1]

    def dead_letter(self, entry_id: str, entry: Mapping[str, str], error: str) -> None:
        self.out.inbox_done.append(entry_id)
        self.out.deadletters.append({**entry, "entry_id": entry_id, "error": error})

    def silence(self) -> None:
        incidents = self.center.incidents.values()
        if not officers_on_the_way(incidents):
            return  # nobody on the way: no need to read where officers are
        offline = {o for o, (seen, _) in self.officers().items() if seen is Presence.OFFLINE}
        for event in silent_officers(incidents, offline):
            self.event(event, "presence")

    def seen_at(self, event: Event, fix_at: float) -> float:
        """When a fix shows a departure or an arrival: the fix's own time, so one read late
        (after a fail-over, or a backlog) is not recorded late; never before the order was
        issued nor after now, whatever the device's clock says."""
        incident = self.center.incidents.get(event.incident)
        issued_at = incident.order.issued_at if incident and incident.order else fix_at
        return min(self.now, max(issued_at, fix_at))

    def event(self, event: Event, source: str, *, at: float | None = None) -> None:
        """Apply one event (at `at`, by default now); a refused one is audited with its
        reason, nothing else changes."""
        if isinstance(event, IncidentReported) and self.core.city is not None:
            event = placed(event, self.core.city.roster, self.core.city.places)
        try:
            if isinstance(event, OrderIssued) and source != "auto":
                self._check_crew(event)
            effects = self.center.handle(event, self.now if at is None else at)
        except (TimelineError, CrewRefused) as exc:
            self.audit("refused", entry_id=source, incident=event.incident, reason=str(exc))
            return
        self.audit(
            "event",
            entry_id=source,
            incident=event.incident,
            event=type(event).__name__,
            detail=_json(event),
            **({"actor": self.actors[source]} if source in self.actors else {}),
        )
        if isinstance(event, IncidentReported):
            incident = self.center.incidents[event.incident]
            self.out.alerts.append(reported_alert(incident, self.now))
        self.perform(effects)
        if isinstance(event, IncidentReported):
            self.auto_dispatch(event.incident, ())

    def _check_crew(self, order: OrderIssued) -> None:
        """A dispatcher's order, checked again as it is applied: the API checked it when it
        was sent, but an officer may have gone offline while it waited in the inbox.
        Automatic orders need no check: they are chosen from the recommendations."""
        if self.core.city is None:
            return
        states = self._officer_states()
        check_crew(
            order.officers,
            roster=self.core.city.roster,
            availability={officer: state.availability for officer, state in states.items()},
            now=self.now,
        )

    def auto_dispatch(self, incident_id: IncidentId, exclude: tuple[OfficerId, ...]) -> None:
        """Order the best recommended officers, where the policy dispatches by itself."""
        incident = self.center.incidents[incident_id]
        policy = self.center.policy(incident)
        if self.core.city is None or not policy.auto_dispatch:
            return
        states = self._officer_states()
        best = recommend_for(self.core.city, states, incident, now=self.now, exclude=exclude, k=2)
        crew = choose_crew(best, two_officers=policy.two_officers)
        if crew is None:
            self.audit("no_candidate", incident=incident_id, reason="no available officer")
            return
        order = order_id(incident_id, self.now)
        self.event(OrderIssued(incident_id, order, crew, by="auto"), "auto")

    def perform(self, effects: list[fx.Effect]) -> None:
        for effect in effects:
            match effect:
                case fx.Publish(incident=published):
                    # The latest state: an auto-dispatch inside this step may have moved it on.
                    incident = self.center.incidents[published.id]
                    self.out.incidents[incident.id] = msgspec.json.encode(incident)
                    self.out.deadlines[incident.id] = self.center.deadline_of(incident)
                    body = msgspec.json.encode(incident_body(incident)).decode()
                    self.out.events.append({"type": FeedType.INCIDENT, "body": body})
                case fx.RecordMilestone(incident=incident_id, record=record):
                    self.audit("milestone", incident=incident_id, detail=_json(record))
                case fx.SendOrder(incident=incident, order=order):
                    notice = _notice(incident, order, self.center)
                    self.out.outbox.append({"action": "send", "notice": _json(notice)})
                    sent = {**msgspec.to_builtins(notice), "eta_s": self._eta_s(incident, order)}
                    self.audit("order_sent", incident=incident.id, detail=_json(sent))
                case fx.WithdrawOrder():
                    withdrawal = _json(effect)
                    self.out.outbox.append({"action": "withdraw", "withdrawal": withdrawal})
                    self.audit("order_withdrawn", incident=effect.incident, detail=withdrawal)
                case fx.Redispatch():
                    self.auto_dispatch(effect.incident, effect.exclude)
                    self.alert(effect)
                case fx.Warn() | fx.Escalate() | fx.PartnerMissing():
                    self.alert(effect)

    def _eta_s(self, incident: Incident, order: Order) -> float | None:
        """The travel time the order goes out with (None without a city to know it). Every
        order with a city was checked or chosen from where officers are, so this reads
        nothing more."""
        if self.core.city is None:
            return None
        positions = {officer: point for officer, (_, point) in self.officers().items()}
        return crew_eta_s(incident.location, order.officers, positions, self.core.city.travel)

    def alert(self, effect: fx.Warn | fx.Escalate | fx.PartnerMissing | fx.Redispatch) -> None:
        kind = ALERTS[type(effect)]
        body = _json(effect)
        self.out.events.append({"type": kind.feed, "body": body})
        self.audit(kind.audit, incident=effect.incident, detail=body)
        incident = self.center.incidents.get(effect.incident)
        self.out.alerts.append(effect_alert(effect, incident, self.now))

    def audit(self, kind: str, **fields: str) -> None:
        self.out.audit.append({"at": f"{self.now:.3f}", "kind": kind, **fields})

    def _officer_states(self) -> dict[OfficerId, OfficerState]:
        return officer_states(self.officers(), self.center.incidents.values())

    def _assignments(self) -> Assignments:
        order_incident: dict[OrderId, IncidentId] = {}
        officer_orders: dict[OfficerId, list[tuple[IncidentId, OrderId]]] = {}
        for incident in self.center.incidents.values():
            if incident.order is not None and not incident.phase.terminal:
                order_incident[incident.order.id] = incident.id
                for officer in incident.order.officers:
                    officer_orders.setdefault(officer, []).append((incident.id, incident.order.id))
        return Assignments(order_incident, officer_orders)


def _notice(incident: Incident, order: Order, center: CommandCenter) -> OrderNotice:
    policy = center.policy(incident)
    return OrderNotice(
        order_id=order.id,
        incident_id=incident.id,
        issued=order.issued_at,
        respond_by=policy.due_at(Milestone.RESPOND, incident.reported_at),
        dispatch_by=policy.due_at(Milestone.TURN_OUT, incident.reported_at),
        handle_by=policy.due_at(Milestone.HANDLE, incident.reported_at),
        priority=incident.priority,
        category=incident.category,
        title=incident.title,
        lon=incident.location.lon,
        lat=incident.location.lat,
        radius_m=policy.arrive_radius_m,
        team=incident.team,
        dispatcher=next(
            (m.by for m in incident.milestones if m.milestone is Milestone.RESPOND), ""
        ),
        officers=tuple(order.officers),
    )


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()
