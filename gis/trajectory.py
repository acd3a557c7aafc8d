"""Trajectories: cleaning, length and speed, simplification, and patrol coverage.

A track here is a time-ordered list of `TrackPoint`s in WGS-84. Cleaning explains itself: it
returns what it dropped and why, so a report can say how much of a track was noise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import shapely

from gis.areas import AreaIndex
from gis.coords import LonLat, haversine_m, to_local_metres


@dataclass(frozen=True, slots=True)
class TrackPoint:
    at: float  # UTC epoch seconds
    lon: float
    lat: float

    @property
    def point(self) -> LonLat:
        return LonLat(self.lon, self.lat)


@dataclass(frozen=True, slots=True)
class Cleaned:
    points: list[TrackPoint]
    dropped: Counter[str]


def clean(points: Sequence[TrackPoint], *, max_speed_kmh: float = 250.0) -> Cleaned:
    """Sort by time and drop zero or impossible coordinates, repeated times and jumps.

    A jump is a point reached from the last kept one faster than `max_speed_kmh`; the next
    point is again compared with the last kept one, so a lone outlier costs one point only.
    """
    kept: list[TrackPoint] = []
    dropped: Counter[str] = Counter()
    for p in sorted(points, key=lambda p: p.at):
        if not (math.isfinite(p.lon) and math.isfinite(p.lat)) or not (
            -180 <= p.lon <= 180 and -90 <= p.lat <= 90
        ):
            dropped["out_of_range"] += 1
        elif p.lon == 0 or p.lat == 0:
            dropped["zero"] += 1
        elif kept and p.at == kept[-1].at:
            dropped["duplicate_time"] += 1
        elif kept and speed_kmh(kept[-1], p) > max_speed_kmh:
            dropped["jump"] += 1
        else:
            kept.append(p)
    return Cleaned(kept, dropped)


def speed_kmh(a: TrackPoint, b: TrackPoint) -> float:
    elapsed = b.at - a.at
    distance = haversine_m(a.point, b.point)
    if elapsed <= 0:
        return math.inf if distance > 0 else 0.0
    return distance / elapsed * 3.6


def length_m(points: Sequence[TrackPoint]) -> float:
    return sum(haversine_m(a.point, b.point) for a, b in pairwise(points))


def simplify(points: Sequence[TrackPoint], tolerance_m: float) -> list[TrackPoint]:
    """Douglas-Peucker in a local metric plane; kept points keep their own times."""
    if len(points) < 3:
        return list(points)
    xy = to_local_metres(np.array([(p.lon, p.lat) for p in points]), points[0].point)
    kept = shapely.simplify(shapely.LineString(xy), tolerance_m, preserve_topology=False)
    coords = {tuple(c) for c in np.asarray(kept.coords)}
    return [p for p, c in zip(points, map(tuple, xy), strict=True) if c in coords]


def coverage(points: Sequence[TrackPoint], cells: AreaIndex, *, start: float, end: float) -> float:
    """Share of `cells` a patrol passed through between `start` and `end`.

    Sparse fixes are joined by straight segments, so a cell crossed between two fixes counts.
    """
    window = [(p.lon, p.lat) for p in points if start <= p.at <= end]
    if not window or len(cells) == 0:
        return 0.0
    path = shapely.Point(window[0]) if len(window) == 1 else shapely.LineString(window)
    return len(cells.crossed_by(path)) / len(cells)
