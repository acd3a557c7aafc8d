"""The city the center serves: its areas, the teams and shifts that answer for them, and how
long it takes to get anywhere. Loaded once at start from the deployment's files.

Roster file (YAML):

    teams:
      - {id: wucheng-01, name: 城东中队, areas: [330702]}
    shifts:
      - {team: wucheng-01, officers: [zhang3, li4], daily: "08:00-20:00"}
      - {team: wucheng-01, officers: [wang5], start: "2026-11-22T20:00", end: "2026-11-23T08:00"}

Times without an offset are local (the deployment's zone). A daily shift is laid out for
yesterday through the next week; one that ends before it starts runs past midnight.

Places file (GeoJSON, WGS-84; by default `places.geojson` beside the areas file): a
FeatureCollection of Points with properties `name` and `kind`. With the street graph's edge
`name`s (OSM exports carry them) they feed the intake's place search and addresses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import networkx as nx
import yaml
from shapely.geometry import LineString

from dispatch.core.roster import OfficerId, Roster, RosterError, Shift, Team, TeamId
from gis.areas import AreaId, AreaIndex, load_areas
from gis.coords import LonLat
from gis.places import Place, PlaceIndex
from gis.routing import StraightLine, StreetGraph, TravelTimes

_DAILY_DAYS = range(-1, 8)
PLACES = "places.geojson"


class PlacesFileError(ValueError):
    """A places file that cannot be used; the message names the file and the feature."""


@dataclass(frozen=True)
class City:
    areas: AreaIndex
    roster: Roster
    travel: TravelTimes
    places: PlaceIndex = field(default_factory=lambda: PlaceIndex([]))


def load_city(
    *,
    areas_file: Path,
    areas_datum: str,
    id_field: str,
    name_field: str,
    roster_file: Path,
    streets_file: Path | None,
    zone: str,
    today: datetime,
    places_file: Path | None = None,
) -> City:
    areas = AreaIndex(
        load_areas(areas_file, datum=areas_datum, id_field=id_field, name_field=name_field)
    )
    roster = load_roster(roster_file, areas, zone=zone, today=today)
    travel: TravelTimes = StreetGraph.from_graphml(streets_file) if streets_file else StraightLine()
    places_file = places_file or areas_file.parent / PLACES
    places = load_places(places_file if places_file.exists() else None, streets_file)
    return City(areas, roster, travel, places)


def load_places(places_file: Path | None, streets_file: Path | None) -> PlaceIndex:
    """The named places of `places_file` and the named streets of `streets_file`."""
    places = []
    if places_file is not None:
        data = json.loads(places_file.read_text(encoding="utf-8"))
        for n, feature in enumerate(data.get("features", [])):
            try:
                lon, lat = feature["geometry"]["coordinates"][:2]
                props = feature.get("properties") or {}
                places.append(
                    Place(str(props["name"]), str(props.get("kind", "poi")), LonLat(lon, lat))
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise PlacesFileError(
                    f"{places_file}: feature {n} needs a Point and a name: {exc!r}"
                ) from None
    return PlaceIndex(places, _named_streets(streets_file) if streets_file else ())


def _named_streets(path: Path) -> list[tuple[str, LineString]]:
    graph = nx.read_graphml(path)
    nodes = graph.nodes
    return [
        (str(data["name"]), LineString([_xy(nodes[u]), _xy(nodes[v])]))
        for u, v, data in graph.edges(data=True)
        if data.get("name") and u != v
    ]


def _xy(node: dict[str, Any]) -> tuple[float, float]:
    return float(node["x"]), float(node["y"])


def load_roster(path: Path, areas: AreaIndex, *, zone: str, today: datetime) -> Roster:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tz = ZoneInfo(zone)
    try:
        teams = [
            Team(
                TeamId(str(t["id"])),
                str(t.get("name", t["id"])),
                frozenset(AreaId(str(a)) for a in t["areas"]),
            )
            for t in data.get("teams", [])
        ]
        shifts = [s for entry in data.get("shifts", []) for s in _shifts(entry, tz, today)]
    except (KeyError, TypeError, ValueError) as exc:
        raise RosterError(f"{path}: {exc!r}; see the roster format in dispatch/city.py") from None
    return Roster(teams, shifts, areas)


def _shifts(entry: dict[str, Any], tz: ZoneInfo, today: datetime) -> list[Shift]:
    team = TeamId(str(entry["team"]))
    officers = frozenset(OfficerId(str(o)) for o in entry["officers"])
    if "daily" in entry:
        start_text, end_text = str(entry["daily"]).split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
        local_today = today.astimezone(tz).date()
        shifts = []
        for offset in _DAILY_DAYS:
            day = local_today + timedelta(days=offset)
            begins = datetime.combine(day, start, tz)
            ends = datetime.combine(day + timedelta(days=1 if end <= start else 0), end, tz)
            shifts.append(Shift(team, officers, begins.timestamp(), ends.timestamp()))
        return shifts
    return [Shift(team, officers, _local(entry["start"], tz), _local(entry["end"], tz))]


def _local(value: object, tz: ZoneInfo) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()
