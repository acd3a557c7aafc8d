"""What an officer may answer to their order (dispatch.api.answers), stepped through an order's
life by hand: each phase offers what the timeline takes, never a repeat, and an answer it
would drop raises the timeline's reason."""

from __future__ import annotations

import pytest

from dispatch.api.answers import ack_body, allowed_answers, check_answer
from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.model import IncidentId, OrderId, Source
from dispatch.core.policy import TimelinePolicy
from dispatch.core.roster import OfficerId
from dispatch.core.timeline import TimelineError
from gis.coords import LonLat

INCIDENT, ORDER = IncidentId("INC-1"), OrderId("O-1")
A, B = OfficerId("zhang3"), OfficerId("li4")
POLICY = TimelinePolicy()


def step(*events: ev.Event):
    incident, _ = timeline.report(
        ev.IncidentReported(
            INCIDENT, "street_vending", 3, LonLat(119.65, 29.08), Source.PATROL_FIND
        ),
        now=0.0,
    )
    for n, event in enumerate(events, start=1):
        incident, _ = timeline.handle(incident, event, float(n), POLICY)
    return incident


ISSUED = ev.OrderIssued(INCIDENT, ORDER, (A, B), by="dispatcher")


def test_each_phase_offers_what_the_timeline_takes_and_no_repeat() -> None:
    issued = step(ISSUED)
    assert allowed_answers(issued, A) == ["accepted", "rejected", "enroute", "arrived"]
    accepted = step(ISSUED, ev.OrderAccepted(INCIDENT, ORDER, A))
    assert allowed_answers(accepted, A) == ["rejected", "enroute", "arrived"]
    assert allowed_answers(accepted, B) == ["accepted", "rejected", "enroute", "arrived"]
    arrived = step(ISSUED, ev.OfficerArrived(INCIDENT, ORDER, A))
    assert allowed_answers(arrived, A) == ["done"]
    assert allowed_answers(arrived, B) == ["arrived", "done"]  # the partner, still on the way
    assert allowed_answers(arrived, OfficerId("wang5")) == []  # not on the order


def test_an_answer_the_timeline_would_drop_raises_its_reason() -> None:
    issued = step(ISSUED)
    with pytest.raises(TimelineError, match=r"'done' cannot be answered now.*dispatched"):
        check_answer(issued, A, ack_body(ORDER, "done", reason="", tst=5))
    replaced = ack_body(OrderId("O-old"), "accepted", reason="", tst=5)
    with pytest.raises(TimelineError, match="not a current order"):
        check_answer(issued, A, replaced)
    check_answer(issued, A, ack_body(ORDER, "accepted", reason="", tst=5))  # taken
