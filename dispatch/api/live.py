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
import time
from collections.abc import Iterator
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dispatch.api.auth import identify, same_origin, scope_of
from dispatch.api.state import AppState
from dispatch.core.access import AreaScope, Permission, Principal
from dispatch.core.feed import FeedType, resume_after
from dispatch.store import ScreenFeed
from gis.coords import LonLat

router = APIRouter(tags=["live"])

_INCIDENT_TYPES = ("incident",)


class Scope:
    """What one screen may see, decided by the server from the caller's account.

    A command-center account sees its area scope: incidents by place, positions by the
    officer's team, alerts and other incident-bound events by their incident, IoT sensors'
    readings and silence by the sensor's place. An officer
    account sees its own orders and its own devices. The query may only narrow this: `types`
    (a comma list), `area` (an area inside the account's scope).
    """

    def __init__(self, types: str | None, officer: str | None, area: AreaScope) -> None:
        self.types = set(types.split(",")) if types else None
        self.officer = officer
        self.area = area
        self.incidents: set[str] = set()

    @property
    def scoped(self) -> bool:
        return self.officer is not None or not self.area.whole_center

    def incident(self, body: dict[str, Any]) -> bool:
        order = body.get("order") or {}
        mine = self.officer is None or self.officer in order.get("officers", [])
        if mine and self.area.covers_point(LonLat(*body["location"])):
            self.incidents.add(body["id"])
        # Once shown, an incident's later updates follow: an officer learns that an order was
        # withdrawn from them.
        return body["id"] in self.incidents

    def positions(self, rows: list[list[Any]]) -> list[list[Any]]:
        return [row for row in rows if self._owner_visible(row[0].split("/", 1)[0])]

    def _owner_visible(self, owner: str) -> bool:
        if self.officer is not None:
            return owner == self.officer
        return self.area.covers_officer(owner)

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
        if kind == FeedType.PATROL_SHORTFALL:
            team = self.area.roster.teams.get(body["team"]) if self.area.roster else None
            visible = self.officer is None and team is not None and self.area.covers_team(team)
            return body if visible else None
        if kind in (FeedType.SENSOR_SILENT, FeedType.IOT):
            place = (
                body["location"] if kind == FeedType.SENSOR_SILENT else (body["lon"], body["lat"])
            )
            visible = self.officer is None and self.area.covers_point(LonLat(*place))
            return body if visible else None
        if isinstance(body, dict) and "incident" in body:
            return body if body["incident"] in self.incidents else None
        return None


def screen_scope(
    principal: Principal, state: AppState, types: str | None, area: str | None
) -> Scope:
    """The scope of a screen of `principal`; ValueError if the query asks for more."""
    if principal.may(Permission.WATCH_LIVE):
        return Scope(types, None, scope_of(principal, state).narrowed(area))
    if principal.may(Permission.ANSWER_OWN_ORDERS) and principal.officer is not None:
        return Scope(types, principal.officer, AreaScope(None, None, None))
    raise ValueError(f"role {principal.role.value} has no live feed")


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


_RECHECK_S = 2.0  # a disabled account or a revoked session loses its feed within this


@router.websocket("/ws/live")
async def live(
    websocket: WebSocket,
    since: str | None = None,
    types: str | None = None,
    area: str | None = None,
) -> None:
    """Snapshot then deltas; `since` resumes after a sequence. The server scopes the feed by
    the caller's account; `types` (comma list) and `area` (inside the account's scope) narrow
    it. Needs a session from our own origin, or a bearer token."""
    state: AppState = websocket.app.state.yiwang
    feed: ScreenFeed = state.feed
    principal = await asyncio.to_thread(identify, websocket, state)
    cookie_borne = principal is not None and principal.credential.startswith("session:")
    if principal is None or (cookie_borne and not same_origin(websocket)):
        # Refused before the upgrade: the browser sees the handshake fail (403).
        await websocket.close(code=1008)
        return
    try:
        scope = screen_scope(principal, state, types, area)
    except ValueError as exc:
        await websocket.accept()
        await websocket.close(code=1008, reason=str(exc))
        return
    await websocket.accept()
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
        checked = time.monotonic()
        while not closed.done():
            if time.monotonic() - checked >= _RECHECK_S:
                checked = time.monotonic()
                if not await asyncio.to_thread(state.identity.still_valid, principal):
                    await websocket.close(code=1008, reason="the session has ended; log in again")
                    return
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
