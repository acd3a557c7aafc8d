"""Alerts: deterministic ids, one acknowledgement, what screens keep, replay's view."""

from __future__ import annotations

import pytest

from dispatch.api.live import Scope
from dispatch.core import effects as fx
from dispatch.core.access import AreaScope
from dispatch.core.alert_sources import effect_alert, shortfall_alert
from dispatch.core.alerts import (
    KEEP_ACKNOWLEDGED_S,
    AlertKind,
    AlreadyAcknowledgedError,
    acknowledged,
    alert_from_record,
    alert_id,
    alert_record,
    as_of,
    in_scope,
    kept,
    new_alert,
)
from dispatch.core.model import IncidentId, Milestone
from dispatch.core.policy import EscalationAction
from tests.unit.test_access import IN_D2, IN_G1, scope

T0 = 1_795_000_000.0
ZONE = "Asia/Shanghai"


def _alert(n: int = 0, at: float = T0):
    return new_alert(
        AlertKind.WARNING, occurrence=f"o{n}", message="m", raised_at=at, incident=f"INC-{n}"
    )


def test_the_same_occurrence_gives_the_same_id_whenever_it_is_seen():
    warn = fx.Warn(IncidentId("INC-1"), Milestone.RESPOND, due_at=T0 + 60)
    first, again = effect_alert(warn, None, T0), effect_alert(warn, None, T0 + 5)
    assert first.id == again.id and first.id.startswith("ALR-")
    other = effect_alert(fx.Warn(IncidentId("INC-1"), Milestone.HANDLE, T0), None, T0)
    assert other.id != first.id


def test_escalation_levels_are_distinct_alerts():
    def esc(level: int):
        effect = fx.Escalate(
            IncidentId("INC-1"), Milestone.RESPOND, level, EscalationAction.REASSIGN, T0
        )
        return effect_alert(effect, None, T0)

    assert esc(1).id != esc(2).id
    assert esc(2).level == 2
    assert alert_id(AlertKind.ESCALATION, "INC-1", 1, "respond") == esc(1).id


def test_a_shortfall_is_raised_as_of_the_shift_end():
    alert = shortfall_alert("T1", T0 - 8 * 3600, T0, grids=2)
    assert alert.raised_at == T0 and alert.team == "T1"
    assert alert.id == shortfall_alert("T1", T0 - 8 * 3600, T0, grids=2).id


def test_a_second_acknowledgement_is_refused_naming_the_first():
    done = acknowledged(_alert(), "zhang", T0 + 30, zone=ZONE)
    assert done.acknowledged_by == "zhang" and done.is_acknowledged
    with pytest.raises(AlreadyAcknowledgedError, match="already acknowledged by zhang at 2026-"):
        acknowledged(done, "li", T0 + 40, zone=ZONE)


def test_screens_keep_unacknowledged_and_recently_acknowledged_only():
    now = T0 + 2 * KEEP_ACKNOWLEDGED_S
    old_open = _alert(1, at=T0)
    old_acked = acknowledged(_alert(2, at=T0), "zhang", T0 + 1, zone=ZONE)
    recent_acked = acknowledged(_alert(3, at=now - 100), "zhang", now - 50, zone=ZONE)
    shown = kept([old_open, old_acked, recent_acked], now)
    assert [a.id for a in shown] == [recent_acked.id, old_open.id]


def test_screens_keep_the_newest_at_most():
    alerts = [_alert(n, at=T0 + n) for n in range(250)]
    shown = kept(alerts, T0 + 300)
    assert len(shown) == 200
    assert shown[0].raised_at == T0 + 249 and shown[-1].raised_at == T0 + 50


def test_replay_sees_an_alert_as_it_was():
    done = acknowledged(_alert(at=T0), "zhang", T0 + 60, zone=ZONE)
    assert as_of(done, T0 - 1) is None
    before_ack = as_of(done, T0 + 30)
    assert before_ack is not None and before_ack.acknowledged_by is None
    assert as_of(done, T0 + 60) == done


def test_a_record_round_trips_with_local_times():
    done = acknowledged(_alert(at=T0), "zhang", T0 + 60, zone=ZONE)
    record = alert_record(done, ZONE)
    assert record["raised_time"].endswith("+08:00")
    assert record["acknowledged_time"] is not None
    assert alert_from_record(record) == done
    assert set(record) >= {
        "id", "kind", "incident", "level", "message", "raised_at", "raised_time",
        "acknowledged_by", "acknowledged_at", "acknowledged_time",
    }  # fmt: skip


def test_an_area_scope_sees_alerts_by_place_else_by_team() -> None:
    placed = new_alert(
        AlertKind.WARNING, occurrence="r", message="m", raised_at=T0, location=tuple(IN_G1)
    )
    team_only = shortfall_alert("other-district-team", T0 - 3600, T0, grids=1)
    nowhere = new_alert(AlertKind.SENSOR_SILENT, occurrence="s", message="m", raised_at=T0)
    assert in_scope(placed, scope("S1")) and not in_scope(placed, scope("D2"))
    assert in_scope(team_only, scope("D2")) and not in_scope(team_only, scope("D1"))
    assert not in_scope(nowhere, scope("D1")) and in_scope(nowhere, scope(None))


def test_a_scoped_screen_gets_alert_entries_of_its_area_and_an_officer_those_of_its_work():
    record = alert_record(
        new_alert(
            AlertKind.NEW_INCIDENT,
            occurrence="reported",
            message="m",
            raised_at=T0,
            incident="INC-9",
            location=tuple(IN_D2),
        ),
        ZONE,
    )
    assert Scope(None, None, scope("D2")).view("alert", record) == record
    assert Scope(None, None, scope("D1")).view("alert_ack", record) is None
    officer = Scope(None, "ou", AreaScope(None, None, None))
    assert officer.view("alert", record) is None
    officer.incidents.add("INC-9")  # once the officer's screen was shown the incident
    assert officer.view("alert", record) == record
