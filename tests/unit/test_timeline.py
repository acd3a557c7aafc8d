"""The 1/3/15 timeline stepped by hand: milestones, warnings, the ladder, re-dispatch, what
`check` refuses and what each kind of timer does."""

from __future__ import annotations

import pytest

from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.center import CommandCenter, DuplicateIncident, UnknownIncident
from dispatch.core.effects import (
    Escalate,
    PartnerMissing,
    Publish,
    RecordMilestone,
    Redispatch,
    Warn,
    WithdrawOrder,
)
from dispatch.core.model import IncidentId, Milestone, OrderId, Phase, Source, TimerKind
from dispatch.core.policy import (
    CATEGORIES,
    EscalationAction,
    EscalationStep,
    PolicyBook,
    PolicyError,
    TimelinePolicy,
    UnknownCategory,
)
from dispatch.core.roster import OfficerId
from dispatch.core.timeline import TIMER_TRANSITIONS, IllegalTransition, StaleOrder, TimelineError
from gis.coords import LonLat

T0 = 1_795_300_000.0
INC = IncidentId("INC-1")
ZHANG, LI = OfficerId("zhang3"), OfficerId("li4")
O1, O2 = OrderId("O1"), OrderId("O2")


def reported(center: CommandCenter | None = None) -> CommandCenter:
    center = center or CommandCenter()
    center.handle(
        ev.IncidentReported(INC, "street_vending", 2, LonLat(119.65, 29.08), Source.HOTLINE_12345),
        T0,
    )
    return center


def kinds(effects) -> list[str]:
    return [type(e).__name__ for e in effects if not isinstance(e, Publish)]


def test_a_textbook_incident_records_every_milestone_with_its_lateness() -> None:
    center = reported()
    center.handle(ev.IncidentAcknowledged(INC, by="dispatcher7"), T0 + 20)
    issued = center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="dispatcher7"), T0 + 50)
    assert kinds(issued) == ["Warn", "SendOrder", "RecordMilestone"]  # the warning fired first
    center.handle(ev.OrderAccepted(INC, OrderId("O1"), ZHANG), T0 + 60)
    center.handle(ev.OfficerDeparted(INC, OrderId("O1"), ZHANG, via="gps"), T0 + 100)
    center.handle(ev.OfficerArrived(INC, OrderId("O1"), ZHANG, via="geofence"), T0 + 500)
    center.expire(T0 + 900)
    center.handle(ev.IncidentResolved(INC, by="zhang3"), T0 + 1000)
    center.handle(ev.IncidentClosed(INC, by="dispatcher7"), T0 + 1100)
    incident = center.incidents[INC]
    assert incident.phase is Phase.CLOSED
    lateness = {
        m.milestone: (m.reached_at - T0, m.late_by_s, m.by, m.via) for m in incident.milestones
    }
    assert lateness == {
        Milestone.RESPOND: (50, 0.0, "dispatcher7", "dispatcher"),
        Milestone.TURN_OUT: (100, 0.0, "zhang3", "gps"),
        Milestone.ARRIVE: (500, 0.0, "zhang3", "geofence"),
        Milestone.HANDLE: (1000, 100.0, "zhang3", "dispatcher"),
    }
    assert center.next_deadline() is None


def test_warning_then_breach_then_the_ladder_each_once_on_time() -> None:
    center = reported()
    assert center.next_deadline() == T0 + 48  # 80 % of the 60 s response
    assert center.expire(T0 + 47) == []
    warned = center.expire(T0 + 48)
    assert [e for e in warned if isinstance(e, Warn)] == [Warn(INC, Milestone.RESPOND, T0 + 60)]
    assert center.expire(T0 + 50) == []
    breach = center.expire(T0 + 60)
    assert [e for e in breach if isinstance(e, Escalate)] == [
        Escalate(INC, Milestone.RESPOND, 1, EscalationAction.NOTIFY_SQUAD_LEADER, T0 + 60)
    ]
    commander = center.expire(T0 + 120)
    assert [(e.milestone, e.level) for e in commander if isinstance(e, Escalate)] == [
        (Milestone.RESPOND, 2)
    ]
    top = center.expire(T0 + 180)
    escalations = [(e.milestone, e.level, e.action) for e in top if isinstance(e, Escalate)]
    assert (Milestone.RESPOND, 3, EscalationAction.REASSIGN) in escalations
    assert any(isinstance(e, Redispatch) for e in top)  # auto-dispatch the next recommended


