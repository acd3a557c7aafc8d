"""Devices, tracks and ingest: the batch write (a Redis function, store.lua beside this file),
device state for judging the next fix, the registry, and the reads behind the device API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
import redis

from devices.quality import LastFix
from dispatch.core.track import ChainLink, DeviceKey
from dispatch.store.keys import Keys

FIX_STORED, FIX_DUPLICATE, FIX_CONFLICT = 0, 1, 2
_TRACK_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What ingest needs to judge and chain a device's next fix."""

    head: str  # "" while the chain is empty
    last: LastFix | None


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    device: str
    record: dict[str, str]  # head, last live fix fields
    connection: dict[str, Any] | None  # last conn or lwt message
    track_length: int
    last_seen_at: float | None


@dataclass(frozen=True, slots=True)
class Binding:
    """A device serial bound to an officer and the officer's team."""

    device: str
    officer: str
    team: str = ""
    auto: bool = False

    def to_json(self) -> str:
        return json.dumps({"officer": self.officer, "team": self.team, "auto": self.auto})


@dataclass(slots=True)
class IngestBatch:
    """Records for one call of the `ingest` function, in arrival order.

    Each section travels as one MessagePack argument: redis-py's per-argument packing costs
    far more than msgspec encoding a whole list in one C call.
    """

    oldest_received_at: float = 0.0
    # Text only: Redis's MessagePack decoder predates the bin type and refuses bytes.
    fixes: list[tuple[str | int, ...]] = field(default_factory=list)
    rejects: list[tuple[str, ...]] = field(default_factory=list)
    messages: list[tuple[str, ...]] = field(default_factory=list)

    def add_fix(
        self,
        dev: str,
        member: str,
        team: str,
        fix_at: int,
        lon: float,
        lat: float,
        canonical: bytes,
        raw_sha256: str,
        chain_hash: str,
        prev_hash: str,
        backfill: bool,
    ) -> None:
        self.fixes.append(
            (
                dev,
                member,
                team or "unassigned",
                fix_at,
                f"{lon:.7f}",
                f"{lat:.7f}",
                canonical.decode(),
                raw_sha256,
                chain_hash,
                prev_hash,
                1 if backfill else 0,
            )
        )

    def add_reject(
        self, dev: str, reason: str, detail: str, topic: str, payload: bytes, payload_sha256: str
    ) -> None:
        text = payload.decode("utf-8", "backslashreplace")
        self.rejects.append((dev, reason, detail, topic, text, payload_sha256))

    def add_message(
        self, kind: str, dev: str, officer: str, topic: str, body: bytes, body_sha256: str
    ) -> None:
        self.messages.append((kind, dev, officer, topic, body.decode(), body_sha256))

    def __len__(self) -> int:
        return len(self.fixes) + len(self.rejects) + len(self.messages)


class PendingWrite:
    """A batch Redis is storing; the connection is ours until the answer is read."""

    def __init__(self, client: redis.Redis, connection: Any) -> None:
        self._client = client
        self._connection = connection

    def ready(self) -> bool:
        """True once the answer has arrived (never blocks)."""
        return bool(self._connection.can_read(timeout=0))

    def result(self) -> list[int]:
        """Wait for the answer: one status per fix, in batch order."""
        try:
            return list(self._connection.read_response())
        except BaseException:
            # A half-read reply would poison the next command on this connection.
            self._connection.disconnect()
            raise
        finally:
            self._client.connection_pool.release(self._connection)


