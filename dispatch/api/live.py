"""The live feed: one WebSocket, a snapshot, then every change in order with its sequence.

The sequence is the id of the entry in the screens' event stream. A client that reconnects
with `?since=<seq>` receives exactly the entries after it, so a dropped connection loses
nothing and repeats nothing; if `since` is older than what the stream still holds, the client
is told to resynchronise and gets a fresh snapshot; so is a screen that fell so far behind
that the stream dropped what it had not read yet.

Each screen reads the stream at its own pace and has one message in flight at a time: a send
that does not complete within `live_send_timeout_s` drops the screen (close 1013, telling it
the `since` to resume from), so a stalled client never holds up another. Connections are
bounded per client address and in all (`live_max_connections…`); a refusal says why.

    {"seq": "1795…-0", "type": "snapshot", "incidents": [...], "devices": [...], "alerts": [...]}
    {"seq": "1795…-1", "type": "positions" | "incident" | "warning" | "escalation" | ..., "body": ...}

With `?positions=binary` each positions update comes instead as a binary message: a positions
frame (dispatch.core.position_frames), whose device names are numbered per connection, so a
big city's updates cost the page a few typed-array passes rather than a JSON parse of an
array per officer. Everything else stays JSON text. `json` is the default.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dispatch.api.auth import identify, same_origin, scope_of
from dispatch.api.connections import TRY_AGAIN_LATER
from dispatch.api.state import AppState
from dispatch.core.access import AreaScope, Permission, Principal
from dispatch.core.alerts import Alert, alert_from_record, in_scope, kept
from dispatch.core.feed import FeedType, incident_body, resume_after
from dispatch.core.position_frames import PositionFrames
from dispatch.store import UNAVAILABLE, ScreenFeed
from gis.coords import LonLat

router = APIRouter(tags=["live"])

_INCIDENT_TYPES = ("incident",)
_ALERT_TYPES = (FeedType.ALERT, FeedType.ALERT_ACK)
_POSITIONS_FORMATS = ("json", "binary")


class Scope:
    """What one screen may see, decided by the server from the caller's account.

    A command-center account sees its area scope: incidents by place, positions by the
    officer's team, alerts and other incident-bound events by their incident, IoT sensors'
    readings and silence by the sensor's place, acknowledgeable alerts by their place or team. An officer
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

    def alert(self, alert: Alert) -> bool:
        """An officer sees the alerts of incidents shown to them; an area scope those placed in
        it (dispatch.core.alerts.in_scope)."""
        if self.officer is not None:
            return alert.incident is not None and alert.incident in self.incidents
        return in_scope(alert, self.area)

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
        if kind in _ALERT_TYPES:
            return body if self.alert(alert_from_record(body)) else None
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


def _alerts(records: list[dict[str, Any]], scope: Scope, now: float) -> list[dict[str, Any]]:
    """The alerts a screen starts with: those kept (dispatch.core.alerts.kept) it may see,
    newest first, as stored. Call after the snapshot's incidents went through the scope."""
    by_id = {r["id"]: r for r in records}
    shown = kept((alert_from_record(r) for r in records), now)
    return [by_id[a.id] for a in shown if not scope.scoped or scope.alert(a)]


async def _snapshot(feed: ScreenFeed, scope: Scope, now: float) -> tuple[str, str]:
    """The snapshot as this screen sees it at `now`, and its sequence."""
    snapshot = await feed.snapshot()
    shown = [i for i in snapshot.incidents if not i.phase.terminal]
    if not scope.scoped:
        # Encoded straight from the stored structures: a storm of whole-city screens costs
        # the event loop little beside the one shared read.
        text = msgspec.json.encode(
            {
                "seq": snapshot.seq,
                "type": FeedType.SNAPSHOT,
                "incidents": [incident_body(i) for i in shown],
                "devices": snapshot.devices,
                "alerts": _alerts(snapshot.alerts, scope, now),
            }
        ).decode()
        return text, snapshot.seq
    incidents = [incident_body(i) for i in shown]
    devices = [msgspec.to_builtins(row) for row in snapshot.devices]
    body = {
        "seq": snapshot.seq,
        "type": FeedType.SNAPSHOT,
        "incidents": [i for i in incidents if scope.incident(i)],
        "devices": scope.positions(devices),
        "alerts": _alerts(snapshot.alerts, scope, now),
    }
    return json.dumps(body), snapshot.seq


_RECHECK_S = 2.0  # a disabled account or a revoked session loses its feed within this
_CLOSE_TIMEOUT_S = 1.0  # a client too stalled to take the close frame is cut off after this


class _SendTimeoutError(Exception):
    """A send to the screen did not complete in time."""


