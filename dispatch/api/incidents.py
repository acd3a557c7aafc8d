"""Incidents: intake, dispatcher actions and reads.

Actions become commands in the engine's inbox; the engine applies them in order and is the
only writer of incidents. The API checks the transition table first so that a dispatcher
clicking a button that no longer applies gets a 409 with the reason at once.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import msgspec
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from dispatch.api.state import app_state
from dispatch.api.times import local_iso
from dispatch.core import assignment as orders
from dispatch.core import events as ev
from dispatch.core.model import Incident, Source
from dispatch.core.timeline import TRANSITIONS
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


def _engine(request: Request) -> IncidentStore:
    return app_state(request).store.incidents


def _load(request: Request, incident_id: str) -> Incident:
    incident = _engine(request).incident(incident_id)
    if incident is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return incident


def _view(incident: Incident, zone: str) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(incident)
    view["reported_time"] = local_iso(incident.reported_at, zone)
    return view


def _submit(request: Request, incident: Incident | None, event: ev.Event) -> dict[str, str]:
    if incident is not None and type(event) not in TRANSITIONS[incident.phase]:
        raise HTTPException(
            409,
            f"incident {incident.id} is {incident.phase.value}: {type(event).__name__} does not apply",
        )
    body = {"type": type(event).__name__, **msgspec.to_builtins(event)}
    entry = _engine(request).command(body)
    return {"incident": event.incident, "command": entry}


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
    return _submit(request, None, event)


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
    return _view(_load(request, incident_id), app_state(request).settings.timezone)


@router.post("/api/incidents/{incident_id}/acknowledge", status_code=202)
def acknowledge(incident_id: str, actor: Actor, request: Request) -> dict[str, str]:
    incident = _load(request, incident_id)
    return _submit(request, incident, ev.IncidentAcknowledged(incident.id, by=actor.by))


@router.post("/api/incidents/{incident_id}/assign", status_code=202)
def assign(incident_id: str, assignment: Assignment, request: Request) -> dict[str, str]:
    """Issue an order to one officer, or two (双人执法)."""
    incident = _load(request, incident_id)
    order = orders.order_id(incident.id, app_state(request).clock())
    event = ev.OrderIssued(incident.id, order, tuple(assignment.officers), by=assignment.by)  # type: ignore[arg-type]
    return {**_submit(request, incident, event), "order": order}


@router.post("/api/incidents/{incident_id}/reassign", status_code=202)
def reassign(incident_id: str, actor: Actor, request: Request) -> dict[str, str]:
    incident = _load(request, incident_id)
    return _submit(
        request, incident, ev.ReassignRequested(incident.id, by=actor.by, reason=actor.reason)
    )


@router.post("/api/incidents/{incident_id}/cancel", status_code=202)
def cancel(incident_id: str, actor: Actor, request: Request) -> dict[str, str]:
    incident = _load(request, incident_id)
    return _submit(
        request, incident, ev.IncidentCancelled(incident.id, by=actor.by, reason=actor.reason)
    )


@router.post("/api/incidents/{incident_id}/resolve", status_code=202)
def resolve(incident_id: str, actor: Actor, request: Request) -> dict[str, str]:
    incident = _load(request, incident_id)
    return _submit(
        request, incident, ev.IncidentResolved(incident.id, by=actor.by, result=actor.reason)
    )


@router.post("/api/incidents/{incident_id}/close", status_code=202)
def close(incident_id: str, actor: Actor, request: Request) -> dict[str, str]:
    incident = _load(request, incident_id)
    return _submit(request, incident, ev.IncidentClosed(incident.id, by=actor.by))


@router.get("/api/incidents/{incident_id}/audit")
def audit(incident_id: str, request: Request) -> list[dict[str, str]]:
    """Everything that happened to the incident, with who did it and when."""
    _load(request, incident_id)
    return _engine(request).incident_audit(incident_id)


class Merge(BaseModel):
    into: str = Field(description="the incident this one duplicates")
    by: str


@router.post("/api/incidents/{incident_id}/merge", status_code=202)
def merge(incident_id: str, merge: Merge, request: Request) -> dict[str, str]:
    """Close a duplicate report into the incident it repeats (its clock stops)."""
    incident = _load(request, incident_id)
    target = _load(request, merge.into)
    if target.id == incident.id or target.phase.terminal:
        raise HTTPException(
            409, f"incident {incident.id} cannot merge into {target.id} ({target.phase.value})"
        )
    return _submit(request, incident, ev.DuplicateMerged(incident.id, target.id, by=merge.by))


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
    _load(request, incident_id)
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
    incident = _load(request, incident_id)
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
