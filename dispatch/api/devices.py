"""Devices: last position and presence, tracks as GeoJSON, and ingest statistics."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from devices.membership import Member
from devices.presence import presence
from dispatch.api.auth import refuse, require, scope_of
from dispatch.api.state import AppState, app_state
from dispatch.api.times import local_iso, parse_time
from dispatch.core.access import Permission, Principal
from dispatch.core.track import DeviceKey, device_key
from dispatch.evidence.archive import full_track
from dispatch.store import DeviceSnapshot

router = APIRouter(tags=["devices"])

Watcher = Annotated[Principal, Depends(require(Permission.WATCH_LIVE))]
TrackReader = Annotated[Principal, Depends(require(Permission.READ_TRACKS))]
DeviceAdmin = Annotated[Principal, Depends(require(Permission.MANAGE_DEVICES))]

_DEFAULT_TRACK_WINDOW_S = 6 * 3600
_MAX_TRACK_WINDOW_S = 7 * 86400
_MAX_TRACK_POINTS = 50_000
_MOST_REJECTED = 20


def _device_view(state: AppState, snapshot: DeviceSnapshot, now: float) -> dict[str, Any]:
    record = snapshot.record
    user, device = snapshot.device.split("/", 1)
    zone = state.settings.timezone
    status = presence(
        snapshot.last_seen_at,
        snapshot.connection,
        now=now,
        stale_after_s=state.settings.stale_after_s,
        offline_after_s=state.settings.offline_after_s,
    )
    view: dict[str, Any] = {
        "user": user,
        "device": device,
        "status": status.value,
        "last_seen_at": snapshot.last_seen_at,
        "fixes_stored": snapshot.track_length,
    }
    if "fix_at" in record:
        tst = int(record["fix_at"])
        fix = json.loads(record["fix"])
        view |= {
            "lon": float(record["lon"]),
            "lat": float(record["lat"]),
            "tst": tst,
            "time": local_iso(tst, zone),
            "received_at": fix["received_at"],
            "fix": fix,
        }
    return view


@router.get("/api/devices")
def list_devices(request: Request, caller: Watcher) -> list[dict[str, Any]]:
    """Every device in the caller's scope heard from, most recently seen first, with presence
    and last fix."""
    state = app_state(request)
    now = state.clock()
    scope = scope_of(caller, state)
    keys = [k for k in state.store.tracks.device_keys() if scope.covers_officer(k.split("/")[0])]
    return [_device_view(state, s, now) for s in state.store.tracks.device_snapshots(keys)]


def _check_device_scope(state: AppState, caller: Principal, user: str, what: str) -> None:
    if not scope_of(caller, state).covers_officer(user):
        raise refuse(state, caller, what, f"officer {user} is outside your area scope")


@router.get("/api/devices/{user}/{device}")
def get_device(user: str, device: str, request: Request, caller: Watcher) -> dict[str, Any]:
    """The device's last live fix (WGS-84, tst UTC epoch s), receive time and presence."""
    state = app_state(request)
    _check_device_scope(state, caller, user, f"device {user}/{device}")
    (snapshot,) = state.store.tracks.device_snapshots([device_key(user, device)])
    if snapshot.last_seen_at is None:
        raise HTTPException(404, f"no message has been accepted from {snapshot.device}")
    return _device_view(state, snapshot, state.clock())


