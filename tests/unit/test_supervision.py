"""Supervision outcomes and their tallies: the scripted incidents give exactly the expected
table, and for random timelines every breach has one cause and every counted milestone is
either on time or breached."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.core import events as ev
from dispatch.core.breakdown import (
    PERCENTILES,
    Dimension,
    StatsFilter,
    aggregate,
    grouped_percentiles,
    percentile,
)
from dispatch.core.model import Milestone
from dispatch.core.supervision import BREACHED, Cause, Outcome, RedispatchReason, outcome_of
from tests.supervision_cases import (
    CASES,
    Case,
    ack,
    assign,
    by_dispatcher,
    no_candidate,
    officer_does,
    offline,
    outcome_table,
    record_cases,
)

ZONE = ZoneInfo("Asia/Shanghai")


def outcomes_of(cases: list[Case] = CASES) -> list[Outcome]:
    return [
        outcome_of(r.incident, r.records, area=r.case.place, zone=ZONE) for r in record_cases(cases)
    ]


def test_each_scripted_incident_has_its_known_outcome() -> None:
    outcomes = outcomes_of()
    expected = {o.incident: case.expected for o, case in zip(outcomes, CASES, strict=True)}
    assert outcome_table(outcomes) == expected
    for outcome, case in zip(outcomes, CASES, strict=True):
        assert {r.value: n for r, n in outcome.redispatches.items()} == case.redispatches
    # Reported an hour apart from 08:00 local time.
    assert [o.hour for o in outcomes] == list(range(8, 8 + len(CASES)))


def test_the_scripted_month_gives_the_expected_table() -> None:
    (total,) = aggregate(outcomes_of(), None)
    assert total.incidents == 12
    figures = {
        m.value: (t.on_time, t.late, t.missed, t.reached) for m, t in total.milestones.items()
    }
    assert figures == {
        "respond": (8, 2, 1, 10),
        "turn_out": (5, 5, 1, 10),
        "arrive": (0, 0, 0, 10),
        "handle": (9, 1, 0, 10),
    }
    assert total.milestones[Milestone.RESPOND].on_time_share == 8 / 11
    assert {c.value: n for c, n in total.causes.items() if n} == {
        "no_acknowledgement": 3,
        "no_candidate": 1,
        "not_accepted": 1,
        "rejected": 1,
        "officer_offline": 1,
        "long_travel": 1,
        "late_handling": 1,
        "unknown": 1,
    }
    assert {r.value: n for r, n in total.redispatches.items() if n} == {
        "not_accepted": 1, "rejected": 1, "officer_offline": 1, "reassigned": 1, "escalated": 1,
    }  # fmt: skip
    # Level 1 for every incident with a breach, more for the two that climbed the ladder.
    assert total.escalations == {1: 10, 2: 2, 3: 1}
    assert (total.orders, total.orders_refused, total.orders_unanswered) == (14, 1, 1)
    # Seconds to turn out among those that did: 30, 40 ×2, 80, 100, 190, 200 ×3, 210.
    turn_out = total.milestones[Milestone.TURN_OUT]
    assert (turn_out.p50_s, turn_out.p90_s) == (100.0, 200.0)


def test_a_breach_is_long_travel_when_the_order_went_out_too_far_to_meet_the_turn_out() -> None:
    """Sent 10 s after the report; the turn-out deadline is at 180 s."""
    far = next(c for c in CASES if c.name == "officer far away")
    slow = next(c for c in CASES if c.name == "order not accepted in time")
    cases = [
        far,  # 10 + 400 s: long travel
        replace(far, eta_s=170.0),  # there by 180 s exactly, yet late: travel explains nothing
        replace(far, eta_s=None),  # an order from a center without a city, or from before
        replace(slow, eta_s=400.0),  # not accepted in time comes first, however far
    ]
    turned_out = [t["turn_out"] for t in outcome_table(outcomes_of(cases)).values()]
    assert turned_out == [
        ("late", "long_travel"),
        ("late", "unknown"),
        ("late", "unknown"),
        ("late", "not_accepted"),
    ]


def test_breakdowns_split_the_same_figures() -> None:
    outcomes = outcomes_of()
    by_area = aggregate(outcomes, Dimension.AREA)
    assert [(t.key, t.incidents) for t in by_area] == [("east", 7), ("west", 5)]
    west = aggregate(outcomes, None, StatsFilter(areas=frozenset({"west"})))
    assert west == [replace(by_area[1], key=None)]
    by_officer = {t.key: t for t in aggregate(outcomes, Dimension.OFFICER)}
    assert sorted(by_officer) == ["li4", "wang5", "zhang3"]
    assert (by_officer["zhang3"].orders, by_officer["zhang3"].orders_refused) == (6, 1)
    assert by_officer["zhang3"].orders_unanswered == 1
    assert by_officer["wang5"].on_scene_s == 400 + 500 + 240 + 390
    by_hour = aggregate(outcomes, Dimension.HOUR)
    assert [t.key for t in by_hour] == [f"{h:02d}" for h in range(8, 20)]
    for dimension in Dimension:
        if dimension is not Dimension.OFFICER:
            tallies = aggregate(outcomes, dimension)
            assert sum(t.incidents for t in tallies) == 12
            assert sum(t.breaches for t in tallies) == 10


def test_percentiles_pick_a_recorded_value_by_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.one_of(st.none(), st.floats(-50, 1e6, allow_nan=False, allow_infinity=False)),
        ),
        max_size=60,
    )
)
def test_grouped_percentiles_are_each_groups_percentiles(pairs) -> None:
    groups = np.array([g for g, _ in pairs], dtype=np.int64)
    seconds = np.array([s for _, s in pairs], dtype=np.float64)  # None: NaN, not reached
    values: dict[int, list[float]] = {}
    for group, second in pairs:
        if second is not None:
            values.setdefault(group, []).append(second)
    expected = {g: tuple(percentile(v, f) for f in PERCENTILES) for g, v in values.items()}
    assert grouped_percentiles(groups, seconds) == expected


# Random timelines ------------------------------------------------------------------------

ACTIONS = st.sampled_from(
    [
        ack(),
        assign("zhang3"),
        assign("li4"),
        officer_does(ev.OrderAccepted, "zhang3"),
        officer_does(ev.OrderAccepted, "li4"),
        officer_does(ev.OfficerDeparted, "zhang3"),
        officer_does(ev.OfficerArrived, "li4"),
        officer_does(ev.OrderRejected, "zhang3"),
        offline("li4"),
        no_candidate(),
        by_dispatcher(ev.ReassignRequested),
        by_dispatcher(ev.IncidentResolved),
        by_dispatcher(ev.IncidentClosed),
        by_dispatcher(ev.IncidentCancelled),
    ]
)
SCRIPTS = st.lists(
    st.lists(st.tuples(st.integers(0, 1500), ACTIONS), max_size=12).map(
        lambda steps: sorted(steps, key=lambda s: s[0])
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(SCRIPTS)
def test_causes_add_up_to_the_breaches_and_counted_milestones_are_on_time_or_breached(
    scripts,
) -> None:
    cases = [Case(f"random {n}", "east", script, {}) for n, script in enumerate(scripts)]
    outcomes = outcomes_of(cases)
    for outcome in outcomes:
        for m in outcome.milestones:
            assert (m.cause is not None) == (m.status in BREACHED)
    for tally in [*aggregate(outcomes, None), *aggregate(outcomes, Dimension.OFFICER)]:
        assert sum(tally.causes.values()) == tally.breaches
        assert set(tally.causes) == set(Cause)
        assert set(tally.redispatches) == set(RedispatchReason)
    (total,) = aggregate(outcomes, None)
    for milestone, figures in total.milestones.items():
        counted = [o for o in outcomes if o.milestone(milestone).status.value != "not_due"]
        timed = [o for o in counted if o.milestone(milestone).status.value != "untimed"]
        assert figures.on_time + figures.breached == len(timed)
    assert total.redispatch_count == sum(sum(o.redispatches.values()) for o in outcomes)
