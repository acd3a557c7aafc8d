"""Areas: the district → street → grid (片区/网格) tree and point-in-area lookup.

Every place belongs to the innermost area that covers it. A point exactly on a shared border
is covered by both neighbours; it then goes to the one whose id sorts first, so the answer
never depends on load order. Geometry is WGS-84; files in another datum are converted on load,
and the datum must be declared, because a GCJ-02 polygon tested against a WGS-84 fix is off by
~500 m without any error to show for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType

import geopandas
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.coords import METRES_PER_DEG_LAT, Datum, LonLat, to_wgs84

AreaId = NewType("AreaId", str)

DISTRICT, STREET, GRID = 1, 2, 3
_NEIGHBOUR_TOLERANCE_DEG = 1e-5  # ~1 m: simplified borders rarely meet exactly


@dataclass(frozen=True, slots=True)
class Area:
    id: AreaId
    name: str
    level: int
    geometry: BaseGeometry = field(compare=False, repr=False)
    parent: AreaId | None = None


class AreaFileError(ValueError):
    """An area file that cannot be used; the message names the file and the field."""


class AreaIndex:
    """Point → innermost area, one point or a whole batch at a time."""

    def __init__(self, areas: Iterable[Area]) -> None:
        self.areas: tuple[Area, ...] = tuple(areas)
        ids = [a.id for a in self.areas]
        if len(set(ids)) != len(ids):
            raise ValueError("area ids must be unique")
        self._by_id = {a.id: n for n, a in enumerate(self.areas)}
        self._tree = shapely.STRtree([a.geometry for a in self.areas])
        self._level = np.array([a.level for a in self.areas], dtype=np.int64)
        self._rank = np.argsort(np.argsort(np.array(ids, dtype=object)))

    def __len__(self) -> int:
        return len(self.areas)

    def get(self, area_id: str) -> Area:
        return self.areas[self._by_id[AreaId(area_id)]]

    def area_for(self, point: LonLat) -> Area | None:
        (index,) = self.indices_for(np.array([point.lon]), np.array([point.lat]))
        return None if index < 0 else self.areas[index]

    def indices_for(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """For each point the index in `areas` of its innermost area, or -1 outside all."""
        points = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        point_idx, area_idx = self._tree.query(points, predicate="intersects")
        result = np.full(len(points), -1, dtype=np.int64)
        if len(point_idx) == 0:
            return result
        # Per point: deepest level first, then the smallest id.
        order = np.lexsort((self._rank[area_idx], -self._level[area_idx], point_idx))
        first = np.unique(point_idx[order], return_index=True)[1]
        result[point_idx[order][first]] = area_idx[order][first]
        return result

    def crossed_by(self, geometry: BaseGeometry) -> list[Area]:
        """Every area the geometry touches (a patrol line, an incident fence)."""
        return [self.areas[i] for i in self._tree.query(geometry, predicate="intersects")]

    def neighbours(self, area_id: str) -> list[Area]:
        """Areas of the same level that share a border with `area_id`, nearest first."""
        area = self.get(area_id)
        near = self._tree.query(
            area.geometry.buffer(_NEIGHBOUR_TOLERANCE_DEG), predicate="intersects"
        )
        found = [
            self.areas[i]
            for i in near
            if self.areas[i].level == area.level and self.areas[i].id != area.id
        ]
        centre = area.geometry.centroid
        return sorted(found, key=lambda a: (a.geometry.centroid.distance(centre), a.id))

    def children(self, area_id: str) -> list[Area]:
        return sorted((a for a in self.areas if a.parent == area_id), key=lambda a: a.id)

    def ancestors(self, area_id: str) -> list[Area]:
        """The area's parents, innermost first."""
        chain, parent = [], self.get(area_id).parent
        while parent is not None:
            chain.append(self.get(parent))
            parent = chain[-1].parent
        return chain


