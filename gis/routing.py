"""Travel time on a street graph, for ranking officers by how fast they can arrive.

The graph comes from GraphML (OSMnx style, e.g. exported from OpenStreetMap): nodes with `x`
(lon) and `y` (lat), directed edges with `length` (m), `highway` and optional `maxspeed`.
Edge time is length over the posted speed, or over a typical urban speed for the road class.
Ranking candidates is many-to-one: one Dijkstra from the incident over reversed edges answers
every officer at once. Points are snapped to the nearest node; the gap is covered at
`access_speed_kmh`. Without a graph, `StraightLine` estimates from distance and a detour factor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from gis.coords import METRES_PER_DEG_LAT, LonLat, haversine_m, to_local_metres

# Typical urban speeds by OSM road class (km/h), used where no maxspeed is posted.
ROAD_SPEEDS_KMH: dict[str, float] = {
    "motorway": 80.0,
    "motorway_link": 50.0,
    "trunk": 60.0,
    "trunk_link": 40.0,
    "primary": 45.0,
    "primary_link": 35.0,
    "secondary": 40.0,
    "secondary_link": 30.0,
    "tertiary": 35.0,
    "tertiary_link": 30.0,
    "unclassified": 25.0,
    "residential": 25.0,
    "living_street": 10.0,
    "service": 15.0,
}
DEFAULT_SPEED_KMH = 25.0


class TravelTimes(Protocol):
    def travel_times_to(self, destination: LonLat, origins: Sequence[LonLat]) -> np.ndarray:
        """Seconds from each origin to `destination` (inf where unreachable)."""
        ...


class StraightLine:
    """Distance times a detour factor at an average urban speed: the fallback estimate."""

    def __init__(self, speed_kmh: float = 30.0, detour: float = 1.4) -> None:
        self.speed_ms = speed_kmh / 3.6
        self.detour = detour

    def travel_times_to(self, destination: LonLat, origins: Sequence[LonLat]) -> np.ndarray:
        return np.array(
            [haversine_m(o, destination) * self.detour / self.speed_ms for o in origins]
        )


class GraphFileError(ValueError):
    """A street graph that cannot be used; the message names the file and what is missing."""


def _first(value: object) -> str:
    """OSMnx writes merged attributes as "['a', 'b']"; take the first."""
    text = str(value)
    match = re.match(r"\[\s*'([^']*)'", text)
    return match.group(1) if match else text


def _speed_kmh(highway: object, maxspeed: object) -> float:
    if maxspeed not in (None, ""):
        digits = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", _first(maxspeed))
        if digits:
            value = float(digits.group(1)) * (1.609 if digits.group(2) else 1.0)
            if value > 0:
                return value
    return ROAD_SPEEDS_KMH.get(_first(highway), DEFAULT_SPEED_KMH)


class StreetGraph:
    def __init__(
        self,
        lonlat: np.ndarray,
        edges: Sequence[tuple[int, int, float, float]],
        *,
        access_speed_kmh: float = 15.0,
    ) -> None:
        """`lonlat`: (n, 2) node positions; `edges`: (from, to, length_m, travel_s)."""
        self.lonlat = np.asarray(lonlat, dtype=float)
        count = len(self.lonlat)
        best: dict[tuple[int, int], float] = {}
        for u, v, _length, seconds in edges:
            if seconds < best.get((u, v), math.inf):
                best[(u, v)] = seconds
        rows, cols = zip(*best, strict=True) if best else ((), ())
        # Dijkstra treats a stored 0 as "no edge": keep zero-length edges just above zero.
        times = np.maximum(np.array(list(best.values()), dtype=float), 1e-6)
        self._forward = csr_matrix((times, (rows, cols)), shape=(count, count))
        self._reverse = self._forward.transpose().tocsr()
        self._origin = LonLat(0.0, float(np.mean(self.lonlat[:, 1])) if count else 0.0)
        self._kdtree = cKDTree(self._plane(self.lonlat))
        self.access_speed_ms = access_speed_kmh / 3.6

    @classmethod
    def from_graphml(cls, path: Path) -> StreetGraph:
        graph = nx.read_graphml(path)
        index = {node: n for n, node in enumerate(graph.nodes)}
        try:
            lonlat = np.array([[float(d["x"]), float(d["y"])] for _, d in graph.nodes(data=True)])
        except KeyError as exc:
            raise GraphFileError(f"{path}: nodes need x (lon) and y (lat), missing {exc}") from None
        edges = []
        for u, v, data in graph.edges(data=True):
            if "length" not in data:
                raise GraphFileError(f"{path}: edge {u}->{v} has no length")
            length = float(data["length"])
            speed = _speed_kmh(data.get("highway"), data.get("maxspeed"))
            edges.append((index[u], index[v], length, length / (speed / 3.6)))
        return cls(lonlat, edges)

    def __len__(self) -> int:
        return len(self.lonlat)

    def _plane(self, lonlat: np.ndarray) -> np.ndarray:
        return to_local_metres(lonlat, self._origin)

    def snap(self, points: Sequence[LonLat]) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node index and the distance to it in metres, for each point."""
        distance, node = self._kdtree.query(self._plane(np.array(points, dtype=float)))
        return np.asarray(node), np.asarray(distance)

    def travel_times_to(self, destination: LonLat, origins: Sequence[LonLat]) -> np.ndarray:
        if not origins:
            return np.array([])
        (target,), (target_gap,) = self.snap([destination])
        on_network = dijkstra(self._reverse, directed=True, indices=int(target))
        nodes, gaps = self.snap(origins)
        seconds: np.ndarray = on_network[nodes] + (gaps + target_gap) / self.access_speed_ms
        return seconds

    def route(self, origin: LonLat, destination: LonLat) -> list[LonLat]:
        """Node positions along the fastest path; empty when none exists."""
        (source, target), _ = self.snap([origin, destination])
        times, previous = dijkstra(
            self._forward, directed=True, indices=int(source), return_predecessors=True
        )
        if not math.isfinite(times[target]):
            return []
        path = [int(target)]
        while path[-1] != source:
            path.append(int(previous[path[-1]]))
        return [LonLat(*self.lonlat[n]) for n in reversed(path)]

    def edges(self) -> list[tuple[int, int, float]]:
        """(from, to, seconds) for the fastest edge between each connected pair of nodes."""
        coo = self._forward.tocoo()
        return list(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))

    def largest_component(self) -> np.ndarray:
        """Node indices of the largest set in which every node reaches every other."""
        _, labels = connected_components(self._forward, directed=True, connection="strong")
        return np.flatnonzero(labels == np.bincount(labels).argmax())


