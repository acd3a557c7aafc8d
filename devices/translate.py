"""Inbox entries → command-center events (pure).

The ingest workers put what devices say into the engine's inbox as it came (`ack`,
`transition`, `sos`, `conn`, `lwt`); the API puts dispatcher commands there. This module says
what each means for the incidents: an `ack` with status `enroute` is a departure, an OwnTracks
`enter` of the fence named `order:<id>` is an arrival, an SOS opens an incident, a device
going offline leaves its officer's orders without an officer.

An alarm is never lost for its position: an SOS without a usable one (none, no fix, refused
by the ingest, not convertible) opens its incident at the officer's last known position,
and says so in its title.

An IoT sensor's reading (`iot`) is read back into a `SensorReport`; what it means for the
incidents needs the incidents, and `dispatch.core.sensors` decides it.

Entries are read with the bounds devices' payloads get (`devices.messages.decode_json`): an
entry written before those bounds, or by a faulty writer, is refused with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from devices.downlink import ORDER_FENCE_PREFIX
from devices.messages import PayloadError, decode_json
from dispatch.core import events as ev
from dispatch.core.model import IncidentId, OrderId, Source
from dispatch.core.roster import OfficerId
from dispatch.core.sensors import SensorReport, SensorState
from gis.coords import CoordinateError, Datum, LonLat, check_lonlat, to_wgs84

COMMANDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ev.IncidentReported,
        ev.IncidentAcknowledged,
        ev.OrderIssued,
        ev.OrderAccepted,
        ev.OrderRejected,
        ev.OfficerDeparted,
        ev.OfficerArrived,
        ev.ReassignRequested,
        ev.IncidentResolved,
        ev.IncidentClosed,
        ev.IncidentCancelled,
        ev.DuplicateMerged,
    )
}


@dataclass(frozen=True, slots=True)
class Untranslatable:
    reason: str


@dataclass(frozen=True, slots=True)
class Assignments:
    """What the engine knows of current orders, for resolving device messages."""

    order_incident: Mapping[OrderId, IncidentId]
    officer_orders: Mapping[OfficerId, Sequence[tuple[IncidentId, OrderId]]]


def translate(
    entry_id: str,
    entry: Mapping[str, str],
    assignments: Assignments,
    last_known: LonLat | None = None,
) -> list[ev.Event] | Untranslatable:
    """What the entry means; `last_known` (the officer's last position) places an SOS that
    carries no usable position of its own."""
    kind = entry.get("kind", "")
    body = _body(entry_id, entry)
    if isinstance(body, Untranslatable):
        return body
    officer = OfficerId(entry.get("officer", ""))
    if kind == "command":
        return _command(body)
    if kind == "ack":
        return _ack(body, officer, assignments)
    if kind == "transition":
        return _transition(body, officer, assignments)
    if kind == "sos":
        return _sos(entry_id, body, officer, last_known)
    if kind in ("conn", "lwt"):
        if kind == "conn" and body.get("online", True):
            return []
        return [
            ev.OfficerWentOffline(i, officer)
            for i, _ in assignments.officer_orders.get(officer, ())
        ]
    return Untranslatable(f"inbox entry {entry_id} has unknown kind {kind!r}")


def sensor_report(entry_id: str, entry: Mapping[str, str]) -> SensorReport | Untranslatable:
    """The reading an `iot` entry holds, as the ingest filed it (devices.sensors)."""
    body = _body(entry_id, entry)
    if isinstance(body, Untranslatable):
        return body
    try:
        report = SensorReport(
            sensor=_text(body, "sensor"),
            sensor_type=_text(body, "sensor_type"),
            state=SensorState(_text(body, "state")),
            value=_number(body, "value"),
            unit=_text(body, "unit"),
            sensor_at=_number(body, "tst"),
            location=LonLat(_number(body, "lon"), _number(body, "lat")),
            place=str(body.get("place") or ""),
        )
        check_lonlat(*report.location)
    except (ValueError, TypeError) as exc:
        return Untranslatable(f"sensor reading {entry_id}: {exc}")
    return report


def _body(entry_id: str, entry: Mapping[str, str]) -> dict[str, object] | Untranslatable:
    try:
        body = decode_json(entry.get("body", "{}"))
    except PayloadError as exc:
        return Untranslatable(f"inbox entry {entry_id} has a body that cannot be used: {exc}")
    if not isinstance(body, dict):
        return Untranslatable(f"inbox entry {entry_id} has a body that is not a JSON object")
    return body


def _text(body: Mapping[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is not a non-empty string")
    return value


def _number(body: Mapping[str, object], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is not a number")
    return float(value)


def _command(body: Mapping[str, object]) -> list[ev.Event] | Untranslatable:
    name = str(body.get("type", ""))
    cls = COMMANDS.get(name)
    if cls is None:
        return Untranslatable(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
    fields = {k: v for k, v in body.items() if k != "type"}
    try:
        event: ev.Event = msgspec.convert(fields, type=cls)
    except msgspec.ValidationError as exc:
        return Untranslatable(f"command {name}: {exc}")
    if isinstance(event, ev.IncidentReported):
        try:
            check_lonlat(*event.location)
        except CoordinateError as exc:
            return Untranslatable(f"command {name}: {exc}")
    return [event]


def _ack(
    body: Mapping[str, object], officer: OfficerId, assignments: Assignments
) -> list[ev.Event] | Untranslatable:
    order = OrderId(str(body.get("order_id", "")))
    incident = assignments.order_incident.get(order)
    if incident is None:
        return Untranslatable(f"ack for order {order!r}, which is not a current order")
    status = body.get("status")
    reason = str(body.get("reason") or "")
    match status:
        case "accepted":
            return [ev.OrderAccepted(incident, order, officer, via="terminal")]
        case "rejected":
            return [ev.OrderRejected(incident, order, officer, reason=reason)]
        case "enroute":
            return [ev.OfficerDeparted(incident, order, officer, via="button")]
        case "arrived":
            return [ev.OfficerArrived(incident, order, officer, via="button")]
        case "done":
            return [ev.IncidentResolved(incident, by=officer, result=reason)]
        case _:
            return []  # "received": delivery confirmation only


def _transition(
    body: Mapping[str, object], officer: OfficerId, assignments: Assignments
) -> list[ev.Event] | Untranslatable:
    desc = str(body.get("desc") or "")
    if body.get("event") != "enter" or not desc.startswith(ORDER_FENCE_PREFIX):
        return []
    order = OrderId(desc.removeprefix(ORDER_FENCE_PREFIX))
    incident = assignments.order_incident.get(order)
    if incident is None:
        return Untranslatable(f"geofence enter for order {order!r}, which is not a current order")
    return [ev.OfficerArrived(incident, order, officer, via="geofence")]


def _sos(
    entry_id: str, body: Mapping[str, object], officer: OfficerId, last_known: LonLat | None
) -> list[ev.Event] | Untranslatable:
    if body.get("cancel"):
        return []
    alarm = str(body.get("alarm") or "sos")
    title = f"{alarm} from officer {officer}"
    own = _sos_position(body)
    if isinstance(own, LonLat):
        location = own
    elif last_known is not None:
        location = last_known
        title += f" (at the last known position: {own})"
    else:
        return Untranslatable(f"SOS from {officer}: {own}, and no position of the officer is known")
    return [
        ev.IncidentReported(
            sos_incident(entry_id),
            category="sos",
            priority=1,
            location=location,
            source=Source.DEVICE_SOS,
            title=title,
            by=officer,
        )
    ]


def sos_incident(entry_id: str) -> IncidentId:
    """The incident an SOS opens: named after its inbox entry, so a replayed entry opens it
    once."""
    return IncidentId(f"SOS-{entry_id}")


def _sos_position(body: Mapping[str, object]) -> LonLat | str:
    """The alarm's own position, or why it has none."""
    if body.get("position_refused"):
        return f"its position was refused ({body['position_refused']})"
    lon, lat = body.get("lon"), body.get("lat")
    if not isinstance(lon, int | float) or not isinstance(lat, int | float):
        return "the alarm carries no position"
    try:
        datum = Datum(str(body.get("crs") or "wgs84"))
    except ValueError:
        return f"unknown crs {body.get('crs')!r}"
    try:
        return to_wgs84(float(lon), float(lat), datum)
    except (CoordinateError, OverflowError) as exc:
        return f"no usable position: {exc}"
