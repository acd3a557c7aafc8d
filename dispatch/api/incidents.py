"""Incidents: intake, dispatcher actions and reads.

Actions become commands in the engine's inbox; the engine applies them in order and is the
only writer of incidents. The API asks the timeline first (`timeline.check`) so that a
dispatcher clicking a button that no longer applies gets a 409 with the reason at once, and
the roster before an order (`assignment.check_crew`: on duty and online, or 409, and the
respond milestone stays unmet); each action is a row of `ACTIONS`. Errors become HTTP answers
in `dispatch.api.errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from dispatch.api.answers import ack_body, allowed_answers, check_answer
from dispatch.api.auth import refuse, requested_scope, require, scope_of
from dispatch.api.bodies import RequestBody
from dispatch.api.state import AppState, app_state
from dispatch.api.times import local_iso, parse_time
from dispatch.api.whereabouts import whereabouts
from dispatch.core import assignment as orders
from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.access import Permission, Principal
from dispatch.core.center import UnknownIncident
from dispatch.core.feed import incident_body
from dispatch.core.intake import area_or_raise
from dispatch.core.model import Incident, IncidentId, Milestone, Phase, Source
from dispatch.core.roster import OfficerId
from dispatch.core.timeline import TimelineError
from dispatch.db.history import IncidentFilter
from dispatch.evidence.build import build_package
from dispatch.evidence.collect import collect
from dispatch.officers import officer_states, recommend_for
from dispatch.store import IncidentStore
from gis.coords import Datum, to_wgs84
from gis.routing import StraightLine

router = APIRouter(tags=["incidents"])

Reader = Annotated[Principal, Depends(require(Permission.READ_INCIDENTS))]
Reporter = Annotated[Principal, Depends(require(Permission.REPORT_INCIDENTS))]
Dispatcher = Annotated[Principal, Depends(require(Permission.ACT_ON_INCIDENTS))]
Exporter = Annotated[Principal, Depends(require(Permission.EXPORT_EVIDENCE))]
Officer = Annotated[Principal, Depends(require(Permission.ANSWER_OWN_ORDERS))]


_ID = 64  # the longest id (officer, team, incident, area) a request may name


class NewIncident(RequestBody):
    category: str = Field(
        max_length=_ID, examples=["street_vending"], description="a key of GET /api/policies"
    )
    priority: int | None = Field(
        None, ge=1, le=4, description="1 most urgent; none: the category's (GET /api/categories)"
    )
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Datum = Datum.WGS84
    source: Source = Source.HOTLINE_12345
    title: str = Field("", max_length=200)
    team: str | None = Field(None, max_length=_ID)
    address: str = Field("", max_length=200, description="blank: the nearest named place")
    description: str = Field("", max_length=2000, description="what the caller reported")
    caller_name: str = Field("", max_length=64)
    caller_phone: str = Field("", max_length=32)
    ticket: str = Field(
        "",
        max_length=_ID,
        pattern=r"^[^\x00-\x1f\x7f]*$",  # printable: it becomes part of a key
        description="an external work order (工单号): the same one twice opens one incident",
    )


class Reason(RequestBody):
    reason: str = Field("", max_length=2000)


class RequiredReason(RequestBody):
    """Cancelling or closing ends the incident's clock: the audit keeps why."""

    reason: str = Field(min_length=1, max_length=2000, description="why; never blank")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("a reason is required to cancel or close an incident")
        return reason.strip()


class Assignment(RequestBody):
    officers: list[Annotated[str, Field(min_length=1, max_length=_ID)]] = Field(
        min_length=1, max_length=2, description="two for 双人执法"
    )


class Merge(RequestBody):
    into: str = Field(max_length=_ID, description="the incident this one duplicates")


def _engine(request: Request) -> IncidentStore:
    return app_state(request).store.incidents


def incident_or_raise(request: Request, incident_id: str, caller: Principal) -> Incident:
    """The incident, if it exists and lies in the caller's scope (403 if it does not)."""
    state = app_state(request)
    incident = state.records.incident(incident_id)
    if incident is None:
        raise UnknownIncident(IncidentId(incident_id))
    if not scope_of(caller, state).covers_point(incident.location):
        raise refuse(
            state, caller, f"incident {incident_id}", "the incident is outside your area scope"
        )
    return incident


def actor_of(caller: Principal) -> dict[str, str]:
    """Who is behind an inbox entry, as the engine's audit keeps it."""
    return {"account": caller.account, "role": caller.role.value, "address": caller.address}


