"""Whether each officer can take an order, and whom to recommend for an incident.

An officer's availability is the best presence among their devices (dispatch.store.presence
reads it), unless an order already has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from devices.presence import Presence
from dispatch.city import City
from dispatch.core.assignment import Availability, OfficerState, Recommendation, recommend_officers
from dispatch.core.model import Incident, Phase
from dispatch.core.roster import OfficerId
from gis.coords import LonLat

_OCCUPIED = (Phase.DISPATCHED, Phase.EN_ROUTE, Phase.ON_SCENE)
_PRESENCE = {
    Presence.ONLINE: Availability.AVAILABLE,
    Presence.STALE: Availability.STALE,
    Presence.OFFLINE: Availability.OFFLINE,
}


def officer_states(
    positions: Mapping[OfficerId, tuple[Presence, LonLat]], incidents: Iterable[Incident]
) -> dict[OfficerId, OfficerState]:
    """Candidates for recommendation: busy while an order has them, else by presence."""
    occupied = {
        officer
        for incident in incidents
        if incident.phase in _OCCUPIED and incident.order is not None
        for officer in incident.order.officers
    }
    return {
        officer: OfficerState(
            officer, point, Availability.BUSY if officer in occupied else _PRESENCE[seen]
        )
        for officer, (seen, point) in positions.items()
    }


def recommend_for(
    city: City,
    states: dict[OfficerId, OfficerState],
    incident: Incident,
    *,
    now: float,
    exclude: Iterable[OfficerId] = (),
    k: int = 5,
) -> list[Recommendation]:
    """Recommendations for an incident in the city, or none when it lies outside every area."""
    area = city.areas.area_for(incident.location)
    if area is None:
        return []
    return recommend_officers(
        incident.location,
        area.id,
        roster=city.roster,
        officers=states,
        travel=city.travel,
        now=now,
        k=k,
        exclude=exclude,
    )
