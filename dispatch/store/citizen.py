"""Citizens' reports in Redis: how many each contact and each address sent lately, and each
report (its photo, place, contact and address) by the incident it opened.

The limits are sliding windows: each sender's recent reports are a sorted set of when they
came, so a sender refused learns exactly when the oldest counted report leaves the window.
Both senders of a report (its phone number and its client address) are checked and counted in
one call: a report either counts against both or, refused, against neither. A report is
recorded in the same transaction that puts its incident's report in the engine's inbox, and
kept for good (as hotline tickets are): the photo stays linked after the incident leaves Redis.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from dispatch.store.incidents import inbox_fields
from dispatch.store.keys import Keys

# KEYS: each sender's window. ARGV: now, window, member, then each sender's limit.
# Answers 0 when the report counts, else the seconds until every sender is under its limit.
_ALLOW = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[3 + i])
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return tostring(wait) end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('EXPIRE', key, math.ceil(window))
end
return '0'
"""


class CitizenStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._allow = client.register_script(_ALLOW)

    def allow(self, limits: Mapping[str, int], *, now: float, window_s: float) -> float:
        """Count one report against each sender of `limits` (sender → reports per window);
        0.0 if it is within every limit, else the seconds to wait (and nothing is counted)."""
        senders = list(limits)
        member = f"{now!r}:{uuid.uuid4().hex}"
        wait = self._allow(
            keys=[self.keys.citizen_sent(s) for s in senders],
            args=[repr(now), repr(window_s), member, *(limits[s] for s in senders)],
        )
        return float(wait)

    def receive(
        self,
        incident: str,
        record: dict[str, Any],
        report: dict[str, Any],
        actor: dict[str, str],
    ) -> str:
        """Keep the report and queue its incident's `report` for the engine, in one
        transaction; returns the inbox entry."""
        fields = inbox_fields("command", report, actor=actor)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.citizen_reports, incident, json.dumps(record, ensure_ascii=False))
            pipe.xadd(self.keys.inbox, fields)  # type: ignore[arg-type]
            _, entry = pipe.execute()
        return str(entry)

    def report(self, incident: str) -> dict[str, Any] | None:
        """The citizen's report that opened `incident`, or None."""
        text = self.redis.hget(self.keys.citizen_reports, incident)
        return None if text is None else dict(json.loads(text))
