"""Incidents: intake, dispatcher actions and reads.

Actions become commands in the engine's inbox; the engine applies them in order and is the
only writer of incidents. The API asks the timeline first (`timeline.check`) so that a
dispatcher clicking a button that no longer applies gets a 409 with the reason at once; each
action is a row of `ACTIONS`. Errors become HTTP answers in `dispatch.api.errors`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import msgspec
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from dispatch.api.state import app_state
from dispatch.api.times import local_iso
from dispatch.core import assignment as orders
from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.center import UnknownIncident
from dispatch.core.model import Incident, IncidentId, Source
from dispatch.core.timeline import TimelineError
from dispatch.evidence.build import build_package
from dispatch.evidence.collect import collect
from dispatch.officers import officer_states, recommend_for
from dispatch.store import IncidentStore
from gis.coords import Datum, to_wgs84

router = APIRouter(tags=["incidents"])


class NewIncident(BaseModel):
    category: str = Field(examples=["street_vending"])
    priority: int = Field(3, ge=1, le=4, description="1 most urgent")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Datum = Datum.WGS84
    source: Source = Source.HOTLINE_12345
    title: str = ""
    team: str | None = None


class Actor(BaseModel):
    by: str = Field(description="the dispatcher's or officer's login")
    reason: str = ""


class Assignment(BaseModel):
    officers: list[str] = Field(min_length=1, max_length=2, description="two for 双人执法")
    by: str


class Merge(BaseModel):
    into: str = Field(description="the incident this one duplicates")
    by: str


def _engine(request: Request) -> IncidentStore:
    return app_state(request).store.incidents


def _incident_or_raise(request: Request, incident_id: str) -> Incident:
    incident = _engine(request).incident(incident_id)
    if incident is None:
        raise UnknownIncident(IncidentId(incident_id))
    return incident


def _view(incident: Incident, zone: str) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(incident)
    view["reported_time"] = local_iso(incident.reported_at, zone)
    return view


def _submit(request: Request, event: ev.Event) -> dict[str, str]:
    body = {"type": type(event).__name__, **msgspec.to_builtins(event)}
    entry = _engine(request).command(body)
    reply = {"incident": event.incident, "command": entry}
    if isinstance(event, ev.OrderIssued):
        reply["order"] = event.order  # the dispatcher follows the new order by its id
    return reply


@router.post("/api/incidents", status_code=202)
def report_incident(new: NewIncident, request: Request) -> dict[str, str]:
    """Open an incident; its clock starts when the engine takes it (milliseconds later)."""
    stamp = time.strftime("%Y%m%d", time.gmtime())
    incident_id = f"INC-{stamp}-{uuid.uuid4().hex[:6].upper()}"
    point = to_wgs84(new.lon, new.lat, new.crs)
    event = ev.IncidentReported(
        incident_id,  # type: ignore[arg-type]
        new.category,
        new.priority,
        point,
        new.source,
        title=new.title,
        team=new.team,  # type: ignore[arg-type]
        by="api",
    )
    return _submit(request, event)


@router.get("/api/incidents")
def list_incidents(request: Request, open_only: bool = True) -> list[dict[str, Any]]:
    """Incidents, most recent first; by default only those not closed, cancelled or merged."""
    state = app_state(request)
    incidents = _engine(request).load_incidents().values()
    shown = [i for i in incidents if not (open_only and i.phase.terminal)]
    shown.sort(key=lambda i: -i.reported_at)
    return [_view(i, state.settings.timezone) for i in shown]


@router.get("/api/incidents/{incident_id}")
def get_incident(incident_id: str, request: Request) -> dict[str, Any]:
    return _view(_incident_or_raise(request, incident_id), app_state(request).settings.timezone)


@router.get("/api/incidents/{incident_id}/audit")
def audit(incident_id: str, request: Request) -> list[dict[str, str]]:
    """Everything that happened to the incident, with who did it and when."""
    _incident_or_raise(request, incident_id)
    return _engine(request).incident_audit(incident_id)


Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Action(Generic[Body]):
    """A dispatcher's action: POST /api/incidents/{id}/`name` with a `body`, answered 202."""

    name: str
    body: type[Body]
    event: Callable[[Request, Incident, Body], ev.Event]
    doc: str | None = None


