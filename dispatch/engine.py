"""The engine: the one place where the command center's effects become I/O.

One engine leads at a time, by holding a lease in Redis that it renews every third of its
time to live; a standby polls and takes over within a lease period after the leader dies.
The leader rebuilds the command center from the saved incidents, then loops: read the inbox
(device messages and dispatcher commands) with a timeout no later than the next deadline,
apply each entry, fire what came due, and write the step — incidents, deadlines, screen
events, audit records, orders for delivery and the inbox acknowledgement — in one Redis
transaction guarded by the lease. A crash before that transaction redoes the step from the
same inbox entries and the same saved state, so no alert is lost or raised twice; overdue
deadlines fire as soon as a new leader starts.
"""

from __future__ import annotations

import logging
import threading
import time

import msgspec
import redis

from devices.downlink import OrderNotice
from devices.presence import Presence
from devices.translate import Assignments, Untranslatable, translate
from dispatch.city import City
from dispatch.clock import Clock
from dispatch.core import effects as fx
from dispatch.core.center import CommandCenter
from dispatch.core.events import Event, IncidentReported, OfficerWentOffline, OrderIssued
from dispatch.core.model import Incident, IncidentId, Milestone, Order, OrderId, Phase
from dispatch.core.policy import PolicyBook
from dispatch.core.roster import OfficerId
from dispatch.core.timeline import TimelineError
from dispatch.core.tracking import SceneWatcher
from dispatch.officers import officer_positions, officer_states, recommend_for
from dispatch.store import EngineStep, EngineStore, Store
from gis.coords import LonLat

log = logging.getLogger(__name__)

_MAX_BLOCK_S = 1.0
_ORDER_KINDS = ("ack", "transition", "conn", "lwt")
_SILENCE_CHECK_S = 5.0
_NO_ORDERS = Assignments({}, {})
# While officers are on their way, positions are read at least this often.
_WATCHING_BLOCK_S = 0.2


