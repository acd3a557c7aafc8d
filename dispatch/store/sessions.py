"""Page sessions, login throttling and request budgets, in Redis.

A session is an opaque random token in an HttpOnly cookie; Redis keeps only its digest, with
the account it belongs to. The key expires after the idle timeout (renewed on use) and the
record carries its absolute end, so a stolen cookie dies by itself. An account's sessions are
listed under it, so disabling the account ends them all at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import redis

from dispatch.store.keys import Keys


@dataclass(frozen=True, slots=True)
class SessionRecord:
    digest: str
    account: str
    address: str
    created_at: float
    ends_at: float


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def open(
        self, account: str, address: str, *, now: float, idle_s: float, absolute_s: float
    ) -> str:
        """A new session for `account`; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        digest = session_digest(token)
        record = {"account": account, "address": address, "created": now, "ends": now + absolute_s}
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.session(digest), json.dumps(record), px=int(idle_s * 1000))
        pipe.zadd(self.keys.sessions_of(account), {digest: now + absolute_s})
        # Ended sessions leave the account's list here, so it stays as long as its live ones.
        pipe.zremrangebyscore(self.keys.sessions_of(account), "-inf", now)
        pipe.expire(self.keys.sessions_of(account), int(absolute_s) + 60)
        pipe.execute()
        return token

    def touch(self, token: str, *, now: float, idle_s: float) -> SessionRecord | None:
        """The live session for `token`, its idle timeout renewed; None if ended or unknown."""
        digest = session_digest(token)
        raw = self.redis.get(self.keys.session(digest))
        if raw is None:
            return None
        data = json.loads(raw)
        if now >= data["ends"]:
            self.redis.delete(self.keys.session(digest))
            return None
        self.redis.pexpire(self.keys.session(digest), int(idle_s * 1000))
        return SessionRecord(
            digest, data["account"], data["address"], data["created"], data["ends"]
        )

    def alive(self, digest: str) -> bool:
        return bool(self.redis.exists(self.keys.session(digest)))

    def close(self, digest: str) -> None:
        raw = self.redis.get(self.keys.session(digest))
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.session(digest))
        if raw is not None:
            pipe.zrem(self.keys.sessions_of(json.loads(raw)["account"]), digest)
        pipe.execute()

    def close_all(self, account: str) -> int:
        """End every session of `account` (disabled, or its password changed)."""
        digests = self.redis.zrange(self.keys.sessions_of(account), 0, -1)
        pipe = self.redis.pipeline(transaction=True)
        for digest in digests:
            pipe.delete(self.keys.session(digest))
        pipe.delete(self.keys.sessions_of(account))
        pipe.execute()
        return len(digests)

    # Throttling -----------------------------------------------------------------------------

    def locked_for(self, who: str) -> float:
        """Seconds left of a lockout of `who`, 0 if none."""
        left = self.redis.pttl(self.keys.lockout(who))
        return max(0.0, left / 1000.0)

    def count_failure(self, who: str, *, window_s: float, limit: int, lockout_s: float) -> int:
        """Count a failed login; at `limit` failures within the window, lock `who` out."""
        key = self.keys.login_failures(who)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, int(window_s), nx=True)
        failures = int(pipe.execute()[0])
        if failures >= limit:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self.keys.lockout(who), "1", px=int(lockout_s * 1000))
            pipe.delete(key)
            pipe.execute()
        return failures

    def clear_failures(self, who: str) -> None:
        self.redis.delete(self.keys.login_failures(who))

    def spend(self, who: str, *, now: float, window_s: int, budget: int) -> bool:
        """Count one request of `who` in the current window; False once over budget."""
        window = int(now // window_s)
        key = self.keys.request_count(who, window)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window_s * 2)
        return int(pipe.execute()[0]) <= budget
