"""Downlink payloads: orders as our terminals and the OwnTracks app receive them (pure).

Our terminals get a `dispatch` object on `/dispatch` with the incident's clocks as absolute
epoch times; the OwnTracks app cannot show orders, so it gets the incident as a circular
waypoint named `order:<id>` through `setWaypoints`, which makes the app itself report the
arrival as an `enter` transition, plus a `reportLocation` so its position is fresh now.
Terminals that show or read out text alone (JT/T 808) get the order as one Chinese sentence
set, its clocks as local wall times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

import msgspec

from dispatch.core.policy import CATEGORIES

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


def order_expiry_s(notice: OrderNotice, now: float, minimum_s: float) -> int | None:
    """How long the broker keeps an undelivered order for a device (MQTT 5 message expiry),
    or None (no expiry) for a policy without respond or turn-out deadlines.

    An order matters until its officer must turn out, so it lives to the later of the respond
    and turn-out deadlines; but never less than `minimum_s`: a re-dispatch comes after those
    deadlines have passed, and a terminal offline for a moment must still find its order.
    """
    deadlines = [at for at in (notice.respond_by, notice.dispatch_by) if at is not None]
    if not deadlines:
        return None
    until = max([now + minimum_s, *deadlines])
    return max(1, int(until - now))


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


def order_text(notice: OrderNotice, zone: tzinfo) -> str:
    """The order as a text terminal shows it and reads it aloud, times in `zone`."""
    category = CATEGORIES.get(notice.category, notice.category)
    lines = [
        f"【调度指令】{category}：{notice.title}",
        f"位置：东经{notice.lon:.6f} 北纬{notice.lat:.6f}（WGS-84）",
    ]
    deadlines = (
        ("响应", notice.respond_by),
        ("出勤", notice.dispatch_by),
        ("处置", notice.handle_by),
    )
    for label, due in deadlines:
        if due is not None:
            lines.append(f"{label}时限：{datetime.fromtimestamp(due, zone):%H:%M:%S}")
    lines.append(f"指令号：{notice.order_id}")
    return "\n".join(lines)


def withdrawal_text(order_id: str, reason: str) -> str:
    return f"【撤销指令】指令号：{order_id}" + (f"，原因：{reason}" if reason else "")


def _epoch(value: float | None) -> int | None:
    return None if value is None else int(value)
