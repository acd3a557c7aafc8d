"""A restarted demo carries on from where its officers were last stored, on a clock that
never runs back behind their newest fix; when it cannot, it says why (and starts afresh)."""

from __future__ import annotations

import pytest

from dispatch.clock import Clock
from gis.coords import LonLat
from harness.demo_state import Resume, plan_resume

NOW = 1_800_000_000.0
WHERE = LonLat(119.65, 29.09)


def test_nothing_stored_is_a_new_city_on_the_given_clock() -> None:
    plan = plan_resume({}, now=NOW, rate=1.0, anchor=NOW, anchor_pinned=False)
    assert plan == Resume({}, NOW, "a new city")


def test_officers_carry_on_from_their_stored_fixes_when_those_are_in_the_past() -> None:
    stored = {"wc01-1": (WHERE, NOW - 30), "wc01-2": (LonLat(119.66, 29.1), NOW - 5)}
    plan = plan_resume(stored, now=NOW, rate=1.0, anchor=NOW, anchor_pinned=False)
    assert isinstance(plan, Resume)
    assert plan.positions == {"wc01-1": WHERE, "wc01-2": LonLat(119.66, 29.1)}
    assert plan.clock_anchor == NOW
    assert "2 officers from their last positions" in plan.note


def test_after_a_faster_run_the_clock_continues_from_the_newest_stored_fix() -> None:
    newest = NOW + 3 * 3600  # a ×10 run of 20 minutes ended three hours ahead of the wall
    plan = plan_resume(
        {"wc01-1": (WHERE, newest)}, now=NOW, rate=10.0, anchor=NOW, anchor_pinned=False
    )
    assert isinstance(plan, Resume)
    clock = Clock(10.0, plan.clock_anchor)
    starts_at = clock.anchor + (NOW - clock.anchor) * clock.rate
    assert starts_at == pytest.approx(newest + 1.0, abs=1e-3)


def test_a_real_speed_or_pinned_clock_cannot_go_back_behind_stored_fixes() -> None:
    stored = {"wc01-1": (WHERE, NOW + 600)}
    for rate, pinned in ((1.0, False), (10.0, True)):
        plan = plan_resume(stored, now=NOW, rate=rate, anchor=NOW, anchor_pinned=pinned)
        assert (
            plan
            == "the stored city's clock is 10 min ahead of this start (its last run was faster)"
        )
