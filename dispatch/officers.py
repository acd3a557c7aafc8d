"""Where each officer is and whether they can take an order, from their devices and orders.

An officer's position is the freshest live fix among the devices bound to them; their
availability is the best presence among those devices, unless an order already has them.
"""

from __future__ import annotations

from collections.abc import Iterable

from devices.presence import Presence, presence
from dispatch.city import City
from dispatch.core.assignment import Availability, OfficerState, Recommendation, recommend_officers
from dispatch.core.model import Incident, Phase
from dispatch.core.roster import OfficerId
from dispatch.store import Store
from gis.coords import LonLat

_OCCUPIED = (Phase.DISPATCHED, Phase.EN_ROUTE, Phase.ON_SCENE)
_PRESENCE = {
    Presence.ONLINE: Availability.AVAILABLE,
    Presence.STALE: Availability.STALE,
    Presence.OFFLINE: Availability.OFFLINE,
}
_BEST_FIRST = (Presence.ONLINE, Presence.STALE, Presence.OFFLINE)


def officer_positions(
    store: Store, *, now: float, stale_after_s: float, offline_after_s: float
) -> dict[OfficerId, tuple[Presence, LonLat]]:
    """Each officer's best presence across their devices, and that device's last position."""
    bindings = store.bindings()
    keys = [f"{b.officer}/{b.device}" for b in bindings.values()]
    best: dict[OfficerId, tuple[int, int, LonLat]] = {}
    for snapshot in store.device_snapshots(keys):
        record = snapshot.record
        if "fix_at" not in record:
            continue
        officer = OfficerId(snapshot.device.split("/", 1)[0])
        seen = presence(
            snapshot.last_seen_at,
            snapshot.connection,
            now=now,
            stale_after_s=stale_after_s,
            offline_after_s=offline_after_s,
        )
        rank, fix_at = _BEST_FIRST.index(seen), int(record["fix_at"])
        current = best.get(officer)
        if current is None or (rank, -fix_at) < (current[0], -current[1]):
            best[officer] = (rank, fix_at, LonLat(float(record["lon"]), float(record["lat"])))
    return {officer: (_BEST_FIRST[rank], point) for officer, (rank, _at, point) in best.items()}


def officer_states(
    store: Store,
    incidents: Iterable[Incident],
    *,
    now: float,
    stale_after_s: float,
    offline_after_s: float,
) -> dict[OfficerId, OfficerState]:
    """Candidates for recommendation: busy while an order has them, else by presence."""
    occupied = {
        officer
        for incident in incidents
        if incident.phase in _OCCUPIED and incident.order is not None
        for officer in incident.order.officers
    }
    positions = officer_positions(
        store, now=now, stale_after_s=stale_after_s, offline_after_s=offline_after_s
    )
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
