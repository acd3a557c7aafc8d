"""Where an officer stands to an order: their newest position, the street route from there to
the incident, its length and the travel time, as GET /api/orders/mine gives them. Pure: the
caller reads the fix and passes the city's travel times."""

from __future__ import annotations

import math
from typing import Any

from gis.coords import LonLat
from gis.routing import TravelTimes, route_between

NOWHERE: dict[str, Any] = {"me": None, "route": None, "distance_m": None, "eta_s": None}


def whereabouts(
    travel: TravelTimes, fix: tuple[LonLat, float] | None, destination: LonLat
) -> dict[str, Any]:
    """`me` ({lon, lat, fix_at}), `route` ([[lon, lat], …] from the officer to `destination`),
    `distance_m` along it and `eta_s`; all None before the officer's first fix, and all but
    `me` None where the streets do not connect the two."""
    if fix is None:
        return dict(NOWHERE)
    (lon, lat), fix_at = fix
    me = {"lon": lon, "lat": lat, "fix_at": fix_at}
    way = route_between(travel, LonLat(lon, lat), destination)
    if not math.isfinite(way.eta_s):
        return {**NOWHERE, "me": me}
    return {
        "me": me,
        "route": [[p.lon, p.lat] for p in way.path],
        "distance_m": round(way.distance_m),
        "eta_s": round(way.eta_s, 1),
    }