def test_a_late_expire_fires_everything_missed_in_order() -> None:
    center = reported()
    effects = center.expire(T0 + 200)
    alerts = [
        (type(e).__name__, e.milestone.value, getattr(e, "level", 0))
        for e in effects
        if isinstance(e, Warn | Escalate)
    ]
    assert alerts == [
        ("Warn", "respond", 0),
        ("Escalate", "respond", 1),
        ("Escalate", "respond", 2),
        ("Warn", "turn_out", 0),
        ("Escalate", "turn_out", 1),  # at the same instant a breach goes before a ladder step
        ("Escalate", "respond", 3),
    ]
    assert center.next_deadline() > T0 + 200


def test_rejection_redispatches_to_someone_else_without_resetting_the_clock() -> None:
    center = reported()
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="d"), T0 + 30)
    effects = center.handle(
        ev.OrderRejected(INC, OrderId("O1"), ZHANG, reason="off shift"), T0 + 40
    )
    redispatch = next(e for e in effects if isinstance(e, Redispatch))
    assert redispatch.exclude == (ZHANG,) and "off shift" in redispatch.reason
    incident = center.incidents[INC]
    assert incident.phase is Phase.ACKNOWLEDGED and incident.reached(Milestone.RESPOND)
    center.handle(ev.OrderIssued(INC, OrderId("O2"), (LI,), by="d"), T0 + 70)
    assert (
        len([m for m in center.incidents[INC].milestones if m.milestone is Milestone.RESPOND]) == 1
    )
    with pytest.raises(StaleOrder, match="replaced by O2"):
        center.handle(ev.OrderAccepted(INC, OrderId("O1"), ZHANG), T0 + 75)
    center.handle(ev.OrderAccepted(INC, OrderId("O2"), LI), T0 + 80)
    center.handle(ev.OfficerDeparted(INC, OrderId("O2"), LI), T0 + 200)
    turn_out = center.incidents[INC].reached(Milestone.TURN_OUT)
    assert turn_out.due_at == T0 + 180 and turn_out.late_by_s == 20.0


def test_unaccepted_order_goes_to_the_next_officer() -> None:
    center = reported()
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="d"), T0 + 10)
    assert center.next_deadline() == T0 + 55  # accept_within_s 45 beats the turn-out warning
    effects = center.expire(T0 + 55)
    assert kinds(effects) == ["WithdrawOrder", "Redispatch"]
    assert center.incidents[INC].phase is Phase.ACKNOWLEDGED


def test_an_officer_going_offline_mid_order_is_replaced() -> None:
    center = reported()
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG, LI), by="d"), T0 + 10)
    center.handle(ev.OfficerDeparted(INC, OrderId("O1"), ZHANG), T0 + 40)
    effects = center.handle(ev.OfficerWentOffline(INC, LI), T0 + 60)
    withdraw = next(e for e in effects if isinstance(e, WithdrawOrder))
    assert withdraw.officers == (ZHANG, LI)
    assert next(e for e in effects if isinstance(e, Redispatch)).exclude == (ZHANG, LI)


def test_arrival_seen_first_also_records_the_turn_out() -> None:
    center = reported()
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="d"), T0 + 10)
    effects = center.handle(ev.OfficerArrived(INC, OrderId("O1"), ZHANG), T0 + 50)
    recorded = [e.record.milestone for e in effects if isinstance(e, RecordMilestone)]
    assert recorded == [Milestone.TURN_OUT, Milestone.ARRIVE]


def test_illegal_events_change_nothing_and_say_why() -> None:
    center = reported()
    before = center.incidents[INC]
    with pytest.raises(
        IllegalTransition, match="incident INC-1 is reported: IncidentResolved"
    ) as refused:
        center.handle(ev.IncidentResolved(INC, by="x"), T0 + 5)
    # The same refusal as a code with what fills it, for a screen to word in its language.
    assert refused.value.code == "not_in_phase"
    assert refused.value.params == {"phase": "reported", "event": "IncidentResolved"}
    with pytest.raises(IllegalTransition, match="OrderAccepted is not allowed"):
        center.handle(ev.OrderAccepted(INC, OrderId("O9"), ZHANG), T0 + 5)
    assert center.incidents[INC] is before
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="d"), T0 + 10)
    with pytest.raises(StaleOrder, match="officer li4 is not on order O1") as stale:
        center.handle(ev.OfficerWentOffline(INC, LI), T0 + 12)
    assert (stale.value.code, stale.value.params) == (
        "not_on_order",
        {"event": "OfficerWentOffline", "officer": LI, "order": "O1"},
    )
    with pytest.raises(DuplicateIncident):
        reported(center)
    with pytest.raises(UnknownIncident):
        center.handle(ev.IncidentAcknowledged(IncidentId("nope"), by="x"), T0)


