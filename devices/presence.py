"""Device presence from last-seen time, helped by explicit connection reports.

OwnTracks' will is QoS 0 and its keepalive can be an hour, so silence is the main signal;
an explicit `conn` offline report or an OwnTracks `lwt` marks the device offline at once,
until anything newer arrives from it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Presence(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


def presence(
    last_seen_at: float | None,
    connection: dict[str, Any] | None,
    *,
    now: float,
    stale_after_s: float,
    offline_after_s: float,
) -> Presence:
    """Presence at `now` from the last receive time and the last conn/lwt record."""
    if last_seen_at is None:
        return Presence.OFFLINE
    if connection is not None:
        reported_offline = connection.get("_type") == "lwt" or connection.get("online") is False
        if reported_offline and connection.get("rx", 0.0) >= last_seen_at:
            return Presence.OFFLINE
    silent_s = now - last_seen_at
    if silent_s >= offline_after_s:
        return Presence.OFFLINE
    if silent_s >= stale_after_s:
        return Presence.STALE
    return Presence.ONLINE
