"""Hotline work orders (12345 and 8890, 市民热线): the incident a work order opens, the result
the center reports back once that incident has ended, and how often it tries (pure).

A work order names its place in the datum it declares (hotline systems draw on Amap or Baidu
maps: GCJ-02 or BD-09), brought into WGS-84 here, and its category in the hotline's words,
mapped onto the catalogue (`PolicyBook.category_named`: a key, a label, or an alias the policy
file gives). It is known by its hotline and ticket id (`WorkOrder.ticket`): the same ticket
again is the same incident.

The result (`ClosingNotice`) follows from the ended incident and its audit: how it ended
(closed, cancelled, merged into another), when, the handling result or the reason, and how
each milestone of the 1/3/15 clock went (`supervision.outcome_of`). A result the hotline does
not take is tried again after `retry_delay_s`, doubling up to a cap, a bounded number of times.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from dispatch.core.events import IncidentReported
from dispatch.core.model import Incident, IncidentId, Source
from dispatch.core.policy import PolicyBook
from dispatch.core.supervision import outcome_of
from gis.coords import Datum, to_wgs84

HOTLINES = (Source.HOTLINE_12345, Source.HOTLINE_8890)
TITLE_MAX = 200
# The events that end an incident, as the engine's audit names them.
_ENDINGS = frozenset({"IncidentClosed", "IncidentCancelled", "DuplicateMerged"})
RETRY_CAP_S = 600.0


@dataclass(frozen=True, slots=True)
class WorkOrder:
    ticket_id: str
    source: Source  # one of HOTLINES
    category: str  # in the hotline's words
    lon: float
    lat: float
    datum: Datum  # declared by the hotline: there is no safe default
    address: str = ""
    text: str = ""
    priority: int = 3
    caller_name: str = ""
    caller_phone: str = ""

    @property
    def ticket(self) -> str:
        """How the center knows the order: ticket ids are the hotline's own, so two hotlines
        may give the same one."""
        return f"{self.source.value}:{self.ticket_id}"


def incident_report(
    order: WorkOrder, incident: IncidentId, policies: PolicyBook, *, by: str
) -> IncidentReported:
    """The report that opens the order's incident. Raises UnknownCategory (listing the
    catalogue) or CoordinateError (a point no datum holds)."""
    return IncidentReported(
        incident,
        policies.category_named(order.category),
        order.priority,
        to_wgs84(order.lon, order.lat, order.datum),
        order.source,
        title=_title(order),
        by=by,
        address=order.address.strip(),
        description=order.text.strip(),
        caller_name=order.caller_name.strip(),
        caller_phone=order.caller_phone.strip(),
        ticket=order.ticket,
    )


def _title(order: WorkOrder) -> str:
    title = "：".join(part for part in (order.address.strip(), order.text.strip()) if part)
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class ClosingNotice:
    """What the hotline is told once the incident of its ticket has ended."""

    ticket_id: str
    source: str
    incident_id: str
    outcome: str  # closed, cancelled or merged
    closed_at: float
    result: str
    milestones: Mapping[str, str]  # respond, turn_out, arrive, handle → on_time, late, ...

    def body(self, zone: tzinfo) -> dict[str, Any]:
        """The JSON the hotline receives, the time also in the center's zone."""
        return {
            "ticket_id": self.ticket_id,
            "source": self.source,
            "incident_id": self.incident_id,
            "outcome": self.outcome,
            "result": self.result,
            "closed_at": self.closed_at,
            "closed_time": datetime.fromtimestamp(self.closed_at, zone).isoformat("T", "seconds"),
            "milestones": dict(self.milestones),
        }


def closing_notice(
    ticket_id: str,
    source: str,
    incident: Incident,
    records: Iterable[Mapping[str, Any]],
    *,
    seen_at: float,
    zone: tzinfo,
) -> ClosingNotice | None:
    """The result of an ended incident from its audit records (None while it is open).
    Without the ending's record (an audit lost), it ended when it was `seen_at` ended."""
    if not incident.phase.terminal:
        return None
    records = list(records)
    events = sorted(
        (r for r in records if r.get("kind") == "event"), key=lambda r: float(r.get("at", 0))
    )
    ending = next((r for r in reversed(events) if r.get("event") in _ENDINGS), None)
    ended = _detail(ending)
    resolved = next((r for r in reversed(events) if r.get("event") == "IncidentResolved"), None)
    if incident.merged_into is not None:
        result = f"merged into {incident.merged_into}"
    elif ending is not None and ending.get("event") == "IncidentCancelled":
        result = str(ended.get("reason") or "")
    else:
        result = str(_detail(resolved).get("result") or "")
    outcome = outcome_of(incident, records, area=None, zone=zone)
    return ClosingNotice(
        ticket_id,
        source,
        incident.id,
        incident.phase.value,
        float(ending["at"]) if ending is not None else seen_at,
        result,
        {m.milestone.value: m.status.value for m in outcome.milestones},
    )


def _detail(record: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if record is None:
        return {}
    detail = record.get("detail") or "{}"
    return dict(json.loads(detail)) if isinstance(detail, str) else detail


def retry_delay_s(attempts: int, first_s: float) -> float:
    """How long to wait after the `attempts`-th failed delivery: `first_s`, doubling, at most
    RETRY_CAP_S."""
    return float(min(first_s * 2 ** (attempts - 1), RETRY_CAP_S))