def test_cancelling_withdraws_the_order_and_stops_the_clock() -> None:
    center = reported()
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="d"), T0 + 10)
    effects = center.handle(ev.IncidentCancelled(INC, by="d", reason="duplicate call"), T0 + 20)
    assert kinds(effects) == ["WithdrawOrder"]
    assert center.next_deadline() is None and center.expire(T0 + 10_000) == []


def test_policy_book_from_a_file() -> None:
    book = PolicyBook.from_dict(
        {
            "default": {"warn_at": 0.5},
            "categories": {
                "fire_hazard": {"respond_s": 30},
                "fire_hazard/1": {"turn_out_s": 120, "arrive_s": 600},
            },
        }
    )
    urgent = book.for_incident("fire_hazard", 1)
    assert urgent.due_at(Milestone.RESPOND, 0) == 30 and urgent.due_at(Milestone.TURN_OUT, 0) == 120
    assert urgent.due_at(Milestone.ARRIVE, 0) == 600 and urgent.warn_at(Milestone.RESPOND, 0) == 15
    assert book.for_incident("noise", 3).due_at(Milestone.HANDLE, 0) == 900
    with pytest.raises(PolicyError, match="unknown keys"):
        PolicyBook.from_dict({"categories": {"x": {"respond": 1}}})


def test_the_catalogue_holds_the_common_categories_and_those_the_file_names() -> None:
    book = PolicyBook.from_dict(
        {
            "categories": {
                "fire_hazard": {"label": "消防隐患", "respond_s": 30},
                "dog_walking/2": {"handle_s": 600},
                "street_vending": {"respond_s": 45},
            }
        }
    )
    assert book.categories["fire_hazard"] == "消防隐患"
    assert book.categories["dog_walking"] == "dog_walking"  # named without a label
    assert book.categories["street_vending"] == "占道经营"  # the catalogue's label stays
    assert book.for_incident("fire_hazard", 3).due_at(Milestone.RESPOND, 0) == 30
    assert book.category_or_raise("sos") == "sos"  # what a device's alarm opens
    with pytest.raises(UnknownCategory) as unknown:
        book.category_or_raise("noise")
    assert unknown.value.known == book.categories
    assert "unknown category 'noise'" in str(unknown.value)
    assert "street_vending (占道经营)" in str(unknown.value)
    assert set(PolicyBook().categories) == set(CATEGORIES)


def test_two_officer_rule_needs_a_pair_and_alerts_when_one_stands_alone() -> None:
    book = PolicyBook.from_dict({"default": {"two_officers": True, "partner_within_s": 120}})
    center = reported(CommandCenter(book))
    with pytest.raises(TimelineError, match="双人执法"):
        center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG,), by="d"), T0 + 10)
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG, LI), by="d"), T0 + 10)
    center.handle(ev.OfficerArrived(INC, OrderId("O1"), ZHANG), T0 + 40)
    assert center.next_deadline() == T0 + 160
    alone = center.expire(T0 + 160)
    assert [e for e in alone if isinstance(e, PartnerMissing)] == [
        PartnerMissing(INC, (ZHANG,), (LI,))
    ]
    center.handle(ev.OfficerArrived(INC, OrderId("O1"), LI), T0 + 170)
    assert center.incidents[INC].order.on_scene == (ZHANG, LI)
    later = center.expire(T0 + 1000)
    assert not any(isinstance(e, PartnerMissing) for e in later)  # one alert, not a stream


def test_a_partner_in_time_raises_no_alert() -> None:
    center = reported(CommandCenter(PolicyBook.from_dict({"default": {"two_officers": True}})))
    center.handle(ev.OrderIssued(INC, OrderId("O1"), (ZHANG, LI), by="d"), T0 + 10)
    center.handle(ev.OfficerArrived(INC, OrderId("O1"), ZHANG), T0 + 40)
    center.handle(ev.OfficerArrived(INC, OrderId("O1"), LI), T0 + 100)
    assert not any(isinstance(e, PartnerMissing) for e in center.expire(T0 + 800))


