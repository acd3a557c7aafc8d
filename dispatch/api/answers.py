"""What an officer may answer to their order now: the officer page's buttons, and the 409 an
answer gets at once when it no longer applies (rather than a 202 the engine then drops).

Each status of an `ack` is read exactly as the engine reads it (`devices.translate`) and the
events it means are asked of the timeline (`timeline.check`): the rules stay in one place.
"""

from __future__ import annotations

from typing import Any

from devices.translate import Assignments, Untranslatable, translate
from dispatch.core import timeline
from dispatch.core.model import Incident, OrderId
from dispatch.core.roster import OfficerId
from dispatch.core.timeline import TimelineError
from dispatch.store.incidents import inbox_fields

STATUSES = ("accepted", "rejected", "enroute", "arrived", "done")


def ack_body(order: str, status: str, *, reason: str, tst: int) -> dict[str, Any]:
    """An officer's answer as a terminal's `ack` carries it into the engine's inbox."""
    return {"_type": "ack", "order_id": order, "status": status, "tst": tst, "reason": reason}


def check_answer(incident: Incident, officer: OfficerId, body: dict[str, Any]) -> None:
    """Raise the TimelineError the engine would drop this answer with; changes nothing."""
    assert incident.order is not None
    entry = inbox_fields("ack", body, officer=officer)
    known = Assignments({OrderId(incident.order.id): incident.id}, {})
    events = translate("check", entry, known)
    if isinstance(events, Untranslatable):
        raise TimelineError(events.reason)
    for event in events:
        try:
            timeline.check(incident, event)
        except TimelineError as exc:
            raise TimelineError(
                f"'{body['status']}' cannot be answered now: {exc}",
                exc.code,
                **{**exc.params, "status": body["status"]},
            ) from None


def allowed_answers(incident: Incident, officer: OfficerId) -> list[str]:
    """The statuses the timeline takes from `officer` now, without those they already gave
    (a second accept or arrival changes nothing)."""
    order = incident.order
    if order is None or officer not in order.officers:
        return []
    given = {
        "accepted": order.accepted_by == officer,
        "arrived": officer in order.on_scene,
    }
    allowed = []
    for status in STATUSES:
        if given.get(status):
            continue
        try:
            check_answer(incident, officer, ack_body(order.id, status, reason="", tst=0))
        except TimelineError:
            continue
        allowed.append(status)
    return allowed
