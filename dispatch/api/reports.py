"""Citizen reports (随手拍): `POST /api/reports`, a public channel, and the photos it keeps.

Anyone may report, without an account: a photo, a category of `GET /api/reports/categories`,
a description and a phone number, and the place (lon, lat and their datum) unless the photo's
EXIF holds it. What keeps the channel usable in public:

- the body is at most `report_max_bytes` and a form upload (`BodyGuard`: 413 without reading
  a larger one, 415 for any other body);
- each phone number and each client address may send `reports_per_*_per_hour` reports an
  hour (429 with Retry-After; a refused report counts too, so a flood costs its sender);
- the photo's type is read from its bytes and the photo is re-encoded without its metadata
  (`dispatch.photos`): what is kept, served and exported is never what was uploaded;
- the place must lie in the center's areas (or its service area without a city).

The report opens an incident (source `citizen`, its title the description) and is kept with
it; the photo is stored under its sha256 and served only to those who may read the incident
(`GET /api/incidents/{id}/photos/{sha256}`). Outcomes are counted under `citizen` in
/api/ingest/stats.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import Response

from dispatch.api.auth import address_of, require
from dispatch.api.incidents import command_body, incident_or_raise, new_incident_id
from dispatch.api.state import AppState, app_state
from dispatch.core.access import Permission, Principal
from dispatch.core.citizen import (
    CitizenReportError,
    FormPlace,
    Place,
    citizen_categories,
    citizen_category,
    incident_report,
    normalised_contact,
    place_of,
)
from dispatch.core.policy import UnknownCategory
from dispatch.photos import MEDIA_TYPE, PhotoRefused, clean_photo
from gis.coords import CoordinateError, Datum

log = logging.getLogger(__name__)

PATH = "/api/reports"
CHANNEL = "citizen"
WINDOW_S = 3600.0
_SHA256 = r"^[0-9a-f]{64}$"
# Lines of text: no control characters but tab and line breaks (PostgreSQL holds no NUL).
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

router = APIRouter(tags=["citizen reports"])

Reader = Annotated[Principal, Depends(require(Permission.READ_INCIDENTS))]


@router.get("/api/reports/categories")
def categories(request: Request) -> dict[str, dict[str, str]]:
    """What a citizen may report: category key → label (public, for the report page)."""
    return {"categories": citizen_categories(app_state(request).policies)}


@router.post(
    PATH,
    status_code=201,
    responses={
        413: {"description": "the upload is larger than the limit"},
        415: {"description": "not a form upload, or the file is not a JPEG, PNG or HEIC photo"},
        429: {"description": "too many reports from this phone number or address: Retry-After"},
    },
)
def receive_report(
    request: Request,
    photo: Annotated[UploadFile, File(description="a JPEG, PNG or HEIC photo")],
    category: Annotated[
        str, Form(max_length=64, description="a key or label of GET /api/reports/categories")
    ],
    contact: Annotated[
        str, Form(min_length=1, max_length=32, description="a phone number to call back")
    ],
    description: Annotated[
        str, Form(max_length=2000, pattern=_TEXT, description="what is wrong")
    ] = "",
    lon: Annotated[float | None, Form(ge=-180, le=180, allow_inf_nan=False)] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90, allow_inf_nan=False)] = None,
    crs: Annotated[
        Datum | None, Form(description="the datum of lon and lat: wgs84, gcj02 (Amap), …")
    ] = None,
) -> dict[str, Any]:
    """Open an incident from a citizen's photo report; 201 with the incident's id."""
    state = app_state(request)
    now = state.clock()
    address = address_of(request)
    try:
        phone = normalised_contact(contact)
    except CitizenReportError as exc:
        raise _rejected(state, 422, "bad_contact", str(exc)) from None
    limits = state.settings
    wait_s = state.store.citizen.allow(
        {
            f"contact:{phone}": limits.reports_per_contact_per_hour,
            f"address:{address}": limits.reports_per_address_per_hour,
        },
        now=now,
        window_s=WINDOW_S,
    )
    if wait_s > 0:
        state.store.ingest.count_channel(CHANNEL, "refused:rate_limited")
        retry_after = max(1, math.ceil(wait_s / state.clock.rate))
        raise HTTPException(
            429,
            f"too many reports from this phone number or address; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    try:
        key = citizen_category(state.policies, category)
    except UnknownCategory:
        state.store.ingest.count_channel(CHANNEL, "rejected:unknown_category")
        raise
    form = _form_place(state, lon, lat, crs)
    try:
        clean = clean_photo(photo.file.read(state.settings.report_max_bytes + 1))
    except PhotoRefused as exc:
        status = 422 if exc.reason == "too_many_pixels" else 415
        raise _rejected(state, status, exc.reason, str(exc)) from None
    try:
        place = place_of(form, clean.gps)
    except CitizenReportError as exc:
        raise _rejected(state, 422, "no_place", str(exc)) from None
    except CoordinateError as exc:
        raise _rejected(state, 422, "bad_place", str(exc)) from None
    if not _served(state, place):
        raise _rejected(
            state, 422, "outside_area",
            f"the place ({place.location.lon:.6f}, {place.location.lat:.6f}, WGS-84, from the "
            f"{place.came_from.value}) lies outside the areas this center serves",
        )  # fmt: skip
    sha256 = state.settings.photos().put(clean.jpeg)
    event = incident_report(new_incident_id(now, state.settings.timezone), key, place, description)
    record = {
        "incident": event.incident,
        "received_at": now,
        "category": key,
        "description": description,
        "contact": phone,
        "address": address,
        "place": {
            "lon": place.location.lon,
            "lat": place.location.lat,
            "from": place.came_from.value,
            "sent": None if form is None else {"lon": lon, "lat": lat, "crs": form.datum.value},
        },
        "photos": [clean.record()],
    }
    actor = {"account": CHANNEL, "role": CHANNEL, "address": address}
    state.store.citizen.receive(event.incident, record, command_body(event), actor)
    state.store.ingest.count_channel(CHANNEL, "created")
    log.info(
        "citizen report incident=%s photo=%s place_from=%s",
        event.incident, sha256[:16], place.came_from.value,
    )  # fmt: skip
    return {
        "incident": event.incident,
        "photo": sha256,
        "lon": place.location.lon,
        "lat": place.location.lat,
        "place_from": place.came_from.value,
    }


def _form_place(
    state: AppState, lon: float | None, lat: float | None, crs: Datum | None
) -> FormPlace | None:
    """The place the form gives: lon, lat and crs together, or none of them."""
    given = [
        name for name, value in (("lon", lon), ("lat", lat), ("crs", crs)) if value is not None
    ]
    if not given:
        return None
    if len(given) < 3:
        raise _rejected(
            state, 422, "bad_place",
            f"send lon, lat and crs together (got only {', '.join(given)}), or none of them and "
            "a photo with its GPS position",
        )  # fmt: skip
    assert lon is not None and lat is not None and crs is not None
    return FormPlace(lon, lat, crs)


def _served(state: AppState, place: Place) -> bool:
    """Whether the place lies in the city's areas (or the service area, without a city)."""
    if state.city is not None:
        return state.city.areas.area_for(place.location) is not None
    return state.settings.service_area(None).covers(place.location)


