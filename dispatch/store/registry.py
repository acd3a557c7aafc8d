"""The device registry's keys: the bindings of devices (pairs `user/device` and terminal
serials, one hash keyed by `Binding.key`) and the records of the broker credentials issued to
them, keyed the same way."""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis

from devices.registry import Binding, CredentialRecord
from dispatch.core.track import DeviceKey, device_key
from dispatch.store.keys import Keys

# Moves one binding (and its credential record) from KEYS' field ARGV[1] to ARGV[2], only if
# the binding still reads ARGV[3]: an operator's rebinding in the meantime is left alone.
_MOVE_BINDING = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then
  redis.call('HSETNX', KEYS[2], ARGV[2], record)
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""


class RegistryStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._move_binding = client.register_script(_MOVE_BINDING)

    def bindings(self) -> dict[str, Binding]:
        """Every binding by its key: `user/device` for a pair, the serial for a terminal."""
        raw = self.redis.hgetall(self.keys.registry)
        return {key: Binding.from_json(key, text) for key, text in raw.items()}

    def bind(self, bindings: Sequence[Binding]) -> None:
        if bindings:
            self.redis.hset(self.keys.registry, mapping={b.key: b.to_json() for b in bindings})

    def binding(self, key: str) -> Binding | None:
        """One binding by its key, read alone (a request naming its device, not the ingest)."""
        text = self.redis.hget(self.keys.registry, key)
        return None if text is None else Binding.from_json(key, text)

    def unbind(self, key: str) -> bool:
        """Remove a binding and the device's HTTP key: bound again, it needs a new one."""
        self.redis.hdel(self.keys.http_keys, key)
        return bool(self.redis.hdel(self.keys.registry, key))

    def devices_of(self, officer: str) -> list[str]:
        """The device names bound to an officer (pairs and serials), sorted, each once."""
        return sorted({b.device for b in self.bindings().values() if b.officer == officer})

    def device_keys(self) -> list[DeviceKey]:
        """Every bound device as the topic its officer publishes it under, sorted, each once."""
        return sorted({device_key(b.officer, b.device) for b in self.bindings().values()})

    def upgrade(self) -> int:
        """Turn devices registered on first sight by their serial alone (as the registry did
        before it knew pairs) into the pairs they were seen as; returns how many moved.

        Safe to repeat and to run from several workers at once: each move is one atomic
        compare-and-move, and a moved binding is no longer a serial.
        """
        moved = 0
        for key, text in self.redis.hgetall(self.keys.registry).items():
            if "/" in key or not json.loads(text).get("auto"):
                continue
            pair = Binding.from_json(key, text)
            target = device_key(pair.officer, pair.device)
            moved += self._move_binding(
                keys=[self.keys.registry, self.keys.credentials], args=[key, target, text]
            )
        return moved

    def record_credentials(self, record: CredentialRecord) -> None:
        self.redis.hset(self.keys.credentials, record.key, record.to_json())

    def credentials(self, key: str) -> CredentialRecord | None:
        text = self.redis.hget(self.keys.credentials, key)
        return None if text is None else CredentialRecord.from_json(key, text)

    def record_http_key(self, key: str, digest: str, *, issued_at: float) -> None:
        """Keep the digest of the device's HTTP key; a key issued before is replaced."""
        record = json.dumps({"sha256": digest, "issued_at": issued_at})
        self.redis.hset(self.keys.http_keys, key, record)

    def http_key_digest(self, key: str) -> str | None:
        text = self.redis.hget(self.keys.http_keys, key)
        return None if text is None else str(json.loads(text)["sha256"])

    def revoke_http_key(self, key: str) -> bool:
        return bool(self.redis.hdel(self.keys.http_keys, key))