def command_body(event: ev.Event) -> dict[str, Any]:
    """An event as the engine's inbox takes it from the API (`translate.COMMANDS`)."""
    return {"type": type(event).__name__, **msgspec.to_builtins(event)}


def new_incident_id(now: float, zone: str) -> IncidentId:
    """`INC-<local date>-XXXXXX`: the date a dispatcher reads on the wall clock, not UTC's."""
    stamp = datetime.fromtimestamp(now, ZoneInfo(zone)).strftime("%Y%m%d")
    return IncidentId(f"INC-{stamp}-{uuid.uuid4().hex[:6].upper()}")


def _view(incident: Incident, zone: str) -> dict[str, Any]:
    view = incident_body(incident)
    view["reported_time"] = local_iso(incident.reported_at, zone)
    return view


def _submit(request: Request, event: ev.Event, caller: Principal) -> dict[str, str]:
    entry = _engine(request).command(command_body(event), actor=actor_of(caller))
    return _submitted(request, event, caller, entry)


def _submitted(request: Request, event: ev.Event, caller: Principal, entry: str) -> dict[str, str]:
    state = app_state(request)
    # Also in the access audit, where auditors list actions by actor and time across incidents.
    state.identity.record(
        caller,
        f"incident:{type(event).__name__}",
        now=state.clock(),
        target=event.incident,
        detail=entry,
    )
    reply = {"incident": event.incident, "command": entry}
    if isinstance(event, ev.OrderIssued):
        reply["order"] = event.order  # the dispatcher follows the new order by its id
    return reply


@router.post(
    "/api/incidents",
    status_code=202,
    responses={200: {"description": "the ticket opened an incident before: its id"}},
)
def report_incident(
    new: NewIncident, request: Request, response: Response, caller: Reporter
) -> dict[str, Any]:
    """Open an incident; its clock starts when the engine takes it (milliseconds later).
    The category is one of the catalogue's (GET /api/categories); 422 lists them otherwise.
    A point in no area of the city is refused (422 "outside jurisdiction"): an incident no
    team owns would run its clock unseen. A `ticket` opens one incident however often it is
    sent: a repeat answers 200 `{"incident": <the first one's id>, "duplicate": true}`."""
    state = app_state(request)
    state.policies.category_or_raise(new.category)
    point = to_wgs84(new.lon, new.lat, new.crs)
    if state.city is not None:
        area_or_raise(state.city.roster, point)
    if not scope_of(caller, state).covers_point(point):
        raise refuse(state, caller, "POST /api/incidents", "the place is outside your area scope")
    event = ev.IncidentReported(
        new_incident_id(state.clock(), state.settings.timezone),
        new.category,
        new.priority or state.policies.priority_of(new.category),
        point,
        new.source,
        title=new.title,
        team=new.team,  # type: ignore[arg-type]
        by=caller.account,
        address=new.address.strip(),
        description=new.description.strip(),
        caller_name=new.caller_name.strip(),
        caller_phone=new.caller_phone.strip(),
        ticket=new.ticket.strip(),
    )
    if not event.ticket:
        return _submit(request, event, caller)
    ticketed = _engine(request).command_once(
        event.ticket, event.incident, command_body(event), actor_of(caller)
    )
    if not ticketed.created:
        response.status_code = 200
        return {"incident": ticketed.incident, "duplicate": True}
    return _submitted(request, event, caller, ticketed.entry)


