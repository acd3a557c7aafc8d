"""Hotline work orders (12345/8890): `POST /api/hotline/orders`, one work order a request.

The hotline system holds an account of the `integration` role and sends its bearer token. A
work order opens one incident however often it is sent: the first answer is 201 with our
incident id, a repeat 200 with the same id, so the hotline may resend until it sees an answer.
The category is the catalogue's (a key, a label or an alias of the policy file; 422 lists the
catalogue), the coordinates are in the datum the order declares (`crs`), and the place lies in
the account's area scope (403 otherwise) and in an area of the city (422 "outside
jurisdiction" otherwise, counted as refused). The result goes back to the hotline once the incident
ends (`dispatch.hotline`). Outcomes are counted under `hotline` in /api/ingest/stats.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from dispatch.api.auth import refuse, require, scope_of
from dispatch.api.bodies import RequestBody
from dispatch.api.incidents import actor_of, command_body, new_incident_id
from dispatch.api.state import AppState, app_state
from dispatch.core.access import Permission, Principal
from dispatch.core.intake import OutsideJurisdiction, area_or_raise
from dispatch.core.model import Source
from dispatch.core.policy import UnknownCategory
from dispatch.core.workorders import WorkOrder, incident_report
from dispatch.hotline import CHANNEL
from gis.coords import Datum

router = APIRouter(tags=["hotline"])

Hotline = Annotated[Principal, Depends(require(Permission.SUBMIT_WORK_ORDERS))]

# Printable text: a ticket id becomes part of a key and of the result's Idempotency-Key.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class WorkOrderBody(RequestBody):
    ticket_id: str = Field(min_length=1, max_length=64, pattern=_PRINTABLE)
    source: Literal["12345", "8890"] = Field("12345", description="the hotline")
    category: str = Field(
        max_length=64,
        examples=["占道经营"],
        description="a key, label or alias of GET /api/policies",
    )
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Datum = Field(description="the datum of lon and lat: wgs84, cgcs2000, gcj02 or bd09")
    address: str = Field("", max_length=200)
    text: str = Field("", max_length=2000, description="what the caller reported")
    caller_name: str = Field("", max_length=64)
    caller_phone: str = Field("", max_length=32)
    priority: int = Field(3, ge=1, le=4, description="1 most urgent")


@router.post(
    "/api/hotline/orders",
    status_code=201,
    responses={200: {"description": "the ticket was received before: the incident it opened"}},
)
def receive_work_order(
    order: WorkOrderBody, request: Request, response: Response, caller: Hotline
) -> dict[str, Any]:
    """Open the incident of a work order, once per ticket; answers our incident id."""
    state = app_state(request)
    work = WorkOrder(
        order.ticket_id,
        Source(order.source),
        order.category,
        order.lon,
        order.lat,
        order.crs,
        order.address,
        order.text,
        order.priority,
        order.caller_name,
        order.caller_phone,
    )
    known = state.store.hotline.ticket(work.ticket)
    if known is not None:
        return _repeated(state, response, work, known["incident"])
    try:
        now = state.clock()
        report = incident_report(
            work, new_incident_id(now, state.settings.timezone), state.policies, by=caller.account
        )
    except UnknownCategory:
        state.store.ingest.count_channel(CHANNEL, "rejected:unknown_category")
        raise
    if state.city is not None:
        try:
            area_or_raise(state.city.roster, report.location)
        except OutsideJurisdiction:
            state.store.ingest.count_channel(CHANNEL, "refused:outside_jurisdiction")
            raise
    if not scope_of(caller, state).covers_point(report.location):
        state.store.ingest.count_channel(CHANNEL, "refused:outside_scope")
        raise refuse(
            state, caller, "POST /api/hotline/orders", "the place is outside your area scope"
        )
    received = state.store.hotline.receive(
        work.ticket,
        report.incident,
        order.model_dump(mode="json"),
        command_body(report),
        actor_of(caller),
        at=now,
    )
    if not received.created:  # the same ticket, sent again at the same moment
        return _repeated(state, response, work, received.incident)
    state.store.ingest.count_channel(CHANNEL, "created")
    state.identity.record(
        caller,
        "incident:IncidentReported",
        now=now,
        target=received.incident,
        detail=f"ticket {work.ticket} {received.entry}",
    )
    return _answer(work, received.incident, created=True)


def _repeated(
    state: AppState, response: Response, work: WorkOrder, incident: str
) -> dict[str, Any]:
    state.store.ingest.count_channel(CHANNEL, "repeated")
    response.status_code = 200
    return _answer(work, incident, created=False)


def _answer(work: WorkOrder, incident: str, *, created: bool) -> dict[str, Any]:
    return {
        "incident": incident,
        "ticket_id": work.ticket_id,
        "source": work.source.value,
        "created": created,
    }