class Store:
    """Synchronous access to one deployment's keys (ingest, CLI, and the REST API's threads)."""

    def __init__(self, client: redis.Redis, prefix: str = "yiwang") -> None:
        self.redis = client
        self.keys = Keys(prefix)

    @classmethod
    def from_url(cls, url: str, prefix: str = "yiwang") -> Store:
        return cls(redis.Redis.from_url(url, decode_responses=True), prefix)

    def load_functions(self) -> None:
        """Install (or replace) the Redis function library; call once at start."""
        source = resources.files("dispatch.store").joinpath("store.lua").read_text()
        self.redis.function_load(source, replace=True)

    # --- ingest -------------------------------------------------------------------------

    def write_batch(self, batch: IngestBatch, received_at: float) -> list[int]:
        """Store a batch; returns FIX_STORED / FIX_DUPLICATE / FIX_CONFLICT per fix."""
        return self.send_batch(batch, received_at).result()

    def send_batch(self, batch: IngestBatch, received_at: float) -> PendingWrite:
        """Send a batch to the `ingest` function and return without waiting for Redis."""
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
            )
        except BaseException:
            self.redis.connection_pool.release(connection)
            raise
        return PendingWrite(self.redis, connection)

    def device_states(self, devices: Sequence[str]) -> dict[str, DeviceState]:
        pipe = self.redis.pipeline(transaction=False)
        for dev in devices:
            pipe.hmget(self.keys.device(dev), "head", "lon", "lat", "fix_at")
        states = {}
        for dev, (head, lon, lat, fix_at) in zip(devices, pipe.execute(), strict=True):
            last = LastFix(float(lon), float(lat), int(fix_at)) if fix_at is not None else None
            states[dev] = DeviceState(head or "", last)
        return states

    def record_broker_counter(self, name: str, value: str) -> None:
        self.redis.hset(self.keys.broker, name, value)

    def ingest_lag_s(self) -> float | None:
        """Receive-to-stored delay of the newest batch, in seconds."""
        lag = self.redis.hget(self.keys.ingest_status, "lag_s")
        return float(lag) if lag is not None else None

    # --- registry -----------------------------------------------------------------------

    def bindings(self) -> dict[str, Binding]:
        raw = self.redis.hgetall(self.keys.registry)
        return {device: _binding(device, text) for device, text in raw.items()}

    def bind(self, bindings: Sequence[Binding]) -> None:
        if bindings:
            self.redis.hset(self.keys.registry, mapping={b.device: b.to_json() for b in bindings})

    def unbind(self, device: str) -> bool:
        return bool(self.redis.hdel(self.keys.registry, device))

    # --- reads --------------------------------------------------------------------------

    def device_keys(self) -> list[str]:
        """Every device that has sent an accepted message, most recently seen first."""
        return list(self.redis.zrevrange(self.keys.seen_at, 0, -1))

    def device_record(self, dev: str) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.device(dev)))

    def connection(self, dev: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.conn, dev)
        return json.loads(text) if text else None

    def device_snapshots(self, devices: Sequence[str]) -> list[DeviceSnapshot]:
        """Last fix, last connection report, track length and last-seen for many devices in
        one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for dev in devices:
            pipe.hgetall(self.keys.device(dev))
            pipe.hget(self.keys.conn, dev)
            pipe.xlen(self.keys.track(dev))
            pipe.zscore(self.keys.seen_at, dev)
        replies = pipe.execute()
        return [
            DeviceSnapshot(
                dev,
                dict(replies[4 * n]),
                json.loads(replies[4 * n + 1]) if replies[4 * n + 1] else None,
                int(replies[4 * n + 2]),
                float(replies[4 * n + 3]) if replies[4 * n + 3] is not None else None,
            )
            for n, dev in enumerate(devices)
        ]

    def chain_links(self, dev: DeviceKey) -> Iterator[tuple[str, ChainLink, bool]]:
        """The stored track in storage order: (stream id, link, backfill flag)."""
        key, start = self.keys.track(dev), "-"
        while True:
            page = self.redis.xrange(key, min=start, max="+", count=_TRACK_PAGE)
            for entry_id, fields in page:
                link = ChainLink(fields["f"].encode(), fields["r"], fields["h"])
                yield entry_id, link, fields.get("b") == "1"
            if len(page) < _TRACK_PAGE:
                return
            start = "(" + page[-1][0]

    def archive_end(self, dev: DeviceKey) -> tuple[str, str] | None:
        """(chain head, last stream id) of the device's sealed archive, None before any."""
        end = self.redis.hmget(self.keys.archive(dev), ["head", "last_id"])
        return None if end[0] is None else (str(end[0]), str(end[1]))

    def mark_sealed(self, dev: DeviceKey, head: str, last_id: str) -> None:
        """Record a sealed segment and drop its entries from the live track, atomically."""
        ms, _, seq = last_id.partition("-")
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.archive(dev), mapping={"head": head, "last_id": last_id})
            pipe.xtrim(self.keys.track(dev), minid=f"{ms}-{int(seq) + 1}")
            pipe.execute()

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.stats).items()}

    def broker_counters(self) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.broker))

    def rejected_by_device(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.rejected_by_device).items()}

    def deadletters(self, count: int = 100) -> list[dict[str, str]]:
        return [
            {"id": entry_id, **fields}
            for entry_id, fields in self.redis.xrevrange(self.keys.deadletter, count=count)
        ]

    def inbox(self, count: int = 100) -> list[dict[str, str]]:
        return [
            {"id": entry_id, **fields}
            for entry_id, fields in self.redis.xrange(self.keys.inbox, count=count)
        ]

    def events(self, count: int = 100) -> list[dict[str, str]]:
        return [
            {"id": entry_id, **fields}
            for entry_id, fields in self.redis.xrevrange(self.keys.events, count=count)
        ]

    def clip(self, clip_id: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.clips, clip_id)
        return json.loads(text) if text else None

    def save_file_track(self, clip_id: str, track: dict[str, Any]) -> None:
        self.redis.hset(self.keys.file_tracks, clip_id, json.dumps(track))

    def file_track(self, clip_id: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.file_tracks, clip_id)
        return None if text is None else json.loads(text)  # type: ignore[no-any-return]

    def clip_ids_for_officer(self, officer: str, start: float, end: float) -> list[str]:
        return list(self.redis.zrangebyscore(self.keys.clips_by_officer(officer), start, end))

    def officers_near(self, team: str, lon: float, lat: float, radius_m: float) -> list[str]:
        found = self.redis.geosearch(
            self.keys.geo(team or "unassigned"),
            longitude=lon,
            latitude=lat,
            radius=radius_m,
            unit="m",
            sort="ASC",
        )
        return list(found)


def _binding(device: str, text: str) -> Binding:
    data = json.loads(text)
    return Binding(device, data["officer"], data.get("team", ""), data.get("auto", False))
