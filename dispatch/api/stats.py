"""Supervision statistics (监督考核): the 1/3/15 figures of the incidents reported in a time
range, for the caller's area scope, in all or broken down by one dimension.

The figures are `dispatch.db.statistics.aggregate`'s; `tally_view` is also what the monthly
report writes, so that the report and the API cannot disagree.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from dispatch.api.auth import requested_scope, require
from dispatch.api.state import app_state
from dispatch.api.times import parse_time
from dispatch.core.access import Permission, Principal
from dispatch.core.breakdown import Dimension, StatsFilter, Tally, empty_tally
from dispatch.core.model import Source
from dispatch.db.statistics import aggregate

router = APIRouter(tags=["statistics"])

Supervisor = Annotated[Principal, Depends(require(Permission.READ_STATISTICS))]


def tally_view(tally: Tally) -> dict[str, Any]:
    return {
        "key": tally.key,
        "incidents": tally.incidents,
        "milestones": {
            m.value: {
                "on_time": t.on_time,
                "late": t.late,
                "missed": t.missed,
                "breached": t.breached,
                "due": t.due,
                "reached": t.reached,
                "on_time_share": t.on_time_share,
                "p50_s": t.p50_s,
                "p90_s": t.p90_s,
            }
            for m, t in tally.milestones.items()
        },
        "breaches": tally.breaches,
        "causes": {c.value: n for c, n in tally.causes.items()},
        "redispatches": tally.redispatch_count,
        "redispatch_reasons": {r.value: n for r, n in tally.redispatches.items()},
        "escalations": {str(level): n for level, n in tally.escalations.items()},
        "orders": tally.orders,
        "orders_refused": tally.orders_refused,
        "orders_unanswered": tally.orders_unanswered,
        "on_scene_s": tally.on_scene_s,
    }


def statistics_filter(
    request: Request,
    caller: Supervisor,
    since: str | None = Query(None, description="reported at or after: epoch s or ISO 8601"),
    until: str | None = Query(None, description="reported before: epoch s or ISO 8601"),
    area: str | None = Query(
        None, max_length=64, description="an area inside your scope, and all it holds"
    ),
    team: str | None = Query(None, max_length=64),
    category: str | None = Query(None, max_length=64),
    source: Source | None = None,
) -> StatsFilter:
    """A dependency: the incidents the caller asks for, never beyond the caller's scope."""
    state = app_state(request)
    areas = requested_scope(request, caller, area).area_ids()
    zone = state.settings.timezone
    return StatsFilter(
        since=parse_time(since, zone) if since else None,
        until=parse_time(until, zone) if until else None,
        areas=None if areas is None else frozenset(areas),
        team=team,
        category=category,
        source=source.value if source else None,
    )


Filter = Annotated[StatsFilter, Depends(statistics_filter)]


@router.get("/api/stats/summary")
def summary(request: Request, where: Filter) -> dict[str, Any]:
    """Every incident reported in the range and scope, as one row of figures."""
    (total,) = aggregate(app_state(request).db, None, where) or [empty_tally()]
    return tally_view(total)


@router.get("/api/stats/breakdown")
def breakdown(request: Request, where: Filter, by: Dimension) -> list[dict[str, Any]]:
    """One row of figures per area, team, officer, category, source, priority or local hour
    (by officer: each incident once per officer ordered to it, with that officer's orders)."""
    return [tally_view(t) for t in aggregate(app_state(request).db, by, where)]
