"""Downlink payloads: orders as our terminals and the OwnTracks app receive them (pure).

Our terminals get a `dispatch` object on `/dispatch` with the incident's clocks as absolute
epoch times; the OwnTracks app cannot show orders, so it gets the incident as a circular
waypoint named `order:<id>` through `setWaypoints`, which makes the app itself report the
arrival as an `enter` transition, plus a `reportLocation` so its position is fresh now.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

ORDER_FENCE_PREFIX = "order:"


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """Everything a device needs to know about an order."""

    order_id: str
    incident_id: str
    issued: float
    respond_by: float | None
    dispatch_by: float | None
    handle_by: float | None
    priority: int
    category: str
    title: str
    lon: float
    lat: float
    radius_m: float
    team: str | None
    dispatcher: str
    officers: tuple[str, ...]


def dispatch_message(notice: OrderNotice) -> bytes:
    return msgspec.json.encode(
        {
            "_type": "dispatch",
            "order_id": notice.order_id,
            "incident": notice.incident_id,
            "issued": int(notice.issued),
            "respond_by": _epoch(notice.respond_by),
            "dispatch_by": _epoch(notice.dispatch_by),
            "handle_by": _epoch(notice.handle_by),
            "priority": notice.priority,
            "category": notice.category,
            "title": notice.title,
            "lat": round(notice.lat, 7),
            "lon": round(notice.lon, 7),
            "crs": "wgs84",
            "rad": int(notice.radius_m),
            "team": notice.team,
            "dispatcher": notice.dispatcher,
            "officers": list(notice.officers),
        }
    )


def withdrawal_message(order_id: str, reason: str) -> bytes:
    return msgspec.json.encode(
        {"_type": "dispatch", "order_id": order_id, "cancel": True, "reason": reason}
    )


def owntracks_commands(notice: OrderNotice) -> list[bytes]:
    waypoint = {
        "_type": "waypoint",
        "desc": f"{ORDER_FENCE_PREFIX}{notice.order_id}",
        "lat": round(notice.lat, 7),
        "lon": round(notice.lon, 7),
        "rad": int(notice.radius_m),
        "tst": int(notice.issued),
    }
    return [
        msgspec.json.encode(
            {
                "_type": "cmd",
                "action": "setWaypoints",
                "waypoints": {"_type": "waypoints", "waypoints": [waypoint]},
            }
        ),
        msgspec.json.encode({"_type": "cmd", "action": "reportLocation"}),
    ]


def _epoch(value: float | None) -> int | None:
    return None if value is None else int(value)
