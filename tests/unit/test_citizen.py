"""Citizen reports' pure rules: the categories a citizen may choose, phone numbers as one
contact however written, where a report is, and the incident it opens."""

from __future__ import annotations

import pytest

from dispatch.core.citizen import (
    CitizenReportError,
    FormPlace,
    PlaceFrom,
    citizen_categories,
    citizen_category,
    incident_report,
    normalised_contact,
    place_of,
)
from dispatch.core.model import IncidentId, Source
from dispatch.core.policy import PolicyBook, UnknownCategory
from gis.coords import CoordinateError, Datum, LonLat, gcj02_to_wgs84

BOOK = PolicyBook.from_dict({"categories": {"fire_hazard": {"label": "消防隐患"}}})


def test_a_citizen_chooses_any_category_but_a_devices_alarm() -> None:
    allowed = citizen_categories(BOOK)
    assert "sos" not in allowed
    assert allowed["street_vending"] == "占道经营" and allowed["fire_hazard"] == "消防隐患"
    assert citizen_category(BOOK, "street_vending") == "street_vending"
    assert citizen_category(BOOK, "占道经营") == "street_vending"
    for name in ("sos", "执法人员求救", "graffiti"):
        with pytest.raises(UnknownCategory) as refused:
            citizen_category(BOOK, name)
        assert refused.value.known == allowed
        listed = str(refused.value).partition("known categories:")[2]
        assert "sos" not in listed and "street_vending (占道经营)" in listed


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("13800000000", "13800000000"),
        ("+86 138-0000-0000", "13800000000"),
        ("0086 13800000000", "13800000000"),
        ("(0579) 8234 5678", "057982345678"),
        (" 12345 ", "12345"),
    ],
)
def test_a_phone_number_is_one_contact_however_it_is_written(written: str, digits: str) -> None:
    assert normalised_contact(written) == digits


@pytest.mark.parametrize("written", ["", "1234", "1380000000012345", "138-abcd-0000", "１３８"])
def test_what_is_no_phone_number_is_refused(written: str) -> None:
    with pytest.raises(CitizenReportError, match="no phone number"):
        normalised_contact(written)


def test_the_form_place_wins_and_is_brought_into_wgs84() -> None:
    exif = LonLat(119.0, 29.0)
    place = place_of(FormPlace(119.6545, 29.0775, Datum.GCJ02), exif)
    assert place.came_from is PlaceFrom.FORM
    assert place.location == gcj02_to_wgs84(119.6545, 29.0775)
    assert place_of(None, exif).came_from is PlaceFrom.EXIF
    assert place_of(None, exif).location == exif
    with pytest.raises(CitizenReportError, match="no place"):
        place_of(None, None)
    with pytest.raises(CoordinateError):
        place_of(FormPlace(200.0, 29.0, Datum.WGS84), None)


def test_the_report_opens_a_citizen_incident_titled_by_its_description() -> None:
    place = place_of(None, LonLat(119.65, 29.08))
    event = incident_report(IncidentId("INC-1"), "street_vending", place, "  路口\n有摊贩  ")
    assert (event.source, event.category, event.location) == (
        Source.CITIZEN_REPORT,
        "street_vending",
        LonLat(119.65, 29.08),
    )
    assert event.title == "路口 有摊贩" and event.by == "citizen"
    long = incident_report(IncidentId("INC-2"), "street_vending", place, "长" * 500)
    assert len(long.title) == 200 and long.title.endswith("…")
