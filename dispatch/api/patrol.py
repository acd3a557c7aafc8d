"""Patrol coverage (巡查覆盖率) per grid and shift, for supervisors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from dispatch.api.auth import require, scope_of
from dispatch.api.state import app_state
from dispatch.api.times import local_iso, parse_time
from dispatch.core.access import Permission, Principal
from dispatch.core.patrol import ShiftVerdict
from dispatch.patrol_report import patrol_setup, patrol_verdicts, shifts_between

router = APIRouter(tags=["supervision"])

Supervisor = Annotated[Principal, Depends(require(Permission.READ_STATISTICS))]
_MAX_WINDOW_S = 31 * 86400


@router.get("/api/patrol")
def patrol(
    request: Request,
    caller: Supervisor,
    since: str = Query(description="shifts that ended at or after: epoch s or ISO 8601"),
    until: str | None = Query(None, description="... and before (default: now)"),
) -> list[dict[str, Any]]:
    """For each shift of a team in your scope that ended in the window: every grid the team
    answers for, its covered street share (within 30 m of an on-duty officer's track), time
    on patrol, visits, and its standing against the grid's patrol target."""
    state = app_state(request)
    if state.city is None:
        raise HTTPException(
            503, "no city is configured: set YIWANG_AREAS_FILE and YIWANG_ROSTER_FILE"
        )
    zone = state.settings.timezone
    start = parse_time(since, zone)
    end = parse_time(until, zone) if until else state.clock()
    if not 0 < end - start <= _MAX_WINDOW_S:
        raise HTTPException(422, "choose a window of up to 31 days that ends after it starts")
    setup = patrol_setup(state.city, state.settings.patrol_targets_file)
    shifts = shifts_between(state.city, start, min(end, state.clock()), scope_of(caller, state))
    verdicts = patrol_verdicts(state.store, state.settings.archive(), state.city, setup, shifts)
    return [_view(v, zone) for v in verdicts]


def _view(verdict: ShiftVerdict, zone: str) -> dict[str, Any]:
    shift = verdict.shift
    return {
        "team": shift.team,
        "start": local_iso(shift.start_at, zone),
        "end": local_iso(shift.end_at, zone),
        "officers": sorted(shift.officers),
        "met": verdict.met,
        "summary": verdict.summary(),
        "grids": [
            {
                "grid": g.grid,
                "standing": g.standing.value,
                "reasons": list(g.reasons),
                "basis": g.coverage.basis.value,
                "covered_share": round(g.coverage.covered_share, 4),
                "patrol_s": round(g.coverage.patrol_s, 1),
                "visits": g.coverage.visits,
            }
            for g in verdict.grids
        ],
    }
