"""The ingest's keys: the batch write (a Redis function, store.lua beside this file), device
state for judging the next fix, counters, the broker's own figures and the dead letters.

`IngestStore` is the Redis `devices.sink.IngestSink`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import redis

from devices.quality import Neighbours
from devices.registry import Binding
from devices.sink import DeviceState, IngestBatch, LateFix, StoredAround, memory_from_text
from dispatch.core.sensors import Sensor
from dispatch.core.track import LastFix
from dispatch.store.durability import PRIMARY_ONLY, Durability
from dispatch.store.keys import Keys
from dispatch.store.registry import RegistryStore
from dispatch.store.sensors import SensorStore

UNAVAILABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
# Entries (one per ingest batch with live fixes) the engine's positions stream holds at most:
# what a fail-over or a restart catches up on.
POSITIONS_BOUND = 100_000


class RedisPendingWrite:
    """A batch Redis is storing; the connection is ours until the answer is read (and, when
    replicas must confirm it, their number: WAIT was sent right behind the batch)."""

    def __init__(self, client: redis.Redis, connection: Any, durability: Durability) -> None:
        self._client = client
        self._connection = connection
        self._durability = durability

    def ready(self) -> bool:
        return bool(self._connection.can_read(timeout=0))

    def result(self) -> list[int]:
        try:
            verdicts = list(self._connection.read_response())
            if self._durability.replicas:
                self._durability.confirm(int(self._connection.read_response()))
            return verdicts
        except BaseException:
            # A half-read reply would poison the next command on this connection.
            self._connection.disconnect()
            raise
        finally:
            self._client.connection_pool.release(self._connection)


class IngestStore:
    unavailable = UNAVAILABLE

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        registry: RegistryStore,
        *,
        positions_bound: int = POSITIONS_BOUND,
        durability: Durability = PRIMARY_ONLY,
    ) -> None:
        self.redis = client
        self.durability = durability
        self.keys = keys
        self.registry = registry
        self.sensor_store = SensorStore(client, keys)
        self.positions_bound = positions_bound

    def write_batch(self, batch: IngestBatch, received_at: float) -> list[int]:
        return self.send_batch(batch, received_at).result()

    def send_batch(self, batch: IngestBatch, received_at: float) -> RedisPendingWrite:
        # Each section travels as one MessagePack argument: redis-py's per-argument packing
        # costs far more than msgspec encoding a whole list in one C call.
        encode = msgspec.msgpack.encode
        connection = self.redis.connection_pool.get_connection()
        try:
            connection.send_command(
                "FCALL",
                "ingest",
                0,
                self.keys.prefix,
                f"{received_at:.3f}",
                f"{batch.oldest_received_at:.3f}",
                encode(batch.fixes),
                encode(batch.rejects),
                encode(batch.messages),
                encode(batch.memories),
                self.positions_bound,
                batch.backlog,
                batch.channel,
            )
            if self.durability.replicas:
                # On the same connection: WAIT counts the replicas holding this client's writes.
                connection.send_command(
                    "WAIT", self.durability.replicas, self.durability.timeout_ms
                )
        except BaseException:
            self.redis.connection_pool.release(connection)
            raise
        return RedisPendingWrite(self.redis, connection, self.durability)

    def device_states(self, devices: Sequence[str]) -> dict[str, DeviceState]:
        pipe = self.redis.pipeline(transaction=False)
        for device in devices:
            pipe.hmget(self.keys.device(device), "head", "lon", "lat", "fix_at", "jumps")
        states = {}
        for device, (head, lon, lat, fix_at, jumps) in zip(devices, pipe.execute(), strict=True):
            last = LastFix(float(lon), float(lat), int(fix_at)) if fix_at is not None else None
            states[device] = DeviceState(head or "", last, memory_from_text(jumps))
        return states

    def stored_around(self, late: Sequence[LateFix]) -> list[StoredAround]:
        # The seen index (store.lua) holds every stored fix as "fix_at|lon|lat" scored by fix_at.
        pipe = self.redis.pipeline(transaction=False)
        for fix in late:
            key = self.keys.seen(fix.device)
            pipe.zscore(key, f"{fix.fix_at}|{fix.lon:.7f}|{fix.lat:.7f}")
            pipe.zrevrangebyscore(key, fix.fix_at, "-inf", start=0, num=1)
            pipe.zrangebyscore(key, f"({fix.fix_at}", "+inf", start=0, num=1)
        replies = pipe.execute()
        return [
            StoredAround(
                Neighbours(_seen_fix(replies[3 * n + 1]), _seen_fix(replies[3 * n + 2])),
                stored=replies[3 * n] is not None,
            )
            for n in range(len(late))
        ]

    def bindings(self) -> dict[str, Binding]:
        return self.registry.bindings()

    def bind(self, bindings: Sequence[Binding]) -> None:
        self.registry.bind(bindings)

    def sensors(self) -> dict[str, Sensor]:
        return self.sensor_store.sensors()

    def record_broker_counter(self, name: str, value: str) -> None:
        self.redis.hset(self.keys.broker, name, value)

    def broker_counters(self) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.broker))

    def lag_s(self) -> float | None:
        """Receive-to-stored delay of the newest batch, in seconds."""
        lag = self.redis.hget(self.keys.ingest_status, "lag_s")
        return float(lag) if lag is not None else None

    def backlog(self) -> int | None:
        """Messages the ingest held read but unstored as it sent its newest batch."""
        held = self.redis.hget(self.keys.ingest_status, "backlog")
        return int(held) if held is not None else None

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.stats).items()}

    def accepted_by_channel(self) -> dict[str, int]:
        """Accepted messages by the channel they came in by: `mqtt`, `osmand`, `jt808`, `iot`."""
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.accepted_by_channel).items()}

    def count_channel(self, channel: str, outcome: str) -> None:
        """One request of an intake channel other than MQTT, by what became of it."""
        self.redis.hincrby(self.keys.channel_stats, f"{channel}|{outcome}", 1)

    def channel_stats(self) -> dict[str, dict[str, int]]:
        """Each channel's counts by outcome."""
        counts: dict[str, dict[str, int]] = {}
        for field, value in self.redis.hgetall(self.keys.channel_stats).items():
            channel, _, outcome = field.partition("|")
            counts.setdefault(channel, {})[outcome] = int(value)
        return counts

    def rejected_by_device(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.rejected_by_device).items()}

    def deadletters(self, count: int = 100) -> list[dict[str, str]]:
        return [
            {"id": entry_id, **fields}
            for entry_id, fields in self.redis.xrevrange(self.keys.deadletter, count=count)
        ]


def _seen_fix(members: list[str]) -> LastFix | None:
    if not members:
        return None
    fix_at, lon, lat = members[0].split("|")
    return LastFix(float(lon), float(lat), int(fix_at))
