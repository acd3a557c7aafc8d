"""The engine's keys: incidents, deadlines, leadership, the inbox, the audit trail, the
outbox of orders and the sensors reported silent; a step is written in one transaction
guarded by the lease."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from dispatch.core.model import Incident
from dispatch.core.step import EngineStep
from dispatch.store.alerts import raise_alerts
from dispatch.store.durability import PRIMARY_ONLY, Durability
from dispatch.store.feed import POSITIONS_GROUP, ensure_group
from dispatch.store.keys import Keys

ENGINE_GROUP = "engine"
ENGINE_DEADLETTER_MAXLEN = 10_000
# The screens' stream keeps this much of the past (wall clock, as its ids): a screen that was
# away longer gets a fresh snapshot instead of every update it missed. Its length cap alone
# would hold 100,000 positions updates: gigabytes for a city of thousands of officers.
EVENTS_WINDOW_S = 900
DELIVERY_GROUP = "delivery"
_INCIDENT = msgspec.json.Decoder(Incident)


def _window_start(now: float) -> str:
    """The first stream id inside the screens' stream window at `now` (epoch seconds)."""
    return f"{int((now - EVENTS_WINDOW_S) * 1000)}-0"


def decode_incident(raw: bytes | str) -> Incident:
    """An incident from the JSON the engine saves (in Redis, and in the history)."""
    return _INCIDENT.decode(raw)


_ENGINE_CONSUMER = "leader"  # one name: whichever engine leads inherits the pending entries
# Extend the lease only while we still hold it; PEXPIRE alone would extend a lease another
# engine took over after ours lapsed.
# Free, or still ours: an engine that lost Redis for a moment (a fail-over) takes its own
# lease back at once instead of waiting out its time to live.
_TAKE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def inbox_fields(
    kind: str,
    body: dict[str, Any],
    officer: str = "",
    device: str = "",
    actor: dict[str, str] | None = None,
) -> dict[str, str]:
    """An entry of the engine's inbox (see `IncidentStore.post`)."""
    fields = {"kind": kind, "device": device, "officer": officer, "body": json.dumps(body)}
    if actor is not None:
        fields["actor"] = json.dumps(actor, ensure_ascii=False)
    return fields


# A ticket names its incident this long: longer than any incident stays open, so a resend
# finds it, and short enough that the keys do not pile up.
INTAKE_TICKET_TTL_S = 30 * 86400

# KEYS: ticket, inbox. ARGV: incident, ttl s, then the inbox entry's fields.
_COMMAND_ONCE = """
local known = redis.call('GET', KEYS[1])
if known then return {0, known, ''} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local entry = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
return {1, ARGV[1], entry}
"""


@dataclass(frozen=True, slots=True)
class Ticketed:
    incident: str
    created: bool  # False: the ticket was known, and `incident` is the one it opened
    entry: str  # the inbox entry of the report ("" when the ticket was known)