def grid_cells(parent: Area, cell_m: float) -> list[Area]:
    """Square cells of about `cell_m` covering `parent`, clipped to it, one level below.

    For districts that come without street or grid boundaries: ids are `{parent}-r{row}c{col}`
    counted from the south-west corner.
    """
    west, south, east, north = parent.geometry.bounds
    mid_lat = math.radians((south + north) / 2)
    d_lat = cell_m / METRES_PER_DEG_LAT
    d_lon = cell_m / (METRES_PER_DEG_LAT * math.cos(mid_lat))
    rows, cols = math.ceil((north - south) / d_lat), math.ceil((east - west) / d_lon)
    outline = parent.geometry
    shapely.prepare(outline)
    cells = []
    for row in range(rows):
        for col in range(cols):
            box = shapely.box(
                west + col * d_lon,
                south + row * d_lat,
                west + (col + 1) * d_lon,
                south + (row + 1) * d_lat,
            )
            if not shapely.intersects(outline, box):
                continue
            clipped = box if shapely.contains(outline, box) else shapely.intersection(outline, box)
            if clipped.area <= 0:
                continue
            cells.append(
                Area(
                    AreaId(f"{parent.id}-r{row:02d}c{col:02d}"),
                    f"{parent.name} {row + 1}-{col + 1} 网格",
                    parent.level + 1,
                    clipped,
                    parent.id,
                )
            )
    return cells


def voronoi_cells(parent: Area, count: int, *, seed: int, relax_rounds: int = 10) -> list[Area]:
    """`count` compact cells tiling `parent`, one level below, ids `{parent}-01`…

    For districts whose street (街道/乡镇) boundaries are not at hand: seeds scattered over the
    outline and moved to their cell's centroid a few times (Lloyd) give cells of similar size
    that follow the outline. Deterministic under `seed`; numbered west to east by centroid.
    """
    outline = parent.geometry
    shapely.prepare(outline)
    rng = np.random.default_rng(seed)
    west, south, east, north = outline.bounds
    seeds: list[BaseGeometry] = []
    while len(seeds) < count:
        candidate = shapely.Point(rng.uniform(west, east), rng.uniform(south, north))
        if shapely.contains(outline, candidate):
            seeds.append(candidate)
    cells: list[BaseGeometry] = []
    for _ in range(relax_rounds + 1):
        regions = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=outline)
        by_seed = {
            n: shapely.intersection(outline, region)
            for region in shapely.get_parts(regions)
            for n, point in enumerate(seeds)
            if shapely.contains(region, point)
        }
        cells = [by_seed[n] for n in range(count)]
        # A centroid can fall outside a concave cell; its point on surface never does.
        seeds = [
            c.centroid if shapely.contains(outline, c.centroid) else shapely.point_on_surface(c)
            for c in cells
        ]
    cells.sort(key=lambda c: (c.centroid.x, c.centroid.y))
    width = len(str(count))
    return [
        Area(
            AreaId(f"{parent.id}-{n:0{max(2, width)}d}"),
            f"{parent.name} 第{n}网格",
            parent.level + 1,
            cell,
            parent.id,
        )
        for n, cell in enumerate(cells, start=1)
    ]


def _to_wgs84(geometry: BaseGeometry, datum: Datum) -> BaseGeometry:
    if datum in (Datum.WGS84, Datum.CGCS2000):
        return geometry

    def convert(coords: np.ndarray) -> np.ndarray:
        return np.array([to_wgs84(lon, lat, datum) for lon, lat in coords])

    return shapely.transform(geometry, convert)


def load_areas(
    path: Path,
    *,
    datum: Datum | str,
    id_field: str,
    name_field: str,
    level: int = DISTRICT,
    parent_field: str | None = None,
) -> list[Area]:
    """Read areas from GeoJSON, GeoPackage or Shapefile, converting them to WGS-84.

    `datum` declares what the coordinates are: wgs84 / cgcs2000 (no change), gcj02 or bd09
    (converted here). A file in a projected CRS (e.g. CGCS2000 Gauss-Krüger) is reprojected
    to geographic coordinates first.
    """
    declared = Datum(datum)
    frame = geopandas.read_file(path)
    missing = [f for f in (id_field, name_field, parent_field) if f and f not in frame.columns]
    if missing:
        raise AreaFileError(f"{path}: no field {missing[0]!r}; fields are {list(frame.columns)}")
    if frame.crs is not None and not frame.crs.is_geographic:
        frame = frame.to_crs("EPSG:4326")
    areas = []
    for row in frame.itertuples(index=False):
        geometry = row.geometry
        if geometry is None or geometry.is_empty:
            raise AreaFileError(f"{path}: area {getattr(row, id_field)!r} has no geometry")
        parent = getattr(row, parent_field) if parent_field else None
        areas.append(
            Area(
                AreaId(str(getattr(row, id_field))),
                str(getattr(row, name_field)),
                level,
                shapely.make_valid(_to_wgs84(geometry, declared)),
                AreaId(str(parent)) if parent else None,
            )
        )
    return areas