def _assign(request: Request, incident: Incident, assignment: Assignment) -> ev.Event:
    order = orders.order_id(incident.id, app_state(request).clock())
    return ev.OrderIssued(incident.id, order, tuple(assignment.officers), by=assignment.by)  # type: ignore[arg-type]


def _merge(request: Request, incident: Incident, merge: Merge) -> ev.Event:
    target = _incident_or_raise(request, merge.into)
    if target.id == incident.id or target.phase.terminal:
        raise TimelineError(
            f"incident {incident.id} cannot merge into {target.id} ({target.phase.value})"
        )
    return ev.DuplicateMerged(incident.id, target.id, by=merge.by)


ACTIONS: tuple[Action[Any], ...] = (
    Action("acknowledge", Actor, lambda _, i, a: ev.IncidentAcknowledged(i.id, by=a.by)),
    Action("assign", Assignment, _assign, "Issue an order to one officer, or two (双人执法)."),
    Action("reassign", Actor, lambda _, i, a: ev.ReassignRequested(i.id, by=a.by, reason=a.reason)),
    Action("cancel", Actor, lambda _, i, a: ev.IncidentCancelled(i.id, by=a.by, reason=a.reason)),
    Action("resolve", Actor, lambda _, i, a: ev.IncidentResolved(i.id, by=a.by, result=a.reason)),
    Action("close", Actor, lambda _, i, a: ev.IncidentClosed(i.id, by=a.by)),
    Action(
        "merge",
        Merge,
        _merge,
        "Close a duplicate report into the incident it repeats (its clock stops).",
    ),
)


def _route(action: Action[Any]) -> None:
    def act(incident_id: str, body: BaseModel, request: Request) -> dict[str, str]:
        incident = _incident_or_raise(request, incident_id)
        event = action.event(request, incident, body)
        timeline.check(incident, event)
        return _submit(request, event)

    act.__annotations__["body"] = action.body  # the model FastAPI parses and documents
    router.add_api_route(
        f"/api/incidents/{{incident_id}}/{action.name}",
        act,
        methods=["POST"],
        status_code=202,
        name=action.name,
        description=action.doc,
    )


for _action in ACTIONS:
    _route(_action)


class OrderAck(BaseModel):
    officer: str
    status: Literal["accepted", "rejected", "enroute", "arrived", "done"]
    reason: str = ""


@router.post("/api/orders/{order_id}/ack", status_code=202)
def acknowledge_order(order_id: str, ack: OrderAck, request: Request) -> dict[str, str]:
    """An officer's answer from the officer page: the same as an `ack` from a terminal."""
    body = {
        "_type": "ack",
        "order_id": order_id,
        "status": ack.status,
        "tst": int(app_state(request).clock()),
        "reason": ack.reason,
    }
    return {"order": order_id, "command": _engine(request).post("ack", body, officer=ack.officer)}


@router.get("/api/incidents/{incident_id}/evidence", response_class=Response)
def evidence(incident_id: str, request: Request, margin_s: float = 300.0) -> Response:
    """The incident's signed evidence package (zip): tracks, chains, clips, timeline, report."""
    state = app_state(request)
    _incident_or_raise(request, incident_id)
    settings = state.settings
    content = collect(
        state.store, settings.archive(), incident_id, now=state.clock(), margin_s=margin_s,
        zone=settings.timezone,
    )  # fmt: skip
    package = build_package(content, settings.signer(), state.clock())
    return Response(
        package,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{incident_id}-evidence.zip"'},
    )


@router.get("/api/incidents/{incident_id}/recommendations")
def recommendations(incident_id: str, request: Request, k: int = 5) -> list[dict[str, Any]]:
    """The best officers for the incident, best first, each with the reason for its rank."""
    state = app_state(request)
    if state.city is None:
        raise HTTPException(
            503, "no city is configured: set YIWANG_AREAS_FILE and YIWANG_ROSTER_FILE"
        )
    incident = _incident_or_raise(request, incident_id)
    incidents = _engine(request).load_incidents().values()
    now = state.clock()
    positions = state.store.officer_positions(
        now=now,
        stale_after_s=state.settings.stale_after_s,
        offline_after_s=state.settings.offline_after_s,
    )
    states = officer_states(positions, incidents)
    exclude = incident.past_officers
    return [
        msgspec.to_builtins(r)
        for r in recommend_for(state.city, states, incident, now=now, exclude=exclude, k=k)
    ]
