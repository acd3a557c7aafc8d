"""The ingest workers' registrations: one hash, a JSON record per worker name.

Bounded by the workers themselves: a record goes when its worker leaves, when it is retired,
or once it has been silent past its session expiry (`devices.membership`), whichever worker
notices first.
"""

from __future__ import annotations

import msgspec
import redis

from devices.membership import Member
from dispatch.store.ingest import UNAVAILABLE
from dispatch.store.keys import Keys

_MEMBER = msgspec.json.Decoder(Member)


class MemberStore:
    unavailable = UNAVAILABLE

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def beat(self, member: Member) -> None:
        self.redis.hset(self.keys.ingest_members, member.name, msgspec.json.encode(member))

    def members(self) -> list[Member]:
        return [_MEMBER.decode(raw) for raw in self.redis.hvals(self.keys.ingest_members)]

    def leave(self, member: Member) -> bool:
        key = self.keys.ingest_members
        removed = False

        def remove(pipe: redis.client.Pipeline) -> None:
            nonlocal removed
            raw = pipe.hget(key, member.name)
            # Gone already, or a worker started since under that name: its record stays.
            removed = raw is not None and _MEMBER.decode(raw).is_same_run(member)
            if removed:
                pipe.multi()
                pipe.hdel(key, member.name)

        self.redis.transaction(remove, key)
        return removed
