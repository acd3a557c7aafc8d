"""Departure and arrival seen in an officer's fixes, for officers with an order (pure).

For each officer on an active order the watcher keeps a circular fence around the incident
and the point where the order found them. Two consecutive fixes farther than `departure_m`
from that point are a departure; entering the fence is an arrival. The same rules as the
OwnTracks app's own fence (accuracy gating, hysteresis) apply, so a phone and the server agree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from dispatch.core import events as ev
from dispatch.core.model import Incident, IncidentId, OrderId, Phase
from dispatch.core.roster import OfficerId
from gis.coords import LonLat
from gis.geofence import Crossing, Fence, FenceState, has_departed, observe

_WATCHED = (Phase.DISPATCHED, Phase.EN_ROUTE)


def officers_on_the_way(incidents: Iterable[Incident]) -> list[tuple[IncidentId, OfficerId]]:
    """(incident, officer) for every officer with an order who is not yet on scene."""
    return [
        (incident.id, officer)
        for incident in incidents
        if incident.phase in _WATCHED and incident.order is not None
        for officer in incident.order.officers
    ]


def silent_officers(
    incidents: Iterable[Incident], offline: Collection[OfficerId]
) -> list[ev.OfficerWentOffline]:
    """Officers on their way to an incident whose every device has gone offline (by silence:
    a phone in a dead zone sends no will): their orders go back for re-dispatch."""
    return [
        ev.OfficerWentOffline(incident, officer)
        for incident, officer in officers_on_the_way(incidents)
        if officer in offline
    ]


@dataclass
class _Watch:
    incident: IncidentId
    order: OrderId
    fence: Fence
    state: FenceState = field(default_factory=FenceState)
    start: LonLat | None = None
    recent: list[tuple[LonLat, float | None]] = field(default_factory=list)
    departed: bool = False
    arrived: bool = False


class SceneWatcher:
    def __init__(self, departure_m: float = 100.0) -> None:
        self.departure_m = departure_m
        self._watches: dict[tuple[OfficerId, IncidentId], _Watch] = {}

    def sync(self, incidents: Iterable[Incident], radius_m: Callable[[Incident], float]) -> None:
        """Watch exactly the officers of orders who are not yet on scene."""
        wanted: dict[tuple[OfficerId, IncidentId], Incident] = {}
        for incident in incidents:
            order = incident.order
            if order is None:
                continue
            if incident.phase in _WATCHED:
                for officer in order.officers:
                    wanted[(officer, incident.id)] = incident
            elif incident.phase is Phase.ON_SCENE:  # the partner of a two-officer order
                for officer in order.officers:
                    if officer not in order.on_scene:
                        wanted[(officer, incident.id)] = incident
        for key in list(self._watches):
            current = wanted.get(key)
            if (
                current is None
                or current.order is None
                or self._watches[key].order != current.order.id
            ):
                del self._watches[key]
        for key, incident in wanted.items():
            if key not in self._watches and incident.order is not None:
                fence = Fence.circle(incident.location, radius_m(incident))
                watch = _Watch(incident.id, incident.order.id, fence)
                watch.departed = incident.phase is Phase.EN_ROUTE
                self._watches[key] = watch

    def __bool__(self) -> bool:
        return bool(self._watches)

    def observe(
        self, officer: OfficerId, point: LonLat, at: float, acc_m: float | None = None
    ) -> list[ev.Event]:
        found: list[ev.Event] = []
        for (watched, _), watch in self._watches.items():
            if watched != officer:
                continue
            watch.state, crossings = observe(watch.fence, watch.state, point, at, acc_m=acc_m)
            if any(c.kind is Crossing.ENTER for c in crossings) and not watch.arrived:
                watch.arrived = True
                found.append(ev.OfficerArrived(watch.incident, watch.order, officer, via="gps"))
                continue
            if watch.departed or watch.arrived:  # leaving the scene is not turning out
                continue
            if watch.start is None:
                watch.start = point
            watch.recent = [*watch.recent[-1:], (point, acc_m)]
            if has_departed(watch.start, watch.recent, self.departure_m):
                watch.departed = True
                found.append(ev.OfficerDeparted(watch.incident, watch.order, officer, via="gps"))
        return found
