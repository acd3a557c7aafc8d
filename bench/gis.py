"""GIS throughput: point → area in batches, and many-to-one travel times.

Point → area: 100,000 points against 10,000 grid cells, answered by the vectorised batch
lookup, against the baseline of one tree query per point (measured on a 5,000-point sample).
Travel times: ranking officers for an incident with one reversed Dijkstra (scipy) against the
baseline of one networkx shortest-path search per officer. Last line: JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import networkx as nx
import numpy as np
import shapely

from gis.areas import GRID, Area, AreaId, AreaIndex
from gis.coords import LonLat
from gis.routing import StreetGraph, lattice

_ORIGIN = LonLat(119.55, 29.00)


def _cells(side: int, size_deg: float) -> AreaIndex:
    return AreaIndex(
        Area(
            AreaId(f"g{r:03d}{c:03d}"),
            f"网格{r}-{c}",
            GRID,
            shapely.box(
                _ORIGIN.lon + c * size_deg,
                _ORIGIN.lat + r * size_deg,
                _ORIGIN.lon + (c + 1) * size_deg,
                _ORIGIN.lat + (r + 1) * size_deg,
            ),
        )
        for r in range(side)
        for c in range(side)
    )


def bench_areas(points: int, cells: int) -> dict[str, float]:
    side = round(cells**0.5)
    size = 0.002
    index = _cells(side, size)
    rng = np.random.default_rng(1)
    lons = _ORIGIN.lon + rng.uniform(0, side * size, points)
    lats = _ORIGIN.lat + rng.uniform(0, side * size, points)
    started = time.perf_counter()
    found = index.indices_for(lons, lats)
    batch_s = time.perf_counter() - started
    sample = min(points, 5_000)
    started = time.perf_counter()
    single = [
        index.area_for(LonLat(x, y)) for x, y in zip(lons[:sample], lats[:sample], strict=True)
    ]
    single_s = time.perf_counter() - started
    assert [index.areas[i] for i in found[:sample]] == single
    return {"points_per_s": points / batch_s, "baseline_points_per_s": sample / single_s}


def _networkx(graph: StreetGraph) -> nx.DiGraph:
    g = nx.DiGraph()
    coo = graph._forward.tocoo()
    g.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    return g


def bench_eta(graph: StreetGraph, incidents: int, officers: int) -> dict[str, float]:
    rng = np.random.default_rng(2)
    nodes = graph.largest_component()
    pick = lambda n: [LonLat(*graph.lonlat[i]) for i in rng.choice(nodes, n)]  # noqa: E731
    targets, crews = pick(incidents), [pick(officers) for _ in range(incidents)]
    started = time.perf_counter()
    for target, crew in zip(targets, crews, strict=True):
        graph.travel_times_to(target, crew)
    ours_s = time.perf_counter() - started
    reference = _networkx(graph)
    sample = max(1, incidents // 10)
    started = time.perf_counter()
    for target, crew in zip(targets[:sample], crews[:sample], strict=True):
        (t,), _ = graph.snap([target])
        for node in graph.snap(crew)[0]:
            nx.shortest_path_length(reference, int(node), int(t), weight="weight")
    baseline_s = time.perf_counter() - started
    return {
        "eta_per_s": incidents * officers / ours_s,
        "rankings_per_s": incidents / ours_s,
        "baseline_eta_per_s": sample * officers / baseline_s,
    }


def main(graph_path: Path | None = None, points: int = 100_000, cells: int = 10_000) -> int:
    print(f"gis bench: {points:,} points against {cells:,} cells")
    areas = bench_areas(points, cells)
    print(f"  point → area, batch       {areas['points_per_s']:12,.0f} points/s")
    print(f"  one tree query per point  {areas['baseline_points_per_s']:12,.0f} points/s")
    graph = StreetGraph.from_graphml(graph_path) if graph_path else lattice(_ORIGIN, 60, 60, 150.0)
    source = graph_path.name if graph_path else "generated 60×60 lattice"
    print(f"travel times on {source} ({len(graph):,} nodes), 50 officers per incident")
    eta = bench_eta(graph, incidents=200, officers=50)
    print(
        f"  many-to-one (scipy)       {eta['eta_per_s']:12,.0f} officer ETAs/s ({eta['rankings_per_s']:,.0f} incidents/s)"
    )
    print(f"  one search per officer    {eta['baseline_eta_per_s']:12,.0f} officer ETAs/s")
    result = {
        "point_to_area_per_s": round(areas["points_per_s"]),
        "point_to_area_baseline_per_s": round(areas["baseline_points_per_s"]),
        "point_to_area_ratio": round(areas["points_per_s"] / areas["baseline_points_per_s"], 1),
        "eta_per_s": round(eta["eta_per_s"]),
        "eta_baseline_per_s": round(eta["baseline_eta_per_s"]),
        "eta_ratio": round(eta["eta_per_s"] / eta["baseline_eta_per_s"], 1),
    }
    print(json.dumps(result))
    return 0