@dataclass(frozen=True, slots=True)
class Route:
    """A way from one point to another: the line to draw (both ends included), its length
    along that line, and the travel time the ranking of officers uses."""

    path: list[LonLat]
    distance_m: float
    eta_s: float


def route_between(travel: TravelTimes, origin: LonLat, destination: LonLat) -> Route:
    """The fastest street route where there is a street graph; else the straight line, with
    the fallback's estimate of the time (a detour factor the drawn line does not show)."""
    streets = travel.route(origin, destination) if isinstance(travel, StreetGraph) else []
    path = [origin, *streets, destination]
    distance = sum(haversine_m(a, b) for a, b in pairwise(path))
    eta = float(travel.travel_times_to(destination, [origin])[0])
    return Route(path, distance, eta)


def lattice(origin: LonLat, columns: int, rows: int, spacing_m: float) -> StreetGraph:
    """A generated street grid: two-way residential streets every `spacing_m`, with a faster
    primary road on every fifth line. For cities that come without a street network."""
    cos_lat = math.cos(math.radians(origin.lat))
    lonlat = np.array(
        [
            [
                origin.lon + c * spacing_m / (METRES_PER_DEG_LAT * cos_lat),
                origin.lat + r * spacing_m / METRES_PER_DEG_LAT,
            ]
            for r in range(rows)
            for c in range(columns)
        ]
    )
    edges = []
    for r in range(rows):
        for c in range(columns):
            here = r * columns + c
            for there, line in ((here + 1, r), (here + columns, c)):
                if (there == here + 1 and c + 1 < columns) or (
                    there == here + columns and r + 1 < rows
                ):
                    road = "primary" if line % 5 == 0 else "residential"
                    seconds = spacing_m / (ROAD_SPEEDS_KMH[road] / 3.6)
                    edges += [(here, there, spacing_m, seconds), (there, here, spacing_m, seconds)]
    return StreetGraph(lonlat, edges)
