"""Every Redis key Yiwang uses, and every read and write of them.

Nothing outside this package names a key or imports redis: keys share a prefix (one
deployment, or one test) and are built by `Keys`. `Store` holds one connection pool and a
store per concern over it — ingest, registry, tracks, clips, incidents (the engine's keys),
the position feed, the hotline's work orders, JT/T 808 terminals, citizens' reports, IoT
sensors, alerts and the ingest workers' registrations — each returning typed values.
"""

from __future__ import annotations

import logging
from importlib import resources

import redis

from devices.presence import Presence
from dispatch.core.roster import OfficerId
from dispatch.store.alerts import AlertStore, UnknownAlertError
from dispatch.store.citizen import CitizenStore
from dispatch.store.clips import ClipStore
from dispatch.store.connect import RedisUrlError, connect, connect_async, without_password
from dispatch.store.durability import PRIMARY_ONLY, Durability, NotReplicated
from dispatch.store.feed import PositionFeed, ScreenFeed, Snapshot
from dispatch.store.hotline import HotlineStore
from dispatch.store.incidents import IncidentStore, decode_incident
from dispatch.store.ingest import UNAVAILABLE, IngestStore
from dispatch.store.keys import Keys
from dispatch.store.members import MemberStore
from dispatch.store.presence import newest_fix, officer_positions
from dispatch.store.registry import RegistryStore
from dispatch.store.sensors import SensorStore
from dispatch.store.sessions import SessionStore
from dispatch.store.terminals import TerminalStore
from dispatch.store.tracks import DeviceSnapshot, TrackStore
from gis.coords import LonLat

log = logging.getLogger(__name__)


class Store:
    """One deployment's keys, for one thread (each worker builds its own)."""

    def __init__(
        self, client: redis.Redis, prefix: str = "yiwang", durability: Durability = PRIMARY_ONLY
    ) -> None:
        self.redis = client
        self.keys = Keys(prefix)
        self.registry = RegistryStore(client, self.keys)
        self.sensors = SensorStore(client, self.keys)
        self.ingest = IngestStore(client, self.keys, self.registry, durability=durability)
        self.tracks = TrackStore(client, self.keys)
        self.clips = ClipStore(client, self.keys)
        self.incidents = IncidentStore(client, self.keys, durability=durability)
        self.positions = PositionFeed(client, self.keys)
        self.sessions = SessionStore(client, self.keys)
        self.hotline = HotlineStore(client, self.keys)
        self.terminals = TerminalStore(client, self.keys)
        self.citizen = CitizenStore(client, self.keys)
        self.alerts = AlertStore(client, self.keys)
        self.members = MemberStore(client, self.keys)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "yiwang", durability: Durability = PRIMARY_ONLY
    ) -> Store:
        """A store over the Redis `url` names (see `connect`); the ingest's batches and the
        engine's steps count as stored once `durability`'s replicas hold them."""
        return cls(connect(url), prefix, durability)

    def load_functions(self) -> None:
        """Install (or replace) the Redis function library; call once at start."""
        source = resources.files("dispatch.store").joinpath("store.lua").read_text()
        self.redis.function_load(source, replace=True)

    def upgrade(self) -> None:
        """Install the function library and bring stored data up to this version (devices
        registered by serial alone become pairs); idempotent, call once at start."""
        self.load_functions()
        moved = self.registry.upgrade()
        if moved:
            log.info("registry upgraded: serial_registrations_made_pairs=%d", moved)

    def officer_positions(
        self, *, now: float, stale_after_s: float, offline_after_s: float
    ) -> dict[OfficerId, tuple[Presence, LonLat]]:
        """Each officer's best presence across their devices, and where that device is."""
        return officer_positions(
            self.registry,
            self.tracks,
            now=now,
            stale_after_s=stale_after_s,
            offline_after_s=offline_after_s,
        )

    def newest_fix(self, officer: OfficerId) -> tuple[LonLat, float] | None:
        """The officer's newest live fix across their devices, and its time (`fix_at`)."""
        return newest_fix(self.registry, self.tracks, officer)

    def ping(self) -> bool:
        """Whether Redis answers; never raises."""
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def recent_events(self, count: int = 100) -> list[dict[str, str]]:
        """The newest entries of the screens' stream, newest first (for inspection and tests)."""
        return [
            {"id": entry_id, **fields}
            for entry_id, fields in self.redis.xrevrange(self.keys.events, count=count)
        ]

    def close(self) -> None:
        self.redis.close()


__all__ = [
    "PRIMARY_ONLY",
    "UNAVAILABLE",
    "AlertStore",
    "CitizenStore",
    "ClipStore",
    "DeviceSnapshot",
    "Durability",
    "HotlineStore",
    "IncidentStore",
    "IngestStore",
    "Keys",
    "NotReplicated",
    "PositionFeed",
    "RedisUrlError",
    "RegistryStore",
    "ScreenFeed",
    "SensorStore",
    "SessionStore",
    "Snapshot",
    "Store",
    "TerminalStore",
    "TrackStore",
    "UnknownAlertError",
    "connect",
    "connect_async",
    "decode_incident",
    "without_password",
]
