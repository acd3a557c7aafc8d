"""The city's named places and streets: type-ahead search by name, and the address of a point
(the nearest named street, and the named place beside it).

Search ranks a name equal to the text first, then names that start with it, then names that
hold it; shorter names before longer, then by name, so the answer never depends on load
order; it returns at most `limit`. A street is one entry however many edges carry its name,
placed at the edge point nearest the street's middle. Distances are metres on a local plane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import nearest_points

from gis.coords import METRES_PER_DEG_LAT, LonLat

STREET = "street"
NEAR_PLACE_M = 150.0  # a place this close names the address beside its street
NEAR_STREET_M = 300.0  # beyond this a point has no street to be addressed by


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    kind: str  # "street", or what the places file says (poi, community, school ...)
    location: LonLat


class PlaceIndex:
    """Named places (points) and named streets (lines), searchable by name."""

    def __init__(
        self, places: Iterable[Place], streets: Iterable[tuple[str, LineString]] = ()
    ) -> None:
        self.points = tuple(p for p in places if p.name.strip())
        lines: dict[str, list[LineString]] = {}
        for name, line in streets:
            if name.strip():
                lines.setdefault(name.strip(), []).append(line)
        self.street_names = tuple(sorted(lines))
        self._street_lines = [shapely.MultiLineString(lines[n]) for n in self.street_names]
        self.streets = tuple(
            Place(name, STREET, _middle(geometry))
            for name, geometry in zip(self.street_names, self._street_lines, strict=True)
        )
        self.entries = (*self.points, *self.streets)
        lat0 = float(np.mean([p.location.lat for p in self.entries])) if self.entries else 0.0
        self._x_scale = METRES_PER_DEG_LAT * float(np.cos(np.radians(lat0)))
        self._points_tree = shapely.STRtree([self._plane_point(p.location) for p in self.points])
        self._streets_tree = shapely.STRtree(
            [shapely.transform(g, self._to_plane) for g in self._street_lines]
        )

    def __len__(self) -> int:
        return len(self.entries)

    def search(
        self, text: str, *, limit: int, where: Callable[[Place], bool] | None = None
    ) -> list[Place]:
        """Entries whose name holds `text` (case-insensitive), best first, at most `limit`,
        of those `where` keeps."""
        wanted = text.strip().casefold()
        if not wanted or limit < 1:
            return []
        ranked = []
        for place in self.entries:
            name = place.name.casefold()
            at = name.find(wanted)
            if at < 0 or (where is not None and not where(place)):
                continue
            rank = 0 if name == wanted else 1 if at == 0 else 2
            ranked.append((rank, len(place.name), place.name, place.kind, place))
        ranked.sort(key=lambda r: r[:4])
        return [r[-1] for r in ranked[:limit]]

    def nearest_street(self, point: LonLat, *, within_m: float = NEAR_STREET_M) -> str | None:
        return self._nearest(self._streets_tree, self.street_names, point, within_m)

    def nearest_place(self, point: LonLat, *, within_m: float = NEAR_PLACE_M) -> str | None:
        return self._nearest(self._points_tree, [p.name for p in self.points], point, within_m)

    def address_of(self, point: LonLat) -> str:
        """`<street> <place>附近`, either part left out when none is near; "" if neither."""
        street, place = self.nearest_street(point), self.nearest_place(point)
        parts = [street or "", f"{place}附近" if place else ""]
        return " ".join(p for p in parts if p)

    def _nearest(
        self, tree: shapely.STRtree, names: Iterable[str], point: LonLat, within_m: float
    ) -> str | None:
        if not len(tree.geometries):
            return None
        names = list(names)
        found = tree.query_nearest(
            self._plane_point(point), max_distance=within_m, return_distance=False, all_matches=True
        )
        if len(found) == 0:
            return None
        return str(min(names[int(i)] for i in found))  # ties: the name sorting first

    def _plane_point(self, at: LonLat) -> Point:
        return Point(at.lon * self._x_scale, at.lat * METRES_PER_DEG_LAT)

    def _to_plane(self, coords: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = coords * np.array([self._x_scale, METRES_PER_DEG_LAT])
        return scaled


def _middle(geometry: shapely.MultiLineString) -> LonLat:
    """The point of the street nearest its bounding box's centre: on the street itself."""
    centre = shapely.box(*geometry.bounds).centroid
    point = nearest_points(geometry, centre)[0]
    return LonLat(round(point.x, 7), round(point.y, 7))
