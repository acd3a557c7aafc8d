"""Officer recommendation: who should take an incident, in order, and why.

The team that answers for the incident's area comes first, then the teams of neighbouring
areas. Only officers on duty, online and free are candidates, and never one already tried for
this incident. Within a tier, officers rank by travel time plus a penalty per open order, so a
slightly farther free officer beats a nearer busy one. Travel time comes from whatever
`TravelTimes` the center runs with (street graph, or straight line).

A dispatcher may choose someone else, but an order only goes to officers who can answer it:
`check_crew` refuses an officer the roster does not know, one off duty, or one whose devices
are not online, before the order counts as the center's response. Every order goes out with
`crew_eta_s`, the soonest its officers can be there by the same travel times: supervision
reads it to tell a breach of travel from one of people.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from dispatch.core.model import IncidentId, OrderId
from dispatch.core.roster import OfficerId, Roster, TeamId
from gis.coords import LonLat, haversine_m
from gis.routing import TravelTimes


class Availability(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"  # on an order that takes all their attention
    STALE = "stale"  # position too old to trust
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class OfficerState:
    officer: OfficerId
    position: LonLat
    availability: Availability
    open_orders: int = 0
    skills: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Recommendation:
    rank: int
    officer: OfficerId
    team: TeamId
    eta_s: float
    distance_m: float
    score_s: float
    reason: str


def recommend_officers(
    location: LonLat,
    area_id: str,
    *,
    roster: Roster,
    officers: Mapping[OfficerId, OfficerState],
    travel: TravelTimes,
    now: float,
    k: int = 5,
    exclude: Iterable[OfficerId] = (),
    skills: frozenset[str] = frozenset(),
    load_penalty_s: float = 120.0,
) -> list[Recommendation]:
    """The best `k` officers for an incident at `location` in `area_id`, best first."""
    excluded = set(exclude)
    owner = roster.team_for_area(area_id)
    tiers: list[dict[TeamId, str]] = [{owner.id: "owning team"} if owner is not None else {}, {}]
    for neighbour in roster.areas.neighbours(area_id):
        fallback = roster.team_for_area(neighbour.id)
        if fallback is not None and fallback.id not in tiers[0]:
            tiers[1].setdefault(fallback.id, f"neighbouring area {neighbour.name} (fallback)")
    ranked: list[Recommendation] = []
    for teams in tiers:
        pool = [
            (team, officers[o])
            for team in teams
            for o in roster.on_duty(team, now)
            if o in officers
            and o not in excluded
            and officers[o].availability is Availability.AVAILABLE
            and skills <= officers[o].skills
        ]
        if not pool:
            continue
        etas = travel.travel_times_to(location, [state.position for _, state in pool])
        scored = sorted(
            (
                float(eta) + state.open_orders * load_penalty_s,
                state.officer,
                team,
                state,
                float(eta),
            )
            for (team, state), eta in zip(pool, etas, strict=True)
            if eta != float("inf")
        )
        for score, _officer, team, state, eta in scored:
            distance = haversine_m(state.position, location)
            ranked.append(
                Recommendation(
                    rank=len(ranked) + 1,
                    officer=state.officer,
                    team=team,
                    eta_s=eta,
                    distance_m=distance,
                    score_s=score,
                    reason=(
                        f"{teams[team]}; ETA {eta / 60:.1f} min, {distance:.0f} m away, "
                        f"{state.open_orders} open orders"
                    ),
                )
            )
            if len(ranked) == k:
                return ranked
    return ranked


def crew_eta_s(
    location: LonLat,
    crew: Iterable[OfficerId],
    positions: Mapping[OfficerId, LonLat],
    travel: TravelTimes,
) -> float | None:
    """Seconds until the first officer of `crew` can be at `location`, from where each was
    last seen (as the recommendations rank them); None when none has a position or a route."""
    known = [positions[o] for o in crew if o in positions]
    if not known:
        return None
    soonest = float(min(travel.travel_times_to(location, known)))
    return None if soonest == float("inf") else soonest


class CrewRefused(ValueError):  # noqa: N818 - reads as what happened
    """An order that names an officer who cannot take it now; the message says who and why,
    and `reasons` the same as (officer, why) codes a screen words in its own language."""

    code = "crew_refused"

    def __init__(self, reasons: Sequence[tuple[OfficerId, str]]) -> None:
        words = "; ".join(f"{officer} {_WHY[why]}" for officer, why in reasons)
        super().__init__(f"no order issued: {words}")
        self.params = {"officers": [{"officer": o, "why": why} for o, why in reasons]}


_WHY = {
    "named_twice": "is named twice",
    "not_on_roster": "is not an officer of the roster",
    "off_duty": "is off duty",
    "no_device": "has no device that has reported",
    "offline": "is offline",
    "stale": "has not been heard from lately (position stale)",
}


def check_crew(
    officers: Sequence[OfficerId],
    *,
    roster: Roster,
    availability: Mapping[OfficerId, Availability],
    now: float,
) -> None:
    """Raise CrewRefused unless every officer of an order is on the roster, on duty at `now`
    and online (`availability` by their devices' presence; an officer with no device heard
    from is missing). A busy officer is online: the dispatcher may add to their load."""
    reasons = [(o, "named_twice") for o in dict.fromkeys(officers) if officers.count(o) > 1]
    for officer in dict.fromkeys(officers):
        why = _why_unavailable(officer, roster, availability.get(officer), now)
        if why is not None:
            reasons.append((officer, why))
    if reasons:
        raise CrewRefused(reasons)


def _why_unavailable(
    officer: OfficerId, roster: Roster, availability: Availability | None, now: float
) -> str | None:
    if officer not in roster.officers:
        return "not_on_roster"
    if not roster.duty_teams(officer, now):
        return "off_duty"
    if availability is None:
        return "no_device"
    if availability is Availability.OFFLINE:
        return "offline"
    if availability is Availability.STALE:
        return "stale"
    return None


def choose_crew(
    recommendations: Sequence[Recommendation], *, two_officers: bool
) -> tuple[OfficerId, ...] | None:
    """The officers an automatic order goes to: the best one, or the best two under the
    two-officer rule (双人执法); None when there are not enough candidates."""
    size = 2 if two_officers else 1
    if len(recommendations) < size:
        return None
    return tuple(r.officer for r in recommendations[:size])


def order_id(incident: IncidentId, issued_at: float) -> OrderId:
    """The one order-id scheme: `O-` and eight hex digits, from the incident and the issue
    time to the millisecond (one incident never issues two orders in the same millisecond),
    so a step redone after a crash issues the same id."""
    digest = hashlib.sha256(f"{incident}@{issued_at:.3f}".encode()).hexdigest()
    return OrderId(f"O-{digest[:8].upper()}")
