"""What a restarted demo finds of its previous run, and whether it can carry on from it.

The demo keeps its daemons' files in its folder, so a restart finds the city's incidents,
tracks, accounts and history. The simulated officers live in memory only: each starts again
from its newest stored fix, so its next fix is a plausible move rather than a jump the ingest
rejects. The center's clock must not run backwards either: after a faster run the stored
fixes lie ahead of the wall clock, and a restart at the same speed continues from the newest
of them. A restart that cannot (at real speed, or on a pinned clock) starts a fresh city.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dispatch.core.roster import OfficerId
from dispatch.store import Store
from gis.coords import LonLat
from harness.daemons import ManagedRedis
from harness.postgres import ManagedPostgres

_DAEMON_FOLDERS = ("redis", "mosquitto", "postgres")
# New fixes come after the newest stored one, not at the same second.
_RESUME_GAP_S = 1.0


@dataclass(frozen=True, slots=True)
class Resume:
    """How the demo starts: officers' positions to carry on from and the clock's anchor."""

    positions: dict[str, LonLat]
    clock_anchor: float
    note: str


def plan_resume(
    stored: Mapping[str, tuple[LonLat, float]],
    *,
    now: float,
    rate: float,
    anchor: float,
    anchor_pinned: bool,
) -> Resume | str:
    """Carry on from the officers' `stored` newest fixes (position, fix_at) with a clock at
    `rate` anchored at `anchor`, or say why that cannot be done consistently. Pure."""
    if not stored:
        return Resume({}, anchor, "a new city")
    positions = {officer: where for officer, (where, _) in stored.items()}
    newest = max(fix_at for _, fix_at in stored.values())
    starts_at = anchor + (now - anchor) * rate
    resumed = f"resuming the stored city: {len(positions)} officers from their last positions"
    if newest < starts_at:
        return Resume(positions, anchor, resumed)
    ahead = newest - starts_at
    if rate == 1.0 or anchor_pinned:
        return (
            f"the stored city's clock is {ahead / 60:.0f} min ahead of this start "
            "(its last run was faster)"
        )
    # Solve anchor + (now - anchor) * rate = newest + gap for the anchor.
    target = newest + _RESUME_GAP_S
    return Resume(positions, (target - rate * now) / (1.0 - rate), resumed)


def stored_fixes(
    workdir: Path, prefix: str, officers: list[str]
) -> dict[str, tuple[LonLat, float]]:
    """The officers' newest fixes in the demo's stored Redis (started for the read, then
    stopped); none when the demo has not run in `workdir` before."""
    if not (workdir / "redis" / "redis.conf").exists():
        return {}
    redis_service = ManagedRedis(workdir / "redis")
    redis_service.start()
    try:
        store = Store.from_url(redis_service.url, prefix)
        try:
            found = {officer: store.newest_fix(OfficerId(officer)) for officer in officers}
        finally:
            store.close()
    finally:
        redis_service.stop()
    return {officer: fix for officer, fix in found.items() if fix is not None}


def forget_previous_run(workdir: Path) -> None:
    """Remove what the demo's daemons stored (the city folder is rebuilt anyway)."""
    if (workdir / "postgres").is_dir():
        ManagedPostgres(workdir / "postgres").remove()  # its cluster may live elsewhere
    for name in _DAEMON_FOLDERS:
        shutil.rmtree(workdir / name, ignore_errors=True)