@router.get("/api/devices/{user}/{device}/track")
def get_track(
    user: str,
    device: str,
    request: Request,
    caller: TrackReader,
    from_: str | None = Query(None, alias="from", description="epoch s or ISO 8601"),
    to: str | None = Query(None, description="epoch s or ISO 8601"),
    limit: int = Query(
        10_000, ge=1, le=_MAX_TRACK_POINTS, description="at most this many fixes, the earliest"
    ),
) -> dict[str, Any]:
    """The stored fixes with fix time in [from, to] as GeoJSON, ordered by fix time.

    Backfilled fixes are included and flagged; each point carries its chain hash.
    Default window: the last six hours; at most seven days. A window holding more than
    `limit` fixes answers the earliest `limit`, with `truncated` and the fix time to ask
    `from` next (`next_from`).
    """
    state = app_state(request)
    _check_device_scope(state, caller, user, f"track of {user}/{device}")
    zone = state.settings.timezone
    end = parse_time(to, zone) if to else state.clock()
    start = parse_time(from_, zone) if from_ else end - _DEFAULT_TRACK_WINDOW_S
    if start > end:
        raise HTTPException(422, f"from ({start:.0f}) is after to ({end:.0f})")
    if end - start > _MAX_TRACK_WINDOW_S:
        raise HTTPException(
            422, f"choose a window of up to {_MAX_TRACK_WINDOW_S // 86400} days (from, to)"
        )
    dev = DeviceKey(device_key(user, device))
    points = []
    # Sealed segments first, then the live stream: one chain, wherever it is kept.
    for record in full_track(state.store, state.settings.archive(), dev, start, end):
        fix = record.fix
        if start <= fix["fix_at"] <= end:
            points.append((fix, record.chain_hash, record.backfill))
    points.sort(key=lambda p: p[0]["fix_at"])
    rest = points[limit:]
    points = points[:limit]
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [fix["lon"], fix["lat"]]},
            "properties": {
                **{k: v for k, v in fix.items() if k not in ("lon", "lat", "device")},
                "time": local_iso(fix["fix_at"], zone),
                "backfill": backfill,
                "chain_hash": chain_hash,
            },
        }
        for fix, chain_hash, backfill in points
    ]
    if len(points) >= 2:
        line = [[fix["lon"], fix["lat"]] for fix, _, _ in points]
        features.insert(
            0,
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": line},
                "properties": {"kind": "track", "points": len(points)},
            },
        )
    return {
        "type": "FeatureCollection",
        "properties": {
            "device": dev,
            "from": start,
            "to": end,
            "points": len(points),
            "truncated": bool(rest),
            "next_from": rest[0][0]["fix_at"] if rest else None,
        },
        "features": features,
    }


@router.get("/api/ingest/stats")
def ingest_stats(request: Request, _: DeviceAdmin) -> dict[str, Any]:
    """Counts since the store was created: accepted (backfill included; and by the channel
    each came by: `mqtt`, `osmand`, `jt808`, `iot`), rejected by reason (over every channel:
    they share the writer), each HTTP intake channel's requests by outcome (`channels`), and
    each registered ingest worker's counts split at its latest reconnect (`workers`)."""
    state = app_state(request)
    counters = state.store.ingest.stats()
    rejected = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("rejected:")}
    messages = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("msg:")}
    broker = state.store.ingest.broker_counters()
    by_device = sorted(state.store.ingest.rejected_by_device().items(), key=lambda kv: -kv[1])
    return {
        "accepted": counters.get("accepted", 0),
        "accepted_by_channel": state.store.ingest.accepted_by_channel(),
        "backfill": counters.get("backfill", 0),
        "duplicates": rejected.get("duplicate", 0),
        "rejected": rejected,
        "rejected_total": sum(rejected.values()),
        "messages_by_kind": messages,
        "most_rejected": [
            {"device": key.rsplit("|", 1)[0], "reason": key.rsplit("|", 1)[1], "count": count}
            for key, count in by_device[:_MOST_REJECTED]
        ],
        "lag_s": state.store.ingest.lag_s(),
        "backlog": state.store.ingest.backlog(),
        "broker_dropped": int(broker.get("publish_messages_dropped", 0)),
        "channels": state.store.ingest.channel_stats(),
        "workers": [_worker_sessions(m) for m in state.store.members.members()],
    }


def _worker_sessions(member: Member) -> dict[str, Any]:
    """A worker's counts as of its last beat, split at its latest reconnect."""
    return {
        "name": member.name,
        "connected": member.connected,
        "received": member.received,
        "stored": member.stored,
        "sessions": member.sessions,
        "subscribed_at": member.subscribed_at,
        "gap_s": round(member.gap_s, 3),
        "received_before_gap": member.received_before_gap,
        "received_since_gap": member.received - member.received_before_gap,
    }


@router.get("/api/ingest/deadletters")
def deadletters(
    request: Request, _: DeviceAdmin, limit: int = Query(100, ge=1, le=10_000)
) -> list[dict[str, str]]:
    """The newest rejected messages with their reasons and raw payloads."""
    return app_state(request).store.ingest.deadletters(limit)
