"""The hotline's keys: work orders received (by ticket, with the incident each opened), the
tickets still open, and the outbox of results for the hotline with its retry schedule.

A ticket is recorded in the same Redis call that puts its incident's report in the engine's
inbox, and only if it is new: the same ticket twice, even at once, opens one incident. A
result is queued in the call that takes its ticket out of the open ones, so it is queued once.
Delivery claims a due result for a lease: one worker at a time tries it, and one that died
mid-try leaves it to be tried again when the lease runs out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from dispatch.store.incidents import inbox_fields
from dispatch.store.keys import Keys

_DEADLETTER_MAXLEN = 10_000

# KEYS: tickets, open, inbox. ARGV: ticket, incident, record, then the inbox entry's fields.
_RECEIVE = """
local known = redis.call('HGET', KEYS[1], ARGV[1])
if known then return {0, cjson.decode(known)['incident'], ''} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local entry = redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
return {1, ARGV[2], entry}
"""
# KEYS: open, notices, due. ARGV: ticket, notice, due at.
_QUEUE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""
# KEYS: due, notices, attempts. ARGV: ticket, now, lease end.
_CLAIM = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return {redis.call('HGET', KEYS[2], ARGV[1]), redis.call('HINCRBY', KEYS[3], ARGV[1], 1)}
"""


@dataclass(frozen=True, slots=True)
class TicketReceived:
    incident: str
    created: bool  # False: the ticket was known, and `incident` is the one it opened
    entry: str  # the inbox entry of the report ("" when the ticket was known)


@dataclass(frozen=True, slots=True)
class Claimed:
    ticket: str
    notice: dict[str, Any]
    attempt: int  # 1 for the first try


class HotlineStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._receive = client.register_script(_RECEIVE)
        self._queue = client.register_script(_QUEUE)
        self._claim = client.register_script(_CLAIM)

    def receive(
        self,
        ticket: str,
        incident: str,
        order: dict[str, Any],
        report: dict[str, Any],
        actor: dict[str, str],
        *,
        at: float,
    ) -> TicketReceived:
        """Record the ticket and queue its incident's `report` for the engine, if the ticket
        is new; else the incident it opened before."""
        record = json.dumps({"incident": incident, "received_at": at, "order": order})
        fields = inbox_fields("command", report, actor=actor)
        created, known, entry = self._receive(
            keys=[self.keys.hotline_tickets, self.keys.hotline_open, self.keys.inbox],
            args=[ticket, incident, record, *(x for pair in fields.items() for x in pair)],
        )
        return TicketReceived(str(known), bool(created), str(entry))

    def open_tickets(self) -> dict[str, str]:
        """Tickets whose result is not queued yet, with their incidents."""
        return dict(self.redis.hgetall(self.keys.hotline_open))

    def queue_notice(self, ticket: str, notice: dict[str, Any], *, due_at: float) -> bool:
        """Queue the ticket's result, once: False if it was queued before."""
        keys = [self.keys.hotline_open, self.keys.hotline_notices, self.keys.hotline_due]
        text = json.dumps(notice, ensure_ascii=False)
        return bool(self._queue(keys=keys, args=[ticket, text, repr(due_at)]))

    def due_notices(self, now: float, limit: int = 50) -> list[str]:
        return list(self.redis.zrangebyscore(self.keys.hotline_due, "-inf", now, 0, limit))

    def claim(self, ticket: str, *, now: float, lease_until: float) -> Claimed | None:
        """Take a due result for a try until `lease_until`; None if another worker has it."""
        keys = [self.keys.hotline_due, self.keys.hotline_notices, self.keys.hotline_attempts]
        found = self._claim(keys=keys, args=[ticket, repr(now), repr(lease_until)])
        if not found:
            return None
        text, attempt = found
        return Claimed(ticket, json.loads(text), int(attempt))

    def delivered(self, ticket: str, *, at: float) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            self._forget(pipe, ticket)
            pipe.hset(self.keys.hotline_delivered, ticket, f"{at:.3f}")
            pipe.execute()

    def retry(self, ticket: str, *, at: float) -> None:
        self.redis.zadd(self.keys.hotline_due, {ticket: at}, xx=True)

    def give_up(self, claimed: Claimed, error: str, *, at: float) -> None:
        """Keep a result no try delivered in the dead letters, with the last error."""
        entry = {
            "ticket": claimed.ticket,
            "notice": json.dumps(claimed.notice, ensure_ascii=False),
            "attempts": str(claimed.attempt),
            "error": error,
            "at": f"{at:.3f}",
        }
        with self.redis.pipeline(transaction=True) as pipe:
            self._forget(pipe, claimed.ticket)
            pipe.xadd(self.keys.hotline_deadletter, entry, maxlen=_DEADLETTER_MAXLEN)
            pipe.execute()

    def _forget(self, pipe: Any, ticket: str) -> None:
        pipe.hdel(self.keys.hotline_notices, ticket)
        pipe.zrem(self.keys.hotline_due, ticket)
        pipe.hdel(self.keys.hotline_attempts, ticket)

    def ticket(self, ticket: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.hotline_tickets, ticket)
        return None if text is None else dict(json.loads(text))

    def delivered_at(self, ticket: str) -> float | None:
        at = self.redis.hget(self.keys.hotline_delivered, ticket)
        return None if at is None else float(at)

    def deadletters(self, count: int = 100) -> list[dict[str, str]]:
        return [
            {"id": i, **f}
            for i, f in self.redis.xrevrange(self.keys.hotline_deadletter, count=count)
        ]
