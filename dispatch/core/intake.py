"""Where a reported incident lies: its innermost area, the team answering for that area and,
when the report names no address, the nearest named place or street (pure).

Jurisdiction is a policy: a report from a point outside every area of the city is refused
(`OutsideJurisdiction`, 422 at the API, counted as refused on the hotline) rather than opened
without an owning team, because an incident nobody owns would run its 1/3/15 clock unseen.
The engine places every report it takes (`placed`), whichever channel sent it, so a citizen's
report or a sensor's alarm carries its area and team as a dispatcher's does.
"""

from __future__ import annotations

from dataclasses import replace

from dispatch.core.events import IncidentReported
from dispatch.core.roster import Roster
from gis.areas import Area
from gis.coords import LonLat
from gis.places import PlaceIndex


class OutsideJurisdiction(ValueError):  # noqa: N818 - reads as what the point is
    """A point no area of the city covers; the message names the point."""

    def __init__(self, point: LonLat) -> None:
        super().__init__(
            f"outside jurisdiction: ({point.lon:.6f}, {point.lat:.6f}) lies in no area of "
            "the city, so no team would answer for it"
        )


def area_or_raise(roster: Roster, point: LonLat) -> Area:
    """The innermost area covering `point`; OutsideJurisdiction if none does."""
    area = roster.areas.area_for(point)
    if area is None:
        raise OutsideJurisdiction(point)
    return area


def placed(
    report: IncidentReported, roster: Roster, places: PlaceIndex | None = None
) -> IncidentReported:
    """The report with its area and area name, unless it names them the owning team and the
    address (nearest named street and place). A point outside every area keeps `area` None
    (channels that cannot be refused, such as an officer's SOS, still open an incident)."""
    if not report.address and places is not None:
        report = replace(report, address=places.address_of(report.location))
    area = roster.areas.area_for(report.location)
    if area is None:
        return report
    team = report.team
    if team is None:
        owner = roster.team_for_area(area.id)
        team = None if owner is None else owner.id
    return replace(report, area=area.id, area_name=area.name, team=team)