@router.get("/api/incidents")
def list_incidents(
    request: Request,
    caller: Reader,
    open_only: bool = True,
    phase: Annotated[list[Phase] | None, Query()] = None,
    area: str | None = Query(
        None, max_length=_ID, description="an area inside your scope, and all it holds"
    ),
    team: str | None = Query(None, max_length=_ID),
    officer: str | None = Query(None, max_length=_ID, description="ever ordered to it"),
    category: str | None = Query(None, max_length=_ID),
    source: Source | None = None,
    since: str | None = Query(None, description="reported at or after: epoch s or ISO 8601"),
    until: str | None = Query(None, description="reported before: epoch s or ISO 8601"),
    breached: Annotated[Milestone | None, Query(description="a milestone reached late")] = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[dict[str, Any]]:
    """Incidents in the caller's scope, most recent report first, a page at a time; by default
    only those not closed, cancelled or merged. Closed ones come from the history."""
    state = app_state(request)
    zone = state.settings.timezone
    scope = requested_scope(request, caller, area)
    phases = [p.value for p in phase or (Phase if not open_only else _OPEN)]
    query = IncidentFilter(
        phase=phases,
        areas=scope.area_ids(),
        team=team,
        officer=officer,
        category=category,
        source=source.value if source else None,
        since=parse_time(since, zone) if since else None,
        until=parse_time(until, zone) if until else None,
        breached=breached.value if breached else None,
        limit=limit,
        offset=offset,
    )
    found = state.records.search(query, lambda i: scope.covers_point(i.location))
    return [_view(i, zone) for i in found]


_OPEN = [p for p in Phase if not p.terminal]


@router.get("/api/incidents/{incident_id}")
def get_incident(incident_id: str, request: Request, caller: Reader) -> dict[str, Any]:
    incident = incident_or_raise(request, incident_id, caller)
    return _view(incident, app_state(request).settings.timezone)


@router.get("/api/incidents/{incident_id}/audit")
def audit(incident_id: str, request: Request, caller: Reader) -> list[dict[str, str]]:
    """Everything that happened to the incident, with who did it and when."""
    incident_or_raise(request, incident_id, caller)
    return app_state(request).records.audit(incident_id)


Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Action(Generic[Body]):
    """A dispatcher's action: POST /api/incidents/{id}/`name` with a `body`, answered 202.
    `name` is a key of `timeline.ACTION_EVENTS`, which says the event it sends and so the
    phases that allow it (each incident view lists them under `actions`)."""

    name: str
    body: type[Body]
    event: Callable[[Request, Incident, Body, Principal], ev.Event]
    doc: str | None = None


def _assign(
    request: Request, incident: Incident, assignment: Assignment, caller: Principal
) -> ev.Event:
    state = app_state(request)
    scope = scope_of(caller, state)
    outside = [o for o in assignment.officers if not scope.covers_officer(o)]
    if outside:
        raise refuse(
            state,
            caller,
            f"incident {incident.id}",
            f"{', '.join(outside)}: outside your area scope",
        )
    if state.city is None:
        raise HTTPException(
            503, "no roster is configured, so no officer can be ordered: set YIWANG_ROSTER_FILE"
        )
    now = state.clock()
    positions = state.store.officer_positions(
        now=now,
        stale_after_s=state.settings.stale_after_s,
        offline_after_s=state.settings.offline_after_s,
    )
    # Presence alone (no incidents): an officer busy elsewhere is still reachable.
    presence = {o: s.availability for o, s in officer_states(positions, ()).items()}
    officers = tuple(OfficerId(o) for o in assignment.officers)
    orders.check_crew(officers, roster=state.city.roster, availability=presence, now=now)
    order = orders.order_id(incident.id, now)
    return ev.OrderIssued(incident.id, order, officers, by=caller.account)


def _merge(request: Request, incident: Incident, merge: Merge, caller: Principal) -> ev.Event:
    target = incident_or_raise(request, merge.into, caller)
    if target.id == incident.id or target.phase.terminal:
        raise TimelineError(
            f"incident {incident.id} cannot merge into {target.id} ({target.phase.value})",
            "cannot_merge",
            into=target.id,
            phase=target.phase.value,
        )
    return ev.DuplicateMerged(incident.id, target.id, by=caller.account)


ACTIONS: tuple[Action[Any], ...] = (
    Action("acknowledge", Reason, lambda _, i, a, c: ev.IncidentAcknowledged(i.id, by=c.account)),
    Action("assign", Assignment, _assign, "Issue an order to one officer, or two (双人执法)."),
    Action(
        "reassign",
        Reason,
        lambda _, i, a, c: ev.ReassignRequested(i.id, by=c.account, reason=a.reason),
    ),
    Action(
        "cancel",
        RequiredReason,
        lambda _, i, a, c: ev.IncidentCancelled(i.id, by=c.account, reason=a.reason),
    ),
    Action(
        "resolve",
        Reason,
        lambda _, i, a, c: ev.IncidentResolved(i.id, by=c.account, result=a.reason),
    ),
    Action(
        "close",
        RequiredReason,
        lambda _, i, a, c: ev.IncidentClosed(i.id, by=c.account, reason=a.reason),
    ),
    Action(
        "merge",
        Merge,
        _merge,
        "Close a duplicate report into the incident it repeats (its clock stops).",
    ),
)


def _route(action: Action[Any]) -> None:
    def act(
        incident_id: str, body: BaseModel, request: Request, caller: Dispatcher
    ) -> dict[str, str]:
        incident = incident_or_raise(request, incident_id, caller)
        event = action.event(request, incident, body, caller)
        timeline.check(incident, event)
        return _submit(request, event, caller)

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


class OrderAck(RequestBody):
    status: Literal["accepted", "rejected", "enroute", "arrived", "done"]
    reason: str = Field("", max_length=2000)


def _order_for(state: AppState, order_id: str, caller: Principal) -> Incident:
    """The incident whose current order is `order_id`, if it is addressed to the caller."""
    for incident in state.store.incidents.load_incidents().values():
        if incident.order is not None and incident.order.id == order_id:
            if caller.officer not in incident.order.officers:
                raise refuse(
                    state, caller, f"order {order_id}", "this order is addressed to someone else"
                )
            return incident
    raise HTTPException(404, f"no current order {order_id}; it may have been withdrawn")


@router.get("/api/orders/mine")
def my_orders(request: Request, caller: Officer) -> list[dict[str, Any]]:
    """The caller's current orders (the officer page), each with where the caller is (`me`:
    their newest fix), the street `route` from there, its `distance_m` and `eta_s`, and the
    `answers` (ack statuses) the timeline takes from them now."""
    state = app_state(request)
    officer = OfficerId(str(caller.officer))
    mine = [
        i
        for i in state.store.incidents.load_incidents().values()
        if i.order is not None and officer in i.order.officers and not i.phase.terminal
    ]
    if not mine:
        return []
    fix = state.store.newest_fix(officer)
    travel = state.city.travel if state.city is not None else StraightLine()
    return [
        {
            **_view(i, state.settings.timezone),
            **whereabouts(travel, fix, i.location),
            "answers": allowed_answers(i, officer),
        }
        for i in mine
    ]


@router.post("/api/orders/{order_id}/ack", status_code=202)
def acknowledge_order(
    order_id: str, ack: OrderAck, request: Request, caller: Officer
) -> dict[str, str]:
    """An officer's answer from the officer page: the same as an `ack` from a terminal.
    Only the officer an order is addressed to may answer it; an answer the timeline would
    not take now (arrived before accepting, done before arriving) is a 409 saying why."""
    state = app_state(request)
    incident = _order_for(state, order_id, caller)
    body = ack_body(order_id, ack.status, reason=ack.reason, tst=int(state.clock()))
    # A refusal now, with the timeline's reason, instead of a 202 the engine then drops.
    check_answer(incident, OfficerId(str(caller.officer)), body)
    entry = _engine(request).post("ack", body, officer=str(caller.officer), actor=actor_of(caller))
    state.identity.record(
        caller,
        f"order:{ack.status}",
        now=state.clock(),
        target=incident.id,
        detail=f"{order_id} {entry}",
    )
    return {"order": order_id, "command": entry}


_MAX_MARGIN_S = 86400.0


@router.get("/api/incidents/{incident_id}/evidence", response_class=Response)
def evidence(
    incident_id: str,
    request: Request,
    caller: Exporter,
    margin_s: float = Query(
        300.0, ge=0, le=_MAX_MARGIN_S, allow_inf_nan=False, description="tracks before and after"
    ),
) -> Response:
    """The incident's signed evidence package (zip): tracks, chains, clips, photos, timeline,
    report.
    Every export is recorded in the access audit."""
    state = app_state(request)
    incident_or_raise(request, incident_id, caller)
    settings = state.settings
    content = collect(
        state.store, state.records, settings.archive(), incident_id, photos=settings.photos(),
        now=state.clock(), margin_s=margin_s, zone=settings.timezone,
    )  # fmt: skip
    package = build_package(content, settings.signer(), state.clock())
    state.identity.record(
        caller,
        "evidence_exported",
        now=state.clock(),
        target=incident_id,
        detail=f"{len(package)} bytes",
    )
    return Response(
        package,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{incident_id}-evidence.zip"'},
    )


@router.get("/api/incidents/{incident_id}/recommendations")
def recommendations(
    incident_id: str, request: Request, caller: Dispatcher, k: int = Query(5, ge=1, le=50)
) -> list[dict[str, Any]]:
    """The best officers for the incident, best first, each with the reason for its rank."""
    state = app_state(request)
    if state.city is None:
        raise HTTPException(
            503, "no city is configured: set YIWANG_AREAS_FILE and YIWANG_ROSTER_FILE"
        )
    incident = incident_or_raise(request, incident_id, caller)
    incidents = _engine(request).load_incidents().values()
    now = state.clock()
    positions = state.store.officer_positions(
        now=now,
        stale_after_s=state.settings.stale_after_s,
        offline_after_s=state.settings.offline_after_s,
    )
    scope = scope_of(caller, state)
    states = {
        o: s for o, s in officer_states(positions, incidents).items() if scope.covers_officer(o)
    }
    exclude = incident.past_officers
    return [
        msgspec.to_builtins(r)
        for r in recommend_for(state.city, states, incident, now=now, exclude=exclude, k=k)
    ]