class IncidentStore:
    def __init__(
        self, client: redis.Redis, keys: Keys, *, durability: Durability = PRIMARY_ONLY
    ) -> None:
        self.redis = client
        self.keys = keys
        self.durability = durability
        self._take = self.redis.register_script(_TAKE_LEASE)
        self._renew = self.redis.register_script(_RENEW_LEASE)
        self._command_once = self.redis.register_script(_COMMAND_ONCE)

    def try_lead(self, holder: str, ttl_ms: int) -> bool:
        return bool(self._take(keys=[self.keys.engine_lease], args=[holder, ttl_ms]))

    def renew_lead(self, holder: str, ttl_ms: int) -> bool:
        return bool(self._renew(keys=[self.keys.engine_lease], args=[holder, ttl_ms]))

    def resign(self, holder: str) -> None:
        if self.redis.get(self.keys.engine_lease) == holder:
            self.redis.delete(self.keys.engine_lease)

    def load_incidents(self) -> dict[str, Incident]:
        """Every saved incident, by id."""
        raw = self.redis.hgetall(self.keys.incidents)
        return {k: _INCIDENT.decode(v) for k, v in raw.items()}

    def silent_sensors(self) -> dict[str, float]:
        """The sensors reported silent, each with the time it is silent since."""
        return {k: float(v) for k, v in self.redis.hgetall(self.keys.silent_sensors).items()}

    def ensure_inbox_group(self) -> None:
        ensure_group(self.redis, self.keys.inbox, ENGINE_GROUP)

    def ensure_outbox_group(self, group: str = DELIVERY_GROUP) -> None:
        ensure_group(self.redis, self.keys.outbox, group)

    def read_outbox(
        self, *, unsettled: bool, block_ms: int, count: int = 100, group: str = DELIVERY_GROUP
    ) -> list[tuple[str, dict[str, str]]]:
        """Orders for delivery: those read before and never settled (no wait), or new ones.

        Each way of delivering (MQTT, each JT/T 808 gateway) reads with a group of its own."""
        reply = self.redis.xreadgroup(
            group,
            "deliverer",
            {self.keys.outbox: "0" if unsettled else ">"},
            count=count,
            block=None if unsettled else block_ms,
        )
        return [entry for _stream, entries in reply or [] for entry in entries]

    def settle_outbox(self, entry_id: str, group: str = DELIVERY_GROUP) -> None:
        """Every message of this order is delivered (taken by the broker, or answered by the
        terminals), as far as `group`'s way of delivering goes."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.keys.outbox, group, entry_id)
        # An order every way of delivering has settled goes (the audit keeps what was sent).
        pipe.fcall("trim_consumed", 1, self.keys.outbox)
        pipe.execute()

    def read_inbox(self, block_ms: int, count: int = 500) -> list[tuple[str, dict[str, str]]]:
        """Entries delivered to a previous leader but never acknowledged first, then new ones."""
        pending = self.redis.xreadgroup(
            ENGINE_GROUP, _ENGINE_CONSUMER, {self.keys.inbox: "0"}, count=count
        )
        entries = pending[0][1] if pending else []
        if entries:
            return list(entries)
        fresh = self.redis.xreadgroup(
            ENGINE_GROUP, _ENGINE_CONSUMER, {self.keys.inbox: ">"}, count=count, block=block_ms
        )
        return list(fresh[0][1]) if fresh else []

    def command(self, body: dict[str, Any], actor: dict[str, str] | None = None) -> str:
        """Queue a dispatcher command for the engine; returns its inbox id."""
        return self.post("command", body, actor=actor)

    def command_once(
        self, ticket: str, incident: str, body: dict[str, Any], actor: dict[str, str]
    ) -> Ticketed:
        """Queue the report `body` of `incident` unless `ticket` opened one before: one Redis
        call, so the same ticket sent twice at once still opens one incident."""
        fields = inbox_fields("command", body, actor=actor)
        created, known, entry = self._command_once(
            keys=[self.keys.intake_ticket(ticket), self.keys.inbox],
            args=[incident, INTAKE_TICKET_TTL_S, *(x for pair in fields.items() for x in pair)],
        )
        return Ticketed(str(known), bool(created), str(entry))

    def post(
        self,
        kind: str,
        body: dict[str, Any],
        officer: str = "",
        device: str = "",
        actor: dict[str, str] | None = None,
    ) -> str:
        """Put an entry in the engine's inbox, as ingest does for device messages. `actor` is
        the authenticated account behind it (account, role, address), kept in the audit."""
        return str(
            self.redis.xadd(self.keys.inbox, inbox_fields(kind, body, officer, device, actor))
        )

    def incident(self, incident_id: str) -> Incident | None:
        raw = self.redis.hget(self.keys.incidents, incident_id)
        return None if raw is None else _INCIDENT.decode(raw)

    def apply(self, step: EngineStep, holder: str, *, zone: str) -> bool:
        """Write a step if we still lead; False (nothing written) if leadership was lost.
        Alerts carry their times in `zone` too, the center's. Raises `NotReplicated` when
        the step is on the primary but not on the replicas `durability` requires."""
        pipe = self.redis.pipeline(transaction=True)
        try:
            pipe.watch(self.keys.engine_lease)
            if pipe.get(self.keys.engine_lease) != holder:
                return False
            pipe.multi()
            if step.incidents:
                pipe.hset(self.keys.incidents, mapping=step.incidents)
            scheduled = {k: v for k, v in step.deadlines.items() if v is not None}
            if scheduled:
                pipe.zadd(self.keys.deadlines, scheduled)
            done = [k for k, v in step.deadlines.items() if v is None]
            if done:
                pipe.zrem(self.keys.deadlines, *done)
            for event in step.events:
                pipe.xadd(self.keys.events, event, maxlen=100_000, approximate=True)
            raise_alerts(pipe, self.keys, step.alerts, zone)
            for record in step.audit:
                pipe.xadd(self.keys.audit, record)
            for order in step.outbox:
                pipe.xadd(self.keys.outbox, order)
            for entry in step.deadletters:
                pipe.xadd(
                    self.keys.engine_deadletter,
                    entry,
                    maxlen=ENGINE_DEADLETTER_MAXLEN,
                    approximate=True,
                )
            if step.deadletters:
                pipe.hincrby(self.keys.engine_stats, "deadlettered", len(step.deadletters))
            if step.inbox_done:
                pipe.xack(self.keys.inbox, ENGINE_GROUP, *step.inbox_done)
                # What every group has settled is kept nowhere else's need: the inbox stays
                # as long as the unsettled part, however long the center runs.
                pipe.fcall("trim_consumed", 1, self.keys.inbox)
            if step.positions_done:
                pipe.xack(self.keys.positions, POSITIONS_GROUP, *step.positions_done)
                pipe.fcall("trim_consumed", 1, self.keys.positions)
            # Approximate on purpose: whole stream nodes only, so a step pays almost nothing;
            # the window is a bound on memory, not a promise to drop each entry on time.
            pipe.xtrim(self.keys.events, minid=_window_start(time.time()), approximate=True)
            silent = {k: f"{v:.3f}" for k, v in step.silent_sensors.items() if v is not None}
            if silent:
                pipe.hset(self.keys.silent_sensors, mapping=silent)
            heard = [k for k, v in step.silent_sensors.items() if v is None]
            if heard:
                pipe.hdel(self.keys.silent_sensors, *heard)
            if step.forgotten:
                pipe.hdel(self.keys.incidents, *step.forgotten)
                pipe.zrem(self.keys.deadlines, *step.forgotten)
                pipe.srem(self.keys.released, *step.forgotten)
            pipe.execute()
        except redis.WatchError:
            return False
        finally:
            pipe.reset()
        if self.durability.replicas:
            self._confirm_replicated()
        return True

    def _confirm_replicated(self) -> None:
        # WAIT counts the writes of its own connection, and the transaction's went back to
        # the pool: one more write here, on the same replication stream, stands for both.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(self.keys.engine_stats, "steps_confirmed", 1)
        pipe.wait(self.durability.replicas, self.durability.timeout_ms)
        _, acknowledged = pipe.execute()
        self.durability.confirm(int(acknowledged))

    def audit_records(self, count: int = 10_000) -> list[dict[str, str]]:
        return [{"id": i, **f} for i, f in self.redis.xrange(self.keys.audit, count=count)]

    def incident_audit(self, incident_id: str) -> list[dict[str, str]]:
        """The audit records of one incident: its own, and those naming it (a merge)."""
        return [
            r
            for r in self.audit_records(10_000_000)
            if r.get("incident") == incident_id or incident_id in r.get("detail", "")
        ]

    # The history worker's side: copy the audit out, then trim it; release ended incidents.

    def audit_after(self, stream_id: str | None, count: int) -> list[tuple[str, dict[str, str]]]:
        """Audit records after `stream_id` (all from the start when None), oldest first."""
        start = "-" if stream_id is None else f"({stream_id}"
        return list(self.redis.xrange(self.keys.audit, min=start, count=count))

    def snapshots(self, incident_ids: Sequence[str]) -> dict[str, bytes]:
        """The saved JSON of each incident still in Redis."""
        if not incident_ids:
            return {}
        raw = self.redis.hmget(self.keys.incidents, list(incident_ids))
        return {i: v.encode() for i, v in zip(incident_ids, raw, strict=True) if v is not None}

    def trim_audit(self, through: str) -> None:
        """Drop audit records up to `through`: the history has committed them."""
        self.redis.xtrim(self.keys.audit, minid=through, approximate=False)
        self.redis.xdel(self.keys.audit, through)

    def announce(self, kind: str, body: dict[str, Any]) -> str:
        """Put an alert that is not the engine's on the screens' stream (a patrol shortfall)."""
        fields = {"type": kind, "body": json.dumps(body, ensure_ascii=False)}
        return str(self.redis.xadd(self.keys.events, fields, maxlen=100_000, approximate=True))

    def checked_until(self) -> float | None:
        raw = self.redis.get(self.keys.patrol_checked)
        return None if raw is None else float(raw)

    def check_until(self, at: float) -> None:
        self.redis.set(self.keys.patrol_checked, f"{at:.3f}")

    def release(self, incident_ids: Sequence[str]) -> None:
        if incident_ids:
            self.redis.sadd(self.keys.released, *incident_ids)

    def released(self) -> set[str]:
        return set(self.redis.smembers(self.keys.released))

    def engine_deadletters(self, count: int = 100) -> list[dict[str, str]]:
        """The newest inbox entries the engine gave up on, with the error."""
        return [
            {"id": i, **f}
            for i, f in self.redis.xrevrange(self.keys.engine_deadletter, count=count)
        ]

    def engine_stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.engine_stats).items()}

    def inbox_waiting_s(self) -> float:
        """How long the oldest inbox entry the engine has not settled has waited (0 if none),
        by the Redis clock: read and never acknowledged, or not read at all."""
        try:
            groups = self.redis.xinfo_groups(self.keys.inbox)
        except redis.ResponseError:  # no inbox yet
            return 0.0
        group = next((g for g in groups if g["name"] == ENGINE_GROUP), None)
        if group is not None and group["pending"]:
            oldest = self.redis.xpending(self.keys.inbox, ENGINE_GROUP)["min"]
        else:
            after = "0-0" if group is None else group["last-delivered-id"]
            unread = self.redis.xrange(self.keys.inbox, min=f"({after}", count=1)
            if not unread:
                return 0.0
            oldest = unread[0][0]
        seconds, micros = self.redis.time()
        return max(0.0, seconds + micros / 1e6 - int(oldest.split("-")[0]) / 1000)

    def inbox_entries(self, count: int = 100) -> list[dict[str, str]]:
        return [{"id": i, **f} for i, f in self.redis.xrange(self.keys.inbox, count=count)]

    def outbox_entries(self, count: int = 10_000) -> list[dict[str, str]]:
        return [{"id": i, **f} for i, f in self.redis.xrange(self.keys.outbox, count=count)]
