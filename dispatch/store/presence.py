"""Where each officer is and how present: the freshest live fix among the devices bound to
them, and the best presence among those devices."""

from __future__ import annotations

from devices.presence import Presence, presence
from dispatch.core.roster import OfficerId
from dispatch.core.track import device_key
from dispatch.store.registry import RegistryStore
from dispatch.store.tracks import TrackStore
from gis.coords import LonLat

_BEST_FIRST = (Presence.ONLINE, Presence.STALE, Presence.OFFLINE)


def officer_positions(
    registry: RegistryStore,
    tracks: TrackStore,
    *,
    now: float,
    stale_after_s: float,
    offline_after_s: float,
) -> dict[OfficerId, tuple[Presence, LonLat]]:
    """Each officer's best presence across their devices, and that device's last position."""
    keys = registry.device_keys()
    best: dict[OfficerId, tuple[int, int, LonLat]] = {}
    for snapshot in tracks.device_snapshots(keys):
        record = snapshot.record
        if "fix_at" not in record:
            continue
        officer = OfficerId(snapshot.device.split("/", 1)[0])
        seen = presence(
            snapshot.last_seen_at,
            snapshot.connection,
            now=now,
            stale_after_s=stale_after_s,
            offline_after_s=offline_after_s,
        )
        rank, fix_at = _BEST_FIRST.index(seen), int(record["fix_at"])
        current = best.get(officer)
        if current is None or (rank, -fix_at) < (current[0], -current[1]):
            best[officer] = (rank, fix_at, LonLat(float(record["lon"]), float(record["lat"])))
    return {officer: (_BEST_FIRST[rank], point) for officer, (rank, _at, point) in best.items()}


def newest_fix(
    registry: RegistryStore, tracks: TrackStore, officer: OfficerId
) -> tuple[LonLat, float] | None:
    """Where the officer's devices last put them and when (the fix's own time): the newest
    live fix among the devices bound to them, or None before any."""
    mine = [device_key(officer, device) for device in registry.devices_of(officer)]
    fixes = [s.record for s in tracks.device_snapshots(mine) if "fix_at" in s.record]
    if not fixes:
        return None
    record = max(fixes, key=lambda r: float(r["fix_at"]))
    return LonLat(float(record["lon"]), float(record["lat"])), float(record["fix_at"])
