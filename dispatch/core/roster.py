"""Teams, the areas they own, and duty shifts: who answers for a place at a given time.

A team owns areas at any level of the tree. A place belongs to the team owning its innermost
area or, failing that, the nearest ancestor: a team that owns a district answers for every
grid in it that no other team owns. Shifts put officers on duty for a team in [start, end).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NewType

from gis.areas import AreaId, AreaIndex
from gis.coords import LonLat

OfficerId = NewType("OfficerId", str)
TeamId = NewType("TeamId", str)


@dataclass(frozen=True, slots=True)
class Team:
    id: TeamId
    name: str
    areas: frozenset[AreaId]


@dataclass(frozen=True, slots=True)
class Shift:
    team: TeamId
    officers: frozenset[OfficerId]
    start_at: float
    end_at: float

    def covers(self, at: float) -> bool:
        return self.start_at <= at < self.end_at


class RosterError(ValueError):
    """A roster that contradicts itself; the message names the area, team or shift."""


class Roster:
    def __init__(self, teams: Iterable[Team], shifts: Iterable[Shift], areas: AreaIndex) -> None:
        self.teams = {t.id: t for t in teams}
        self.shifts = tuple(shifts)
        self.areas = areas
        self.officers = frozenset(o for s in self.shifts for o in s.officers)
        self._owner: dict[AreaId, TeamId] = {}
        for team in self.teams.values():
            for area_id in team.areas:
                areas.get(area_id)  # unknown areas fail here, with their id
                other = self._owner.setdefault(area_id, team.id)
                if other != team.id:
                    raise RosterError(f"area {area_id} is owned by both {other} and {team.id}")
        for shift in self.shifts:
            if shift.team not in self.teams:
                raise RosterError(f"a shift names unknown team {shift.team}")
            if shift.end_at <= shift.start_at:
                raise RosterError(f"a shift of {shift.team} ends before it starts")

    def team_for_area(self, area_id: str) -> Team | None:
        """The team answering for `area_id`: its owner or the nearest owned ancestor's."""
        for area in [self.areas.get(area_id), *self.areas.ancestors(area_id)]:
            owner = self._owner.get(area.id)
            if owner is not None:
                return self.teams[owner]
        return None

    def team_for_point(self, point: LonLat) -> Team | None:
        area = self.areas.area_for(point)
        return None if area is None else self.team_for_area(area.id)

    def on_duty(self, team: TeamId, at: float) -> list[OfficerId]:
        officers = {o for s in self.shifts if s.team == team and s.covers(at) for o in s.officers}
        return sorted(officers)

    def on_duty_for_area(self, area_id: str, at: float) -> list[OfficerId]:
        team = self.team_for_area(area_id)
        return [] if team is None else self.on_duty(team.id, at)

    def duty_teams(self, officer: OfficerId, at: float) -> list[TeamId]:
        return sorted({s.team for s in self.shifts if officer in s.officers and s.covers(at)})

    def home_team(self, officer: OfficerId, at: float) -> tuple[TeamId | None, bool]:
        """The team an officer answers to at `at` and whether they are on duty: the team of a
        shift covering `at`, else of their next shift, else of their last (so the units board
        groups an officer off duty with the team they work for)."""
        theirs = sorted((s for s in self.shifts if officer in s.officers), key=lambda s: s.start_at)
        for shift in theirs:
            if shift.covers(at):
                return shift.team, True
        upcoming = [s for s in theirs if s.start_at > at]
        if upcoming:
            return upcoming[0].team, False
        return (theirs[-1].team, False) if theirs else (None, False)

    def out_of_area(self, officer: OfficerId, point: LonLat, at: float) -> bool | None:
        """Whether an on-duty officer stands outside every team area they serve now.

        None when the officer is off duty: being elsewhere is then nobody's business.
        """
        teams = self.duty_teams(officer, at)
        if not teams:
            return None
        team = self.team_for_point(point)
        return team is None or team.id not in teams
