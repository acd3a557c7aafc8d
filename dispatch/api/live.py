"""The live feed: one WebSocket, a snapshot, then every change in order with its sequence.

The sequence is the id of the entry in the screens' event stream. A client that reconnects
with `?since=<seq>` receives exactly the entries after it, so a dropped connection loses
nothing and repeats nothing; if `since` is older than what the stream still holds, the client
is told to resynchronise and gets a fresh snapshot.

    {"seq": "1795…-0", "type": "snapshot", "incidents": [...], "devices": [...]}
    {"seq": "1795…-1", "type": "positions" | "incident" | "warning" | "escalation" | ..., "body": ...}
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dispatch.core.model import Incident

router = APIRouter(tags=["live"])

_BLOCK_MS = 1000
_BATCH = 500


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def _snapshot(client: aioredis.Redis, keys: Any) -> dict[str, Any]:
    last = await client.xrevrange(keys.events, count=1)
    seq = last[0][0] if last else "0-0"
    incidents = [
        msgspec.json.decode(raw, type=Incident) for raw in await client.hvals(keys.incidents)
    ]
    devices = []
    for dev in await client.zrevrange(keys.seen_at, 0, -1):
        record = await client.hgetall(keys.device(dev))
        if "fix_at" in record:
            devices.append([dev, float(record["lon"]), float(record["lat"]), int(record["fix_at"])])
    return {
        "seq": seq,
        "type": "snapshot",
        "incidents": [msgspec.to_builtins(i) for i in incidents if not i.phase.terminal],
        "devices": devices,
    }


@router.websocket("/ws/live")
async def live(websocket: WebSocket, since: str | None = None, types: str | None = None) -> None:
    """Snapshot then deltas; `since` resumes after a sequence; `types` filters (comma list)."""
    state = websocket.app.state.yiwang
    client: aioredis.Redis = state.live_redis
    keys = state.store.keys
    wanted = set(types.split(",")) if types else None
    await websocket.accept()
    try:
        cursor = since
        if cursor is not None:
            first = await client.xrange(keys.events, count=1)
            if first and _stream_id(cursor) < _stream_id(first[0][0]) and cursor != "0-0":
                await websocket.send_json({"seq": cursor, "type": "resync"})
                cursor = None
        if cursor is None:
            snapshot = await _snapshot(client, keys)
            await websocket.send_json(snapshot)
            cursor = snapshot["seq"]
        while True:
            reply = await client.xread({keys.events: cursor}, count=_BATCH, block=_BLOCK_MS)
            for _stream, entries in reply:
                for entry_id, fields in entries:
                    cursor = entry_id
                    if wanted is None or fields.get("type") in wanted:
                        body = fields.get("body", "null")
                        await websocket.send_text(
                            json.dumps(
                                {
                                    "seq": entry_id,
                                    "type": fields.get("type"),
                                    "body": json.loads(body),
                                }
                            )
                        )
    except WebSocketDisconnect:
        return