def _rejected(state: AppState, status: int, reason: str, detail: str) -> HTTPException:
    state.store.ingest.count_channel(CHANNEL, f"rejected:{reason}")
    return HTTPException(status, detail)


# The console's side: the photos of an incident, for those who may read it -----------------


@router.get("/api/incidents/{incident_id}/photos")
def incident_photos(incident_id: str, request: Request, caller: Reader) -> list[dict[str, Any]]:
    """The photos a citizen's report brought, with where the report was and whom to call."""
    incident_or_raise(request, incident_id, caller)
    report = app_state(request).store.citizen.report(incident_id)
    if report is None:
        return []
    return [
        {
            **photo,
            "url": f"/api/incidents/{incident_id}/photos/{photo['sha256']}",
            "received_at": report["received_at"],
            "place_from": report["place"]["from"],
            "contact": report["contact"],
        }
        for photo in report["photos"]
    ]


@router.get(
    "/api/incidents/{incident_id}/photos/{sha256}",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "the re-encoded photo"}},
)
def incident_photo(
    incident_id: str,
    request: Request,
    caller: Reader,
    sha256: Annotated[str, Path(pattern=_SHA256, description="the photo's sha256")],
) -> Response:
    """One photo of the incident, as stored (its sha256 is that of these bytes)."""
    incident_or_raise(request, incident_id, caller)
    state = app_state(request)
    report = state.store.citizen.report(incident_id)
    if report is None or sha256 not in {p["sha256"] for p in report["photos"]}:
        raise HTTPException(404, f"incident {incident_id} has no photo {sha256}")
    data = state.settings.photos().read(sha256)
    if data is None:
        log.error("photo missing incident=%s sha256=%s", incident_id, sha256)
        raise HTTPException(404, f"the photo {sha256} of {incident_id} is missing from the store")
    return Response(
        data,
        media_type=MEDIA_TYPE,
        headers={
            "cache-control": "private, max-age=86400, immutable",
            "content-disposition": f'inline; filename="{sha256}.jpg"',
        },
    )
