"""The screens' feed as a type: what kinds of entries it carries, the compact position row,
and where a reconnecting screen resumes.

Entries are ordered by their stream id (`<ms>-<n>`), which screens hold as their sequence.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from dispatch.core.model import Incident
from dispatch.core.timeline import allowed_actions


class FeedType(StrEnum):
    """What a feed entry is; the page dispatches on it."""

    POSITIONS = "positions"
    INCIDENT = "incident"
    WARNING = "warning"
    ESCALATION = "escalation"
    REDISPATCH = "redispatch"
    PARTNER_MISSING = "partner_missing"
    # A shift ended with grids below their patrol target (巡查不达标).
    PATROL_SHORTFALL = "patrol_shortfall"
    # An IoT sensor silent past its heartbeat.
    SENSOR_SILENT = "sensor_silent"
    # An alert raised, and one acknowledged: the record of dispatch.core.alerts.
    ALERT = "alert"
    ALERT_ACK = "alert_ack"
    # Device messages other than positions, as ingest stored them.
    SOS = "sos"
    TRANSITION = "transition"
    CONN = "conn"
    LWT = "lwt"
    CLIP = "clip"
    ACK = "ack"
    DEVSTAT = "devstat"
    IOT = "iot"  # an IoT sensor's reading
    # Control messages of the WebSocket itself, never stored.
    SNAPSHOT = "snapshot"
    RESYNC = "resync"


def incident_body(incident: Incident) -> dict[str, Any]:
    """An incident as every screen receives it (feed, snapshot, REST): the record and the
    actions the timeline allows it now, so the page shows only those."""
    body: dict[str, Any] = msgspec.to_builtins(incident)
    body["actions"] = list(allowed_actions(incident))
    return body


class PositionRow(msgspec.Struct, array_like=True, frozen=True):
    """One device's live position as the feed carries it: a JSON array, in this order.

    `acc_m` and `cog_deg` are null when the device did not report them.
    """

    device: str
    lon: float
    lat: float
    fix_at: int
    acc_m: float | None = None
    cog_deg: float | None = None
    received_at: float | None = None


POSITION_ROWS = msgspec.json.Decoder(list[PositionRow])


def stream_order(entry_id: str) -> tuple[int, int]:
    """The sort key of a stream id."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def resume_after(since: str | None, oldest_held: str | None) -> str | None:
    """Where a screen that asks for entries after `since` continues: `since` itself while
    the stream still holds what follows it, None when it needs a fresh snapshot (it never
    had one, or entries after `since` were trimmed away)."""
    if since is None:
        return None
    if since == "0-0" or oldest_held is None:
        return since
    return since if stream_order(since) >= stream_order(oldest_held) else None
