"""Every Redis key Yiwang uses, and every read and write of them.

Nothing else in the code base names a key. Keys share a prefix (one deployment, or one test) and
are built by `Keys`. The batch write for ingest is a Redis function (store.lua, beside this
file) so that one call stores a whole batch atomically: fixes with their hash-chain links,
rejections with their reasons, and the other device messages.
"""

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

FIX_STORED, FIX_DUPLICATE, FIX_CONFLICT = 0, 1, 2
_TRACK_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def device(self, dev: str) -> str:
        return f"{self.prefix}:dev:{dev}"

    def track(self, dev: str) -> str:
        return f"{self.prefix}:track:{dev}"

    def seen(self, dev: str) -> str:
        return f"{self.prefix}:seen:{dev}"

    def geo(self, team: str) -> str:
        return f"{self.prefix}:geo:{team}"

    @property
    def seen_at(self) -> str:
        return f"{self.prefix}:seen_at"

    @property
    def registry(self) -> str:
        return f"{self.prefix}:registry"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def rejected_by_device(self) -> str:
        return f"{self.prefix}:rejected_by_device"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}:deadletter"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def inbox(self) -> str:
        return f"{self.prefix}:inbox"

    @property
    def conn(self) -> str:
        return f"{self.prefix}:conn"

    @property
    def devstat(self) -> str:
        return f"{self.prefix}:devstat"

    @property
    def clips(self) -> str:
        return f"{self.prefix}:clips"

    def clips_by_officer(self, officer: str) -> str:
        return f"{self.prefix}:clips_by_officer:{officer}"

    @property
    def broker(self) -> str:
        return f"{self.prefix}:broker"

    @property
    def ingest_status(self) -> str:
        return f"{self.prefix}:ingest_status"

    @property
    def incidents(self) -> str:
        return f"{self.prefix}:incidents"

    @property
    def deadlines(self) -> str:
        return f"{self.prefix}:deadlines"

    @property
    def engine_lease(self) -> str:
        return f"{self.prefix}:engine_lease"

    @property
    def engine_progress(self) -> str:
        return f"{self.prefix}:engine_progress"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"


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
        source = resources.files("dispatch").joinpath("store.lua").read_text()
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


def _binding(device: str, text: str) -> Binding:
    data = json.loads(text)
    return Binding(device, data["officer"], data.get("team", ""), data.get("auto", False))