@router.websocket("/ws/live")
async def live(
    websocket: WebSocket,
    since: str | None = None,
    types: str | None = None,
    area: str | None = None,
    positions: str = "json",
) -> None:
    """Snapshot then deltas; `since` resumes after a sequence. The server scopes the feed by
    the caller's account; `types` (comma list) and `area` (inside the account's scope) narrow
    it; `positions` is `json` or `binary` (frames). Needs a session from our own origin, or a
    bearer token."""
    state: AppState = websocket.app.state.yiwang
    address = websocket.client.host if websocket.client else "unknown"
    refusal = state.live_limits.admit(address)
    if refusal is not None:
        await websocket.accept()
        await websocket.close(code=TRY_AGAIN_LATER, reason=refusal)
        return
    try:
        await _serve(websocket, state, since, types, area, positions)
    finally:
        state.live_limits.release(address)


async def _serve(
    websocket: WebSocket,
    state: AppState,
    since: str | None,
    types: str | None,
    area: str | None,
    positions: str,
) -> None:
    feed: ScreenFeed = state.feed
    timeout_s = state.settings.live_send_timeout_s
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
    if positions not in _POSITIONS_FORMATS:
        await websocket.close(
            code=1008, reason=f"positions={positions[:40]!r} is not one of json, binary"
        )
        return
    # One per connection: the frames it encodes refer to names it sent earlier on this one.
    frames = PositionFrames() if positions == "binary" else None
    # The feed only sends; this task notices a client (or a server shutting down) that closed
    # the connection, which a quiet feed would otherwise never find out.
    closed = asyncio.ensure_future(_until_closed(websocket))
    cursor = since
    try:
        cursor = resume_after(since, await feed.oldest_id() if since is not None else None)
        if since is not None and cursor is None:
            await _send(websocket, json.dumps({"seq": since, "type": FeedType.RESYNC}), timeout_s)
        checked = time.monotonic()
        while not closed.done():
            if cursor is None:
                text, seq = await _snapshot(feed, scope, state.clock())
                await _send(websocket, text, timeout_s)
                cursor = seq
            if time.monotonic() - checked >= _RECHECK_S:
                checked = time.monotonic()
                if not await asyncio.to_thread(state.identity.still_valid, principal):
                    await websocket.close(code=1008, reason="the session has ended; log in again")
                    return
            entries = await feed.read_after(cursor, count=_BATCH, block_ms=_BLOCK_MS)
            if len(entries) == _BATCH and resume_after(cursor, await feed.oldest_id()) is None:
                # Behind by more than the stream holds: what it missed is gone, start afresh.
                await _send(
                    websocket, json.dumps({"seq": cursor, "type": FeedType.RESYNC}), timeout_s
                )
                cursor = None
                continue
            for entry_id, kind, raw in _coalesced(entries):
                shown = (
                    _screen_frame(scope, frames, entry_id, raw)
                    if frames is not None and kind == FeedType.POSITIONS
                    else _screen_text(scope, entry_id, kind, raw)
                )
                if shown is not None:
                    await _send(websocket, shown, timeout_s)
                # Past an entry once the screen has it (or never sees it): a screen dropped
                # mid-send resumes with the entry it did not get.
                cursor = entry_id
    except WebSocketDisconnect:
        return
    except _SendTimeoutError:
        await _close_to_resume(websocket, cursor, "fell behind the live feed")
    except UNAVAILABLE:
        # Redis lost, or failing over to its replica: the screen comes back where it was.
        await _close_to_resume(websocket, cursor, "the store is unavailable")
    finally:
        closed.cancel()


def _screen_text(scope: Scope, entry_id: str, kind: str, raw: str) -> str | None:
    """The message for this screen of one stream entry, or None if it does not see it."""
    if scope.types is not None and kind not in scope.types:
        return None
    if not scope.scoped:
        # Whole-city screens get the stored body as it is: no decode, no encode.
        return f'{{"seq":"{entry_id}","type":{json.dumps(kind)},"body":{raw}}}'
    body = scope.view(kind, json.loads(raw))
    if body is None:
        return None
    return json.dumps({"seq": entry_id, "type": kind, "body": body})


def _screen_frame(scope: Scope, frames: PositionFrames, entry_id: str, raw: str) -> bytes | None:
    """The positions frame for this screen of one positions entry, or None if it sees none."""
    if scope.types is not None and FeedType.POSITIONS not in scope.types:
        return None
    rows = msgspec.json.decode(raw)
    if scope.scoped:
        rows = scope.positions(rows)
        if not rows:
            return None
    return frames.encode(entry_id, rows)


async def _close_to_resume(websocket: WebSocket, cursor: str | None, why: str) -> None:
    """Close with "try again later", saying where to resume."""
    resume = f" with since={cursor}" if cursor else ""
    # The client may be gone or too stalled to take even the close frame.
    with contextlib.suppress(TimeoutError, OSError, RuntimeError, WebSocketDisconnect):
        await asyncio.wait_for(
            websocket.close(code=TRY_AGAIN_LATER, reason=f"{why}; reconnect{resume}"),
            _CLOSE_TIMEOUT_S,
        )


async def _send(websocket: WebSocket, message: str | bytes, timeout_s: float) -> None:
    sent = (
        websocket.send_bytes(message)
        if isinstance(message, bytes)
        else websocket.send_text(message)
    )
    try:
        await asyncio.wait_for(sent, timeout_s)
    except TimeoutError as exc:
        raise _SendTimeoutError from exc


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
