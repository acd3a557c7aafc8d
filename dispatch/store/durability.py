"""How many replicas must hold a write before it counts as stored.

Redis replicates asynchronously: a primary that dies loses whatever its replicas had not yet
received. A writer that tells someone "stored" (the ingest acknowledging a device's fix over
MQTT, the engine settling a deadline) first asks the primary to `WAIT` until `replicas` of
them hold its writes. When they do not within `timeout_ms`, the write happened on the primary
but is treated as not stored: the writer retries, and the duplicate checks catch the copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis


class NotReplicated(redis.ConnectionError):
    """Fewer replicas than required confirmed a write in time. A connection error on purpose:
    every writer already handles losing Redis by retrying what was not confirmed."""


@dataclass(frozen=True)
class Durability:
    replicas: int = 0
    timeout_ms: int = 2_000

    def confirm(self, acknowledged: int) -> None:
        """Raise `NotReplicated` unless `acknowledged` (WAIT's answer) is enough."""
        if acknowledged < self.replicas:
            raise NotReplicated(
                f"{acknowledged} of {self.replicas} Redis replicas confirmed the write within "
                f"{self.timeout_ms} ms; check the replicas (INFO replication on the primary)"
            )


# A single Redis, or a deployment that accepts losing the last writes with its primary.
PRIMARY_ONLY = Durability(0)
