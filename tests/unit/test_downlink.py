"""Orders as devices receive them: every field of the terminal's notice, deadlines as whole
epoch seconds, the withdrawal, and the OwnTracks waypoint whose `enter` comes back as arrival."""

from __future__ import annotations

import dataclasses
import json
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from devices.downlink import (
    ORDER_FENCE_PREFIX,
    OrderNotice,
    dispatch_message,
    order_expiry_s,
    order_text,
    owntracks_commands,
    withdrawal_message,
    withdrawal_text,
)
from devices.translate import Assignments, translate
from dispatch.core import events as ev
from dispatch.core.model import IncidentId, OrderId
from dispatch.core.roster import OfficerId

T0 = 1_800_000_000.0
NOTICE = OrderNotice(
    order_id="O-20261122-7",
    incident_id="INC-20261122-ABC123",
    issued=T0 + 0.9,
    respond_by=T0 + 60.75,
    dispatch_by=T0 + 180.2,
    handle_by=None,
    priority=2,
    category="street_vending",
    title="占道经营 东门",
    lon=119.651234567891,
    lat=29.081234567891,
    radius_m=49.9,
    team="t1",
    dispatcher="duty-3",
    officers=("officer005", "officer009"),
)


def test_the_terminal_notice_carries_every_field_under_its_wire_name() -> None:
    assert json.loads(dispatch_message(NOTICE)) == {
        "_type": "dispatch",
        "order_id": "O-20261122-7",
        "incident": "INC-20261122-ABC123",
        "issued": 1_800_000_000,
        "respond_by": 1_800_000_060,
        "dispatch_by": 1_800_000_180,
        "handle_by": None,
        "priority": 2,
        "category": "street_vending",
        "title": "占道经营 东门",
        "lat": 29.0812346,
        "lon": 119.6512346,
        "crs": "wgs84",
        "rad": 49,
        "team": "t1",
        "dispatcher": "duty-3",
        "officers": ["officer005", "officer009"],
    }


def test_a_notice_without_a_team_says_so() -> None:
    assert json.loads(dispatch_message(dataclasses.replace(NOTICE, team=None)))["team"] is None


deadline = st.none() | st.floats(min_value=0, max_value=4e9)


@given(respond_by=deadline, dispatch_by=deadline, handle_by=deadline)
def test_deadlines_travel_as_whole_epoch_seconds_and_absent_ones_as_null(
    respond_by: float | None, dispatch_by: float | None, handle_by: float | None
) -> None:
    notice = dataclasses.replace(
        NOTICE, respond_by=respond_by, dispatch_by=dispatch_by, handle_by=handle_by
    )
    sent = json.loads(dispatch_message(notice))
    for name, value in (
        ("respond_by", respond_by),
        ("dispatch_by", dispatch_by),
        ("handle_by", handle_by),
    ):
        if value is None:
            assert sent[name] is None
        else:
            # A deadline shown on the terminal is never later than the one the center keeps.
            assert type(sent[name]) is int and value - 1 < sent[name] <= value


@given(
    lon=st.floats(min_value=-180, max_value=180),
    lat=st.floats(min_value=-90, max_value=90),
)
def test_positions_are_kept_to_seven_decimals_on_both_downlinks(lon: float, lat: float) -> None:
    notice = dataclasses.replace(NOTICE, lon=lon, lat=lat)
    sent = json.loads(dispatch_message(notice))
    waypoint = json.loads(owntracks_commands(notice)[0])["waypoints"]["waypoints"][0]
    for place in (sent, waypoint):
        assert abs(place["lon"] - lon) <= 5e-8 + 1e-12 and abs(place["lat"] - lat) <= 5e-8 + 1e-12
        assert place["lon"] == round(place["lon"], 7) and place["lat"] == round(place["lat"], 7)


def test_a_withdrawal_names_the_order_and_why_and_nothing_else() -> None:
    assert json.loads(withdrawal_message("O-20261122-7", "reassigned to officer009")) == {
        "_type": "dispatch",
        "order_id": "O-20261122-7",
        "cancel": True,
        "reason": "reassigned to officer009",
    }


def test_owntracks_gets_the_order_as_a_waypoint_then_is_asked_where_it_is() -> None:
    waypoints, report = (json.loads(c) for c in owntracks_commands(NOTICE))
    assert waypoints == {
        "_type": "cmd",
        "action": "setWaypoints",
        "waypoints": {
            "_type": "waypoints",
            "waypoints": [
                {
                    "_type": "waypoint",
                    "desc": "order:O-20261122-7",
                    "lat": 29.0812346,
                    "lon": 119.6512346,
                    "rad": 49,
                    "tst": 1_800_000_000,
                }
            ],
        },
    }
    assert report == {"_type": "cmd", "action": "reportLocation"}


@given(order=st.text(min_size=1))
def test_the_app_s_enter_of_the_waypoint_translates_into_arrival(order: str) -> None:
    notice = dataclasses.replace(NOTICE, order_id=order)
    waypoint = json.loads(owntracks_commands(notice)[0])["waypoints"]["waypoints"][0]
    assert waypoint["desc"] == f"{ORDER_FENCE_PREFIX}{order}"
    enter = {"_type": "transition", "event": "enter", "desc": waypoint["desc"], "tst": T0}
    entry = {"kind": "transition", "officer": "officer005", "body": json.dumps(enter)}
    assignments = Assignments({OrderId(order): IncidentId("INC-1")}, {})
    assert translate("1-0", entry, assignments) == [
        ev.OfficerArrived(IncidentId("INC-1"), OrderId(order), OfficerId("officer005"), "geofence")
    ]


def test_a_text_terminal_reads_the_order_with_local_clocks() -> None:
    text = order_text(NOTICE, ZoneInfo("Asia/Shanghai"))
    assert text.splitlines() == [
        "【调度指令】占道经营：占道经营 东门",
        "位置：东经119.651235 北纬29.081235（WGS-84）",
        "响应时限：16:01:00",
        "出勤时限：16:03:00",
        "指令号：O-20261122-7",
    ]
    assert withdrawal_text("O-1", "重复警情") == "【撤销指令】指令号：O-1，原因：重复警情"


def test_an_order_waits_on_the_broker_until_the_turn_out_deadline() -> None:
    # Issued a second after the report: kept until the turn-out deadline, not the respond one.
    assert order_expiry_s(NOTICE, T0 + 1.0, minimum_s=60) == 179


def test_a_re_dispatched_order_waits_at_least_the_minimum() -> None:
    # Re-dispatched after both deadlines have passed: a terminal offline for a moment still
    # finds it, where `respond_by - now` gave it a second.
    assert order_expiry_s(NOTICE, T0 + 61.0, minimum_s=180) == 180
    assert order_expiry_s(NOTICE, T0 + 400.0, minimum_s=180) == 180


def test_an_order_without_deadlines_does_not_expire() -> None:
    timeless = dataclasses.replace(NOTICE, respond_by=None, dispatch_by=None)
    assert order_expiry_s(timeless, T0, minimum_s=180) is None
