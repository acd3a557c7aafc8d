"""Recommendation latency: top 5 of 10,000 on-duty officers on a street grid.

A 9 km × 9 km generated city: a 60 × 60 street lattice, 100 grid cells each owned by a team
of 100 officers on duty. Ours: owning team, then neighbouring teams, ETAs from one reversed
Dijkstra. Baseline: rank every officer in the city by road ETA (what a center without areas
would do). Last line: JSON with p50/p99 of both, in milliseconds.
"""

from __future__ import annotations

import json
import time

import numpy as np
import shapely

from dispatch.core.assignment import Availability, OfficerState, recommend_officers
from dispatch.core.roster import OfficerId, Roster, Shift, Team, TeamId
from gis.areas import GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat
from gis.routing import lattice

_ORIGIN = LonLat(119.55, 29.00)
_SIDE = 10


def _city(officers_per_team: int) -> tuple[Roster, dict[OfficerId, OfficerState], object]:
    graph = lattice(_ORIGIN, 60, 60, 150.0)
    west, south = graph.lonlat.min(axis=0)
    east, north = graph.lonlat.max(axis=0)
    dx, dy = (east - west) / _SIDE, (north - south) / _SIDE
    cells = [
        Area(
            AreaId(f"g{r}{c}"),
            f"网格{r}-{c}",
            GRID,
            shapely.box(west + c * dx, south + r * dy, west + (c + 1) * dx, south + (r + 1) * dy),
        )
        for r in range(_SIDE)
        for c in range(_SIDE)
    ]
    rng = np.random.default_rng(3)
    teams, shifts, officers = [], [], {}
    for cell in cells:
        team = TeamId(f"team-{cell.id}")
        x0, y0, x1, y1 = cell.geometry.bounds
        crew = []
        for n in range(officers_per_team):
            officer = OfficerId(f"{cell.id}-{n}")
            officers[officer] = OfficerState(
                officer,
                LonLat(rng.uniform(x0, x1), rng.uniform(y0, y1)),
                Availability.AVAILABLE,
                int(rng.integers(0, 3)),
            )
            crew.append(officer)
        teams.append(Team(team, team, frozenset({cell.id})))
        shifts.append(Shift(team, frozenset(crew), 0.0, 1e12))
    return Roster(teams, shifts, AreaIndex(cells)), officers, graph


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.array(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(queries: int = 500) -> int:
    roster, officers, graph = _city(100)
    print(
        f"recommend bench: top 5 of {len(officers):,} on-duty officers, {len(graph):,} street nodes"
    )
    rng = np.random.default_rng(4)
    west, south = graph.lonlat.min(axis=0)
    east, north = graph.lonlat.max(axis=0)
    incidents = [LonLat(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(queries)]
    ours = []
    for point in incidents:
        started = time.perf_counter()
        area = roster.areas.area_for(point)
        assert area is not None
        top = recommend_officers(
            point, area.id, roster=roster, officers=officers, travel=graph, now=1.0
        )
        ours.append(time.perf_counter() - started)
        assert len(top) == 5
    everyone = list(officers.values())
    positions = [s.position for s in everyone]
    baseline = []
    for point in incidents[: max(1, queries // 5)]:
        started = time.perf_counter()
        etas = graph.travel_times_to(point, positions) + np.array(
            [s.open_orders * 120.0 for s in everyone]
        )
        np.argsort(etas)[:5]
        baseline.append(time.perf_counter() - started)
    p50, p99 = _percentiles(ours)
    b50, b99 = _percentiles(baseline)
    print(f"  area-first ranking     p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    print(f"  whole-city ranking     p50 {b50:7.2f} ms   p99 {b99:7.2f} ms")
    print(
        json.dumps(
            {
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "baseline_p50_ms": round(b50, 2),
                "baseline_p99_ms": round(b99, 2),
                "p99_ratio": round(b99 / p99, 2),
            }
        )
    )
    return 0