def test_check_refuses_with_the_error_handle_raises_and_changes_nothing() -> None:
    center = reported()
    center.handle(ev.OrderIssued(INC, O1, (ZHANG,), by="d"), T0 + 10)
    center.handle(ev.OrderRejected(INC, O1, ZHANG), T0 + 20)
    center.handle(ev.OrderIssued(INC, O2, (LI,), by="d"), T0 + 30)
    incident = center.incidents[INC]
    refused = [
        (ev.IncidentClosed(INC, by="d"), IllegalTransition, "is dispatched: IncidentClosed"),
        (ev.OrderAccepted(INC, O1, ZHANG), StaleOrder, "order O1 was replaced by O2"),
        (ev.OfficerWentOffline(INC, ZHANG), StaleOrder, "officer zhang3 is not on order O2"),
    ]
    for event, error, reason in refused:
        with pytest.raises(error, match=reason) as checked:
            timeline.check(incident, event)
        with pytest.raises(error) as handled:
            center.handle(event, T0 + 31)
        assert str(checked.value) == str(handled.value)
        assert center.incidents[INC] is incident
    assert timeline.check(incident, ev.OrderAccepted(INC, O2, LI)) is None


def test_check_knows_an_order_needs_officers_and_a_policy_may_need_two() -> None:
    incident = reported().incidents[INC]
    with pytest.raises(TimelineError, match="at least one officer"):
        timeline.check(incident, ev.OrderIssued(INC, O1, (), by="d"))
    alone = ev.OrderIssued(INC, O1, (ZHANG,), by="d")
    timeline.check(incident, alone)  # without the policy, its rules are not known
    with pytest.raises(TimelineError, match="双人执法"):
        timeline.check(incident, alone, TimelinePolicy(two_officers=True))


def test_every_kind_of_timer_has_a_rule_and_none_runs_once_resolved_or_ended() -> None:
    assert set(TIMER_TRANSITIONS) == set(TimerKind)
    for rule in TIMER_TRANSITIONS.values():
        assert rule.redispatch_in <= rule.runs_in
        assert not any(p.terminal or p is Phase.RESOLVED for p in rule.runs_in)


# The whole ladder is one step: at the breach, reassign.
REASSIGNING = TimelinePolicy(ladder=(EscalationStep(0.0, EscalationAction.REASSIGN),))


def test_a_reassigning_breach_asks_for_an_officer_before_an_order_and_withdraws_one_out() -> None:
    center = reported(CommandCenter(PolicyBook(REASSIGNING)))
    effects = center.expire(T0 + 60)  # the response missed, nobody sent yet
    assert kinds(effects) == ["Warn", "Escalate", "Redispatch"]
    assert center.incidents[INC].phase is Phase.REPORTED

    center = reported(CommandCenter(PolicyBook(REASSIGNING)))
    center.handle(ev.OrderIssued(INC, O1, (ZHANG,), by="d"), T0 + 50)
    center.handle(ev.OrderAccepted(INC, O1, ZHANG), T0 + 55)
    effects = center.expire(T0 + 180)  # accepted but never left: the turn-out missed
    assert kinds(effects) == ["Warn", "Escalate", "WithdrawOrder", "Redispatch"]
    assert next(e for e in effects if isinstance(e, Redispatch)).reason == "turn_out missed"
    assert center.incidents[INC].phase is Phase.ACKNOWLEDGED


def test_a_reassigning_breach_on_scene_only_escalates() -> None:
    center = reported(CommandCenter(PolicyBook(REASSIGNING)))
    center.handle(ev.OrderIssued(INC, O1, (ZHANG,), by="d"), T0 + 10)
    center.handle(ev.OrderAccepted(INC, O1, ZHANG), T0 + 20)
    center.handle(ev.OfficerArrived(INC, O1, ZHANG), T0 + 100)
    effects = center.expire(T0 + 900)
    assert kinds(effects) == ["Warn", "Escalate"]
    assert center.incidents[INC].phase is Phase.ON_SCENE


def test_at_one_instant_the_accept_timeout_fires_before_a_breach() -> None:
    center = reported(CommandCenter(PolicyBook(REASSIGNING)))
    center.handle(ev.OrderIssued(INC, O1, (ZHANG,), by="d"), T0 + 135)
    assert center.next_deadline() == T0 + 144  # the turn-out warning first
    center.expire(T0 + 144)
    effects = center.expire(T0 + 180)  # accept_within_s 45 ends with the turn-out deadline
    assert kinds(effects) == ["WithdrawOrder", "Redispatch", "Escalate", "Redispatch"]
    withdraw = next(e for e in effects if isinstance(e, WithdrawOrder))
    assert withdraw.reason == "order not accepted in time"
    escalate = next(e for e in effects if isinstance(e, Escalate))
    assert (escalate.milestone, escalate.level) == (Milestone.TURN_OUT, 1)
