"""The engine's keys: incidents, deadlines, leadership, the inbox, the audit trail and the
outbox of orders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from dispatch.store.devices import Store

ENGINE_GROUP = "engine"
_ENGINE_CONSUMER = "leader"  # one name: whichever engine leads inherits the pending entries
# Extend the lease only while we still hold it; PEXPIRE alone would extend a lease another
# engine took over after ours lapsed.
_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass(slots=True)
class EngineStep:
    """Everything one engine step writes, applied in one MULTI so that state, alerts and the
    inbox position move together: a crash either redoes the step or finds it done."""

    incidents: dict[str, bytes] = field(default_factory=dict)  # id -> encoded incident
    deadlines: dict[str, float | None] = field(default_factory=dict)
    events: list[dict[str, str]] = field(default_factory=list)
    audit: list[dict[str, str]] = field(default_factory=list)
    outbox: list[dict[str, str]] = field(default_factory=list)  # orders for device delivery
    inbox_done: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.incidents or self.events or self.audit or self.inbox_done)


class EngineStore:
    """The engine's keys: incidents, deadlines, leadership, the inbox and the audit trail."""

    def __init__(self, store: Store) -> None:
        self.redis = store.redis
        self.keys = store.keys
        self._renew = self.redis.register_script(_RENEW_LEASE)

    def try_lead(self, holder: str, ttl_ms: int) -> bool:
        return bool(self.redis.set(self.keys.engine_lease, holder, nx=True, px=ttl_ms))

    def renew_lead(self, holder: str, ttl_ms: int) -> bool:
        return bool(self._renew(keys=[self.keys.engine_lease], args=[holder, ttl_ms]))

    def resign(self, holder: str) -> None:
        if self.redis.get(self.keys.engine_lease) == holder:
            self.redis.delete(self.keys.engine_lease)

    def load_incidents(self) -> dict[str, bytes]:
        """Every saved incident, encoded, by id."""
        raw = self.redis.hgetall(self.keys.incidents)
        return {k: v.encode() for k, v in raw.items()}

    def ensure_inbox_group(self) -> None:
        try:
            self.redis.xgroup_create(self.keys.inbox, ENGINE_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

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

    def command(self, body: dict[str, Any]) -> str:
        """Queue a dispatcher command for the engine; returns its inbox id."""
        return self.post("command", body)

    def post(self, kind: str, body: dict[str, Any], officer: str = "", device: str = "") -> str:
        """Put an entry in the engine's inbox, as ingest does for device messages."""
        fields = {"kind": kind, "device": device, "officer": officer, "body": json.dumps(body)}
        return str(self.redis.xadd(self.keys.inbox, fields))

    def incident(self, incident_id: str) -> bytes | None:
        raw = self.redis.hget(self.keys.incidents, incident_id)
        return None if raw is None else raw.encode()

    def apply(self, step: EngineStep, holder: str) -> bool:
        """Write a step if we still lead; False (nothing written) if leadership was lost."""
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
            for record in step.audit:
                pipe.xadd(self.keys.audit, record)
            for order in step.outbox:
                pipe.xadd(self.keys.outbox, order)
            if step.inbox_done:
                pipe.xack(self.keys.inbox, ENGINE_GROUP, *step.inbox_done)
            pipe.execute()
            return True
        except redis.WatchError:
            return False
        finally:
            pipe.reset()

    def audit_records(self, count: int = 10_000) -> list[dict[str, str]]:
        return [{"id": i, **f} for i, f in self.redis.xrange(self.keys.audit, count=count)]

    def incident_audit(self, incident_id: str) -> list[dict[str, str]]:
        """The audit records of one incident: its own, and those naming it (a merge)."""
        return [
            r
            for r in self.audit_records(10_000_000)
            if r.get("incident") == incident_id or incident_id in r.get("detail", "")
        ]

    def read_positions(self, cursor: str, count: int = 1000) -> tuple[str, list[list[Any]]]:
        """Live positions published after `cursor` ("$": from now on) and the new cursor."""
        if cursor == "$":
            last = self.redis.xrevrange(self.keys.events, count=1)
            return (last[0][0] if last else "0-0"), []
        reply = self.redis.xread({self.keys.events: cursor}, count=count)
        positions: list[list[Any]] = []
        for _stream, entries in reply:
            for entry_id, fields in entries:
                cursor = entry_id
                if fields.get("type") == "positions":
                    positions += json.loads(fields["body"])
        return cursor, positions

    def outbox_entries(self, count: int = 10_000) -> list[dict[str, str]]:
        return [{"id": i, **f} for i, f in self.redis.xrange(self.keys.outbox, count=count)]
