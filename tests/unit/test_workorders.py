"""Hotline work orders without servers: the incident an order opens (category by key, label or
alias; the declared datum brought into WGS-84), the result read from an ended incident's audit,
and the retry schedule."""

from __future__ import annotations

import json
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from dispatch.core.model import Incident, IncidentId, Phase, Source
from dispatch.core.policy import PolicyBook, PolicyError, UnknownCategory
from dispatch.core.workorders import (
    RETRY_CAP_S,
    TITLE_MAX,
    WorkOrder,
    closing_notice,
    incident_report,
    retry_delay_s,
)
from gis.coords import Datum, LonLat, gcj02_to_wgs84

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = 1_763_800_000.0
BOOK = PolicyBook.from_dict(
    {"categories": {"fire_hazard": {"label": "消防隐患", "aliases": ["城市管理/消防安全隐患"]}}}
)
ORDER = WorkOrder(
    "000123", Source.HOTLINE_12345, "占道经营", 119.6545, 29.0775, Datum.GCJ02, "八一南街", "摊贩"
)


@pytest.mark.parametrize(
    ("named", "category"),
    [
        ("street_vending", "street_vending"),  # the key
        ("占道经营", "street_vending"),  # the label
        ("消防隐患", "fire_hazard"),  # a label the policy file gives
        ("城市管理/消防安全隐患", "fire_hazard"),  # an alias it gives
    ],
)
def test_a_category_is_named_by_key_label_or_alias(named: str, category: str) -> None:
    report = incident_report(replace(ORDER, category=named), IncidentId("INC-1"), BOOK, by="h")
    assert report.category == category


def test_an_unknown_category_is_refused_with_the_catalogue() -> None:
    with pytest.raises(UnknownCategory) as refused:
        incident_report(replace(ORDER, category="其他"), IncidentId("INC-1"), BOOK, by="h")
    assert "'其他'" in str(refused.value)
    assert {"street_vending", "fire_hazard"} <= set(refused.value.known)


def test_an_alias_names_one_category_only() -> None:
    with pytest.raises(PolicyError, match="already names category 'a'"):
        PolicyBook.from_dict({"categories": {"a": {"aliases": ["x"]}, "b": {"aliases": ["x"]}}})


def test_the_report_is_in_wgs84_from_the_hotline_and_titled_by_address_and_text() -> None:
    report = incident_report(ORDER, IncidentId("INC-1"), BOOK, by="hotline-12345")
    assert report.location == gcj02_to_wgs84(ORDER.lon, ORDER.lat)
    assert (report.source, report.priority, report.by) == (Source.HOTLINE_12345, 3, "hotline-12345")
    assert report.title == "八一南街：摊贩"
    wgs84 = incident_report(replace(ORDER, datum=Datum.WGS84), IncidentId("I"), BOOK, by="h")
    assert wgs84.location == LonLat(ORDER.lon, ORDER.lat)
    long = incident_report(replace(ORDER, text="长" * 500), IncidentId("I"), BOOK, by="h")
    assert len(long.title) == TITLE_MAX and long.title.endswith("…")
    assert ORDER.ticket == "12345:000123"
    assert replace(ORDER, source=Source.HOTLINE_8890).ticket == "8890:000123"


def incident(phase: Phase, **more: object) -> Incident:
    return Incident(
        IncidentId("INC-1"), "street_vending", 3, LonLat(119.65, 29.08), Source.HOTLINE_12345,
        T0, phase=phase, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def event(at: float, name: str, **detail: object) -> dict[str, str]:
    return {"kind": "event", "at": f"{at:.3f}", "event": name, "detail": json.dumps(detail)}


def test_an_open_incident_has_no_result_yet() -> None:
    assert (
        closing_notice("1", "12345", incident(Phase.RESOLVED), [], seen_at=T0, zone=SHANGHAI)
        is None
    )


def test_a_closed_incident_reports_its_handling_result_and_when_it_closed() -> None:
    records = [
        event(T0 + 500, "IncidentResolved", result="摊贩已劝离"),
        event(T0 + 600, "IncidentClosed"),
    ]
    notice = closing_notice(
        "000123", "12345", incident(Phase.CLOSED), records, seen_at=T0 + 700, zone=SHANGHAI
    )
    assert notice is not None
    body = notice.body(SHANGHAI)
    assert (body["outcome"], body["result"], body["closed_at"]) == (
        "closed",
        "摊贩已劝离",
        T0 + 600,
    )
    assert body["closed_time"] == "2025-11-22T16:36:40+08:00"
    assert body["milestones"] == {
        "respond": "not_due",
        "turn_out": "not_due",
        "arrive": "not_due",
        "handle": "not_due",
    }
    assert (body["ticket_id"], body["source"], body["incident_id"]) == ("000123", "12345", "INC-1")


def test_a_cancelled_or_merged_incident_says_why() -> None:
    cancelled = closing_notice(
        "1", "12345", incident(Phase.CANCELLED),
        [event(T0 + 60, "IncidentCancelled", reason="重复工单")], seen_at=T0 + 90, zone=SHANGHAI,
    )  # fmt: skip
    assert cancelled is not None and (cancelled.outcome, cancelled.result) == (
        "cancelled",
        "重复工单",
    )
    merged = closing_notice(
        "1", "12345", incident(Phase.MERGED, merged_into=IncidentId("INC-0")),
        [event(T0 + 30, "DuplicateMerged", into="INC-0")], seen_at=T0 + 90, zone=SHANGHAI,
    )  # fmt: skip
    assert merged is not None and (merged.outcome, merged.result) == ("merged", "merged into INC-0")
    assert merged.closed_at == T0 + 30


def test_without_the_ending_in_the_audit_it_ended_when_seen() -> None:
    notice = closing_notice(
        "1", "12345", incident(Phase.CLOSED), [], seen_at=T0 + 90, zone=SHANGHAI
    )
    assert notice is not None and (notice.closed_at, notice.result) == (T0 + 90, "")


def test_a_retry_waits_twice_as_long_as_the_one_before_up_to_the_cap() -> None:
    assert [retry_delay_s(n, 5.0) for n in range(1, 6)] == [5.0, 10.0, 20.0, 40.0, 80.0]
    assert retry_delay_s(30, 5.0) == RETRY_CAP_S
