"""The live feed: one WebSocket, a snapshot, then every change in order with its sequence.

The sequence is the id of the entry in the screens' event stream. A client that reconnects
with `?since=<seq>` receives exactly the entries after it, so a dropped connection loses
nothing and repeats nothing; if `since` is older than what the stream still holds, the client
is told to resynchronise and gets a fresh snapshot.

    {"seq": "1795…-0", "type": "snapshot", "incidents": [...], "devices": [...]}
    {"seq": "1795…-1", "type": "positions" | "incident" | "warning" | "escalation" | ..., "body": ...}
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dispatch.city import City
from dispatch.core.feed import FeedType, resume_after
from dispatch.store import ScreenFeed
from gis.coords import LonLat

router = APIRouter(tags=["live"])

_INCIDENT_TYPES = ("incident",)


class Scope:
    """What one screen may see: event types, one officer's own work, or one area.

    Incidents are in scope by their order (officer) or their place (area); alerts and other
    incident-bound events follow their incident; positions by device owner or place.
    """

    def __init__(
        self, types: str | None, officer: str | None, area: str | None, city: City | None
    ) -> None:
        if area is not None and city is None:
            raise ValueError("area scopes need a configured city (YIWANG_AREAS_FILE)")
        self.types = set(types.split(",")) if types else None
        self.officer = officer
        self.area = area
        self.city = city
        self.incidents: set[str] = set()

    @property
    def scoped(self) -> bool:
        return self.officer is not None or self.area is not None

    def _in_area(self, lon: float, lat: float) -> bool:
        assert self.city is not None and self.area is not None
        found = self.city.areas.area_for(LonLat(lon, lat))
        if found is None:
            return False
        return found.id == self.area or any(
            a.id == self.area for a in self.city.areas.ancestors(found.id)
        )

    def incident(self, body: dict[str, Any]) -> bool:
        order = body.get("order") or {}
        mine = self.officer is None or self.officer in order.get("officers", [])
        here = self.area is None or self._in_area(*body["location"])
        if mine and here:
            self.incidents.add(body["id"])
        return body["id"] in self.incidents

    def positions(self, rows: list[list[Any]]) -> list[list[Any]]:
        return [
            row
            for row in rows
            if (self.officer is None or row[0].split("/", 1)[0] == self.officer)
            and (self.area is None or self._in_area(row[1], row[2]))
        ]

    def view(self, kind: str, body: Any) -> Any | None:
        """The event as this screen sees it, or None to leave it out."""
        if self.types is not None and kind not in self.types:
            return None
        if not self.scoped:
            return body
        if kind in _INCIDENT_TYPES:
            return body if self.incident(body) else None
        if kind == "positions":
            return self.positions(body) or None
        if isinstance(body, dict) and "incident" in body:
            return body if body["incident"] in self.incidents else None
        return None


_BLOCK_MS = 1000
_BATCH = 500


async def _snapshot(feed: ScreenFeed, scope: Scope) -> dict[str, Any]:
    snapshot = await feed.snapshot()
    shown = [msgspec.to_builtins(i) for i in snapshot.incidents if not i.phase.terminal]
    devices = [msgspec.to_builtins(row) for row in snapshot.devices]
    return {
        "seq": snapshot.seq,
        "type": FeedType.SNAPSHOT,
        "incidents": [i for i in shown if not scope.scoped or scope.incident(i)],
        "devices": scope.positions(devices) if scope.scoped else devices,
    }


@router.websocket("/ws/live")
async def live(
    websocket: WebSocket,
    since: str | None = None,
    types: str | None = None,
    officer: str | None = None,
    area: str | None = None,
) -> None:
    """Snapshot then deltas; `since` resumes after a sequence. Scopes: `types` (comma list),
    `officer` (an officer's own orders and positions: the officer page), `area` (an area and
    everything inside it)."""
    state = websocket.app.state.yiwang
    feed: ScreenFeed = state.feed
    await websocket.accept()
    try:
        scope = Scope(types, officer, area, state.city)
    except ValueError as exc:
        await websocket.close(code=1008, reason=str(exc))
        return
    # The feed only sends; this task notices a client (or a server shutting down) that closed
    # the connection, which a quiet feed would otherwise never find out.
    closed = asyncio.ensure_future(_until_closed(websocket))
    try:
        cursor = resume_after(since, await feed.oldest_id() if since is not None else None)
        if since is not None and cursor is None:
            await websocket.send_json({"seq": since, "type": FeedType.RESYNC})
        if cursor is None:
            snapshot = await _snapshot(feed, scope)
            await websocket.send_json(snapshot)
            cursor = snapshot["seq"]
        while not closed.done():
            entries = await feed.read_after(cursor, count=_BATCH, block_ms=_BLOCK_MS)
            for entry_id, kind, raw in _coalesced(entries):
                cursor = entry_id
                if scope.types is not None and kind not in scope.types:
                    continue
                if not scope.scoped:
                    # Whole-city screens get the stored body as it is: no decode, no encode.
                    text = f'{{"seq":"{entry_id}","type":{json.dumps(kind)},"body":{raw}}}'
                else:
                    body = scope.view(kind, json.loads(raw))
                    if body is None:
                        continue
                    text = json.dumps({"seq": entry_id, "type": kind, "body": body})
                await websocket.send_text(text)
    except WebSocketDisconnect:
        return
    finally:
        closed.cancel()


def _coalesced(entries: list[tuple[str, dict[str, str]]]) -> Iterator[tuple[str, str, str]]:
    """(seq, type, body) of each entry, with runs of positions updates merged into one.

    A screen that fell behind (a slow browser, a busy link) gets one update with each device's
    newest position instead of every stale one in turn, and so catches up; incidents, alerts
    and every other event still come one by one, in order. The merged update carries the
    sequence of the last entry it covers, so a resume starts after it.
    """
    for is_positions, group in itertools.groupby(
        entries, lambda e: e[1].get("type") == "positions"
    ):
        run = list(group)
        if not is_positions or len(run) == 1:
            for entry_id, fields in run:
                yield entry_id, fields.get("type", ""), fields.get("body", "null")
            continue
        newest: dict[str, list[Any]] = {}
        for _entry_id, fields in run:
            for row in json.loads(fields["body"]):
                newest[row[0]] = row
        yield run[-1][0], "positions", json.dumps(list(newest.values()))


async def _until_closed(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
