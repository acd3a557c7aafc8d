"""The screens' event stream, and the engine's durable stream of live positions.

Ingest appends positions and device messages (store.lua), the engine appends incidents and
alerts (its step); `ScreenFeed` is how the WebSocket reads them without blocking a thread, and
`PositionFeed` how the engine reads every live fix through its own consumer group, so a new
leader re-reads what the last one never settled.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

from dispatch.core.feed import POSITION_ROWS, PositionRow
from dispatch.core.model import Incident
from dispatch.store.connect import connect_async
from dispatch.store.keys import Keys

POSITIONS_GROUP = "engine"
_POSITIONS_CONSUMER = "leader"
_INCIDENT = msgspec.json.Decoder(Incident)


class _LiveFix(msgspec.Struct):
    """What a position row takes from a device's stored fix beside where it is."""

    acc_m: float | None = None
    cog_deg: float | None = None


_LIVE_FIX = msgspec.json.Decoder(_LiveFix)

# Every heard device's live position in one round trip: reading a hash per device from the
# client, even pipelined, spent 118 ms at 4,000 devices and 562 ms at 20,000 packing and
# parsing a command each (this script: 21 and 125 ms). Five values per device with a fix:
# device, last heard (server clock), lon, lat, fix_at, then its stored fix ('' if none).
_DEVICE_ROWS = """
local heard = redis.call('ZREVRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local rows = {}
for i = 1, #heard, 2 do
  local dev = heard[i]
  local live = redis.call('HMGET', ARGV[1] .. dev, 'lon', 'lat', 'fix_at', 'fix')
  if live[3] then
    rows[#rows + 1] = dev
    rows[#rows + 1] = heard[i + 1]
    rows[#rows + 1] = live[1]
    rows[#rows + 1] = live[2]
    rows[#rows + 1] = live[3]
    rows[#rows + 1] = live[4] or ''
  end
end
return rows
"""
_ROW_WIDTH = 6


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a screen starts from, and the sequence the deltas follow."""

    seq: str
    incidents: list[Incident]
    devices: list[PositionRow]
    alerts: list[dict[str, Any]]  # every alert held, as stored (dispatch.core.alerts records)


class ScreenFeed:
    """Asynchronous reads of the screens' stream for the live WebSocket."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._device_rows = client.register_script(_DEVICE_ROWS)
        self._reading: asyncio.Future[Snapshot] | None = None
        self.snapshot_reads = 0  # reads of Redis, however many screens shared each

    @classmethod
    def from_url(cls, url: str, keys: Keys) -> ScreenFeed:
        return cls(connect_async(url), keys)

    async def close(self) -> None:
        await self.redis.aclose()

    async def oldest_id(self) -> str | None:
        first = await self.redis.xrange(self.keys.events, count=1)
        return str(first[0][0]) if first else None

    async def snapshot(self) -> Snapshot:
        """Open incidents, every device's live position and the alerts held. Screens asking at once share one
        read: fifty connecting together cost Redis and this process one snapshot, not fifty."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_snapshot())
            self._reading.add_done_callback(self._read_done)
        # Shielded: one screen that goes away mid-read does not cancel the others' snapshot.
        return await asyncio.shield(self._reading)

    def _read_done(self, _reading: asyncio.Future[Snapshot]) -> None:
        # The next screen to ask reads afresh; a failed read is not kept either.
        self._reading = None

    async def _read_snapshot(self) -> Snapshot:
        self.snapshot_reads += 1
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrevrange(self.keys.events, count=1)
        pipe.hvals(self.keys.incidents)
        pipe.hvals(self.keys.alerts)
        last, raw_incidents, raw_alerts = await pipe.execute()
        flat = await self._device_rows(keys=[self.keys.seen_at], args=[self.keys.device("")])
        # `received_at` is when the center last heard the device, by its own clock: screens
        # judge presence by it, never by the device's clock.
        rows = [
            _row(device, float(lon), float(lat), int(fix_at), fix or None, float(heard_at))
            for device, heard_at, lon, lat, fix_at, fix in _chunks(flat, _ROW_WIDTH)
        ]
        incidents = [_INCIDENT.decode(raw) for raw in raw_incidents]
        alerts = [json.loads(raw) for raw in raw_alerts]
        return Snapshot(last[0][0] if last else "0-0", incidents, rows, alerts)

    async def read_after(
        self, cursor: str, count: int, block_ms: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries after `cursor`, waiting up to `block_ms` for the first."""
        reply = await self.redis.xread({self.keys.events: cursor}, count=count, block=block_ms)
        return [entry for _stream, entries in reply for entry in entries]


def _chunks(flat: list[str], width: int) -> list[list[str]]:
    return [flat[k : k + width] for k in range(0, len(flat), width)]


def _row(
    device: str, lon: float, lat: float, fix_at: int, fix: str | None, heard_at: float
) -> PositionRow:
    """A device's live position as the positions entries carry it: with the accuracy and
    course stored with its fix."""
    live = _LIVE_FIX.decode(fix) if fix else _LiveFix()
    return PositionRow(device, lon, lat, fix_at, live.acc_m, live.cog_deg, heard_at)


class PositionFeed:
    """The engine's reads of live positions; each read is settled by the step that used it."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def ensure_group(self) -> None:
        # From now on: positions older than the engine's first start are history.
        ensure_group(self.redis, self.keys.positions, POSITIONS_GROUP, start="$")

    def read(self, count: int, *, unsettled: bool = False) -> tuple[list[str], list[PositionRow]]:
        """New entries (or, with `unsettled`, those a previous leader read and never settled);
        never waits: the engine waits on its inbox. Returns the entry ids and their rows."""
        start = "0" if unsettled else ">"
        reply = self.redis.xreadgroup(
            POSITIONS_GROUP, _POSITIONS_CONSUMER, {self.keys.positions: start}, count=count
        )
        entries = reply[0][1] if reply else []
        # An unsettled entry the stream has since trimmed comes back without fields.
        rows = [
            row for _, fields in entries if fields for row in POSITION_ROWS.decode(fields["body"])
        ]
        return [entry_id for entry_id, _ in entries], rows


def ensure_group(client: redis.Redis, stream: str, group: str, *, start: str = "0") -> None:
    """Create a consumer group reading `stream` from `start`, unless it exists already."""
    try:
        client.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
