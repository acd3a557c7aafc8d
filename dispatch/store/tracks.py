"""Devices' positions: the last fix and connection report of each device, its chained track
stream, where its sealed archive ends, and the GEO index of officers per team."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from dispatch.core.track import ChainLink, DeviceKey
from dispatch.store.keys import Keys

_TRACK_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    device: str
    record: dict[str, str]  # head, last live fix fields
    connection: dict[str, Any] | None  # last conn or lwt message
    track_length: int
    last_seen_at: float | None


class TrackStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def device_keys(self) -> list[str]:
        """Every device that has sent an accepted message, most recently seen first."""
        return list(self.redis.zrevrange(self.keys.seen_at, 0, -1))

    def device_record(self, device: str) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.device(device)))

    def connection(self, device: str) -> dict[str, Any] | None:
        text = self.redis.hget(self.keys.conn, device)
        return json.loads(text) if text else None

    def device_snapshots(self, devices: Sequence[str]) -> list[DeviceSnapshot]:
        """Last fix, last connection report, track length and last-seen for many devices in
        one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for device in devices:
            pipe.hgetall(self.keys.device(device))
            pipe.hget(self.keys.conn, device)
            pipe.xlen(self.keys.track(device))
            pipe.zscore(self.keys.seen_at, device)
        replies = pipe.execute()
        return [
            DeviceSnapshot(
                device,
                dict(replies[4 * n]),
                json.loads(replies[4 * n + 1]) if replies[4 * n + 1] else None,
                int(replies[4 * n + 2]),
                float(replies[4 * n + 3]) if replies[4 * n + 3] is not None else None,
            )
            for n, device in enumerate(devices)
        ]

    def chain_links(
        self, device: DeviceKey, after: str | None = None
    ) -> Iterator[tuple[str, ChainLink, bool]]:
        """The stored track in storage order, from the entry after stream id `after` (from the
        first without): (stream id, link, backfill flag)."""
        key, start = self.keys.track(device), "-" if after is None else f"({after}"
        while True:
            page = self.redis.xrange(key, min=start, max="+", count=_TRACK_PAGE)
            for entry_id, fields in page:
                link = ChainLink(fields["f"].encode(), fields["r"], fields["h"])
                yield entry_id, link, fields.get("b") == "1"
            if len(page) < _TRACK_PAGE:
                return
            start = "(" + page[-1][0]

    def chain_hash_at(self, device: DeviceKey, stream_id: str) -> str | None:
        """The chain hash of the live track's entry `stream_id`, None when it holds no such entry."""
        entries = self.redis.xrange(self.keys.track(device), min=stream_id, max=stream_id, count=1)
        return str(entries[0][1]["h"]) if entries else None

    def archive_end(self, device: DeviceKey) -> tuple[str, str] | None:
        """(chain head, last stream id) of the device's sealed archive, None before any."""
        end = self.redis.hmget(self.keys.archive(device), ["head", "last_id"])
        return None if end[0] is None else (str(end[0]), str(end[1]))

    def mark_sealed(self, device: DeviceKey, head: str, last_id: str) -> None:
        """Record a sealed segment and drop exactly its entries from the live track, atomically.

        The trim is exact: an approximate one drops whole stream nodes only, leaving sealed
        entries in the live track, where they would be read twice and break its chain."""
        ms, _, seq = last_id.partition("-")
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.archive(device), mapping={"head": head, "last_id": last_id})
            pipe.xtrim(self.keys.track(device), minid=f"{ms}-{int(seq) + 1}", approximate=False)
            pipe.execute()

    def forget_seen_before(self, device: DeviceKey, fix_at: int) -> None:
        """Drop from the device's index of stored fixes (store.lua's `seen`) those before
        `fix_at`: the archive holds them now."""
        self.redis.zremrangebyscore(self.keys.seen(device), "-inf", f"({fix_at}")

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
