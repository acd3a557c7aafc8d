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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from dispatch.core.roster import OfficerId, Roster, RosterError, Shift, Team, TeamId
from gis.areas import AreaId, AreaIndex, load_areas
from gis.routing import StraightLine, StreetGraph, TravelTimes

_DAILY_DAYS = range(-1, 8)


@dataclass(frozen=True)
class City:
    areas: AreaIndex
    roster: Roster
    travel: TravelTimes


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
) -> City:
    areas = AreaIndex(
        load_areas(areas_file, datum=areas_datum, id_field=id_field, name_field=name_field)
    )
    roster = load_roster(roster_file, areas, zone=zone, today=today)
    travel: TravelTimes = StreetGraph.from_graphml(streets_file) if streets_file else StraightLine()
    return City(areas, roster, travel)


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