class Engine:
    def __init__(
        self,
        store: Store,
        *,
        holder: str,
        policies: PolicyBook | None = None,
        lease_ms: int = 8_000,
        city: City | None = None,
        presence_limits: tuple[float, float] = (60.0, 300.0),
        clock: Clock | None = None,
    ) -> None:
        self.devices = store
        self.city = city
        self.presence_limits = presence_limits
        self.store = EngineStore(store)
        self.holder = holder
        self.policies = policies or PolicyBook()
        self.lease_ms = lease_ms
        self.clock = clock or Clock()
        self.leading = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Stand by until the lease is free, lead until it is lost or `stop` is set.

        Losing Redis costs the lead, never the process: the engine waits and stands again.
        """
        while not stop.is_set():
            try:
                self._stand(stop)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.leading.clear()
                log.error("engine %s lost Redis (%s); standing again in 1 s", self.holder, exc)
                stop.wait(1.0)

    def _stand(self, stop: threading.Event) -> None:
        if not self.store.try_lead(self.holder, self.lease_ms):
            stop.wait(self.lease_ms / 10_000)
            return
        log.info("engine %s leads", self.holder)
        self.leading.set()
        try:
            self._lead(stop)
        finally:
            self.leading.clear()
        self.store.resign(self.holder)
        log.info("engine %s stands down", self.holder)

    def _lead(self, stop: threading.Event) -> None:
        center = CommandCenter(self.policies)
        for raw in self.store.load_incidents().values():
            center.restore(msgspec.json.decode(raw, type=Incident))
        self.store.ensure_inbox_group()
        watcher = SceneWatcher()
        positions_cursor = "$"
        silence_check_at = 0.0
        renew_every_s = self.lease_ms / 3000
        renew_at = time.monotonic() + renew_every_s
        while not stop.is_set():
            if time.monotonic() >= renew_at:
                if not self.store.renew_lead(self.holder, self.lease_ms):
                    log.error("engine %s lost its lease", self.holder)
                    return
                renew_at = time.monotonic() + renew_every_s
            deadline = center.next_deadline()
            wait_s = renew_at - time.monotonic()
            if deadline is not None:
                wait_s = min(wait_s, self.clock.real_seconds(deadline - self.clock()))
            watcher.sync(center.incidents.values(), lambda i: center.policy(i).arrive_radius_m)
            block_s = _WATCHING_BLOCK_S if watcher else _MAX_BLOCK_S
            entries = self.store.read_inbox(block_ms=int(max(1, min(block_s, wait_s) * 1000)))
            positions_cursor, positions = self.store.read_positions(positions_cursor)
            now = self.clock()
            step = EngineStep()
            for entry_id, entry in entries:
                self._apply_entry(center, step, entry_id, entry, now)
            for dev, lon, lat, fix_at in positions:
                officer = OfficerId(dev.split("/", 1)[0])
                for event in watcher.observe(officer, LonLat(lon, lat), float(fix_at)):
                    self._apply_event(center, step, event, f"fix:{dev}:{fix_at}", now)
            if now >= silence_check_at:
                silence_check_at = now + _SILENCE_CHECK_S
                for event in self._silent_officers(center, now):
                    self._apply_event(center, step, event, "presence", now)
            self._perform(center, step, center.expire(now), now)
            for record in step.audit:
                record["engine"] = self.holder
            if step and not self.store.apply(step, self.holder):
                log.error(
                    "engine %s lost its lease before writing; a standby redoes the step",
                    self.holder,
                )
                return

    def _silent_officers(self, center: CommandCenter, now: float) -> list[Event]:
        """Officers on an order whose every device has gone offline by silence alone (a phone
        in a dead zone sends no will): their orders go back for re-dispatch."""
        on_the_way = [
            (incident.id, officer)
            for incident in center.incidents.values()
            if incident.phase in (Phase.DISPATCHED, Phase.EN_ROUTE) and incident.order is not None
            for officer in incident.order.officers
        ]
        if not on_the_way:
            return []
        stale_s, offline_s = self.presence_limits
        positions = officer_positions(
            self.devices, now=now, stale_after_s=stale_s, offline_after_s=offline_s
        )
        return [
            OfficerWentOffline(incident, officer)
            for incident, officer in on_the_way
            if officer in positions and positions[officer][0] is Presence.OFFLINE
        ]

    def _apply_entry(
        self,
        center: CommandCenter,
        step: EngineStep,
        entry_id: str,
        entry: dict[str, str],
        now: float,
    ) -> None:
        step.inbox_done.append(entry_id)
        # Only device messages refer to current orders; building the index costs a scan.
        needs_orders = entry.get("kind") in _ORDER_KINDS
        result = translate(entry_id, entry, _assignments(center) if needs_orders else _NO_ORDERS)
        if isinstance(result, Untranslatable):
            step.audit.append(_audit(now, "refused", entry_id=entry_id, reason=result.reason))
            return
        for event in result:
            self._apply_event(center, step, event, entry_id, now)

    def _apply_event(
        self, center: CommandCenter, step: EngineStep, event: Event, source: str, now: float
    ) -> None:
        """Apply one event; a refused one is audited with its reason, nothing else changes."""
        try:
            effects = center.handle(event, now)
        except TimelineError as exc:
            step.audit.append(
                _audit(now, "refused", entry_id=source, incident=event.incident, reason=str(exc))
            )
            return
        step.audit.append(
            _audit(
                now,
                "event",
                entry_id=source,
                incident=event.incident,
                event=type(event).__name__,
                detail=_json(event),
            )
        )
        self._perform(center, step, effects, now)
        if isinstance(event, IncidentReported):
            self._auto_dispatch(center, step, event.incident, (), now)

    def _auto_dispatch(
        self,
        center: CommandCenter,
        step: EngineStep,
        incident_id: IncidentId,
        exclude: tuple[OfficerId, ...],
        now: float,
    ) -> None:
        """Order the best recommended officer, where the policy dispatches by itself."""
        incident = center.incidents[incident_id]
        policy = center.policy(incident)
        if self.city is None or not policy.auto_dispatch:
            return
        stale_s, offline_s = self.presence_limits
        states = officer_states(
            self.devices,
            center.incidents.values(),
            now=now,
            stale_after_s=stale_s,
            offline_after_s=offline_s,
        )
        crew = 2 if policy.two_officers else 1
        best = recommend_for(self.city, states, incident, now=now, exclude=exclude, k=crew)
        if len(best) < crew:
            step.audit.append(
                _audit(now, "no_candidate", incident=incident_id, reason="no available officer")
            )
            return
        order = OrderId(f"{incident_id}-O{len(incident.past_officers) + 1}")
        self._apply_event(
            center,
            step,
            OrderIssued(incident_id, order, tuple(r.officer for r in best), by="auto"),
            "auto",
            now,
        )

    def _perform(
        self, center: CommandCenter, step: EngineStep, effects: list[fx.Effect], now: float
    ) -> None:
        for effect in effects:
            match effect:
                case fx.Publish(incident=published):
                    # The latest state: an auto-dispatch inside this step may have moved it on.
                    incident = center.incidents[published.id]
                    encoded = msgspec.json.encode(incident)
                    step.incidents[incident.id] = encoded
                    step.deadlines[incident.id] = center.deadline_of(incident)
                    step.events.append({"type": "incident", "body": encoded.decode()})
                case fx.RecordMilestone(incident=incident_id, record=record):
                    step.audit.append(
                        _audit(now, "milestone", incident=incident_id, detail=_json(record))
                    )
                case fx.Warn() | fx.Escalate():
                    kind = "warning" if isinstance(effect, fx.Warn) else "escalation"
                    body = _json(effect)
                    step.events.append({"type": kind, "body": body})
                    step.audit.append(_audit(now, kind, incident=effect.incident, detail=body))
                case fx.PartnerMissing():
                    body = _json(effect)
                    step.events.append({"type": "partner_missing", "body": body})
                    step.audit.append(
                        _audit(now, "partner_missing", incident=effect.incident, detail=body)
                    )
                case fx.Redispatch():
                    self._auto_dispatch(center, step, effect.incident, effect.exclude, now)
                    body = _json(effect)
                    step.events.append({"type": "redispatch", "body": body})
                    step.audit.append(
                        _audit(now, "redispatch", incident=effect.incident, detail=body)
                    )
                case fx.SendOrder(incident=incident, order=order):
                    notice = _json(_notice(incident, order, center))
                    step.outbox.append({"action": "send", "notice": notice})
                    step.audit.append(
                        _audit(now, "order_sent", incident=incident.id, detail=notice)
                    )
                case fx.WithdrawOrder():
                    withdrawal = _json(effect)
                    step.outbox.append({"action": "withdraw", "withdrawal": withdrawal})
                    step.audit.append(
                        _audit(now, "order_withdrawn", incident=effect.incident, detail=withdrawal)
                    )


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


def _assignments(center: CommandCenter) -> Assignments:
    order_incident: dict[OrderId, IncidentId] = {}
    officer_orders: dict[OfficerId, list[tuple[IncidentId, OrderId]]] = {}
    for incident in center.incidents.values():
        if incident.order is not None and not incident.phase.terminal:
            order_incident[incident.order.id] = incident.id
            for officer in incident.order.officers:
                officer_orders.setdefault(officer, []).append((incident.id, incident.order.id))
    return Assignments(order_incident, officer_orders)


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _audit(now: float, kind: str, **fields: str) -> dict[str, str]:
    return {"at": f"{now:.3f}", "kind": kind, **fields}
