"""The device registry's keys: which officer and team each device serial is bound to, and the
records of the broker credentials issued to devices."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from devices.registry import Binding, CredentialRecord
from dispatch.store.keys import Keys


class RegistryStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def bindings(self) -> dict[str, Binding]:
        raw = self.redis.hgetall(self.keys.registry)
        return {device: Binding.from_json(device, text) for device, text in raw.items()}

    def bind(self, bindings: Sequence[Binding]) -> None:
        if bindings:
            self.redis.hset(self.keys.registry, mapping={b.device: b.to_json() for b in bindings})

    def unbind(self, device: str) -> bool:
        return bool(self.redis.hdel(self.keys.registry, device))

    def devices_of(self, officer: str) -> list[str]:
        """The serials bound to an officer, sorted."""
        return sorted(b.device for b in self.bindings().values() if b.officer == officer)

    def record_credentials(self, record: CredentialRecord) -> None:
        self.redis.hset(self.keys.credentials, record.device, record.to_json())

    def credentials(self, device: str) -> CredentialRecord | None:
        text = self.redis.hget(self.keys.credentials, device)
        return None if text is None else CredentialRecord.from_json(device, text)
