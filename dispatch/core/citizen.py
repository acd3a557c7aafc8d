"""Citizen reports (随手拍): what a citizen may report, where it is, and the incident it opens
(pure).

A citizen sends a photo from a public page with a category of the catalogue (any but `sos`,
which a device's alarm opens), a description and a phone number to be called back on. The
place is the one the form gives, in the datum it declares (a phone's browser gives WGS-84, an
Amap pick GCJ-02), or else the GPS position the camera wrote into the photo's EXIF (WGS-84,
as GPS receivers give it). A phone number is normalised before it counts against its rate
limit: `+86 138-0000-0000` and `13800000000` are one contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dispatch.core.events import IncidentReported
from dispatch.core.model import IncidentId, Source
from dispatch.core.policy import PolicyBook, UnknownCategory
from gis.coords import Datum, LonLat, to_wgs84

# A device's alarm, never a citizen's report.
NOT_FOR_CITIZENS = frozenset({"sos"})
TITLE_MAX = 200
# Mobile (11 digits) and fixed lines with their area code (up to 12), written any usual way.
_SEPARATORS = re.compile(r"[\s\-()（）]")
_COUNTRY = re.compile(r"^(\+86|0086)")
_DIGITS = re.compile(r"^[0-9]{5,15}$")


class CitizenReportError(ValueError):
    """A report that cannot open an incident; the message says what to send instead."""


class PlaceFrom(StrEnum):
    FORM = "form"  # lon, lat and their datum, sent with the report
    EXIF = "exif"  # the GPS position in the photo's EXIF


@dataclass(frozen=True, slots=True)
class FormPlace:
    lon: float
    lat: float
    datum: Datum


@dataclass(frozen=True, slots=True)
class Place:
    location: LonLat  # WGS-84
    came_from: PlaceFrom


def citizen_categories(policies: PolicyBook) -> dict[str, str]:
    """The categories a citizen may choose: key → label."""
    return {k: v for k, v in policies.categories.items() if k not in NOT_FOR_CITIZENS}


def citizen_category(policies: PolicyBook, name: str) -> str:
    """The catalogue's key for `name` (a key, a label or an alias); UnknownCategory listing
    the citizens' categories for any other, `sos` included."""
    allowed = citizen_categories(policies)
    try:
        key = policies.category_named(name)
    except UnknownCategory:
        raise UnknownCategory(name, allowed) from None
    if key not in allowed:
        raise UnknownCategory(name, allowed)
    return key


def normalised_contact(phone: str) -> str:
    """The phone number as digits only, without China's country code."""
    digits = _COUNTRY.sub("", _SEPARATORS.sub("", phone.strip()))
    if not _DIGITS.match(digits):
        raise CitizenReportError(
            f"contact: {phone[:40]!r} is no phone number; send 5 to 15 digits, such as "
            "13800000000 or 0579-82345678"
        )
    return digits


def place_of(form: FormPlace | None, from_exif: LonLat | None) -> Place:
    """The report's place: the form's, brought into WGS-84, or else the photo's EXIF GPS.
    CitizenReportError when there is neither (CoordinateError for a point no datum holds)."""
    if form is not None:
        return Place(to_wgs84(form.lon, form.lat, form.datum), PlaceFrom.FORM)
    if from_exif is not None:
        return Place(to_wgs84(from_exif.lon, from_exif.lat, Datum.WGS84), PlaceFrom.EXIF)
    raise CitizenReportError(
        "the report has no place: send lon, lat and crs (wgs84 or gcj02), or a photo whose "
        "EXIF holds the GPS position (turn on the camera's location tag)"
    )


def incident_report(
    incident: IncidentId, category: str, place: Place, description: str, *, by: str = "citizen"
) -> IncidentReported:
    """The report that opens the citizen's incident; its title is the description."""
    text = " ".join(description.split())
    title = text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"
    return IncidentReported(
        incident,
        category,
        3,
        place.location,
        Source.CITIZEN_REPORT,
        title=title,
        by=by,
        description=text,
    )
