"""What an intake form offers: the catalogue of categories (GET /api/categories) and the
type-ahead over the city's named places and streets (GET /api/places)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from dispatch.api.auth import authenticated, require, scope_of
from dispatch.api.state import app_state
from dispatch.core.access import Permission, Principal
from dispatch.core.citizen import citizen_categories
from gis.places import STREET

router = APIRouter(tags=["intake"])

Caller = Annotated[Principal, Depends(authenticated)]
Reporter = Annotated[Principal, Depends(require(Permission.REPORT_INCIDENTS))]


@router.get("/api/categories")
def categories(request: Request, _: Caller) -> list[dict[str, Any]]:
    """The categories a report may name, in the catalogue's order: key, Chinese and English
    names, the priority a report starts with, and whether a citizen may report it."""
    book = app_state(request).policies
    citizens = citizen_categories(book)
    return [
        {
            "key": key,
            "zh": label,
            "en": book.english_name(key),
            "priority": book.priority_of(key),
            "citizen": key in citizens,
        }
        for key, label in book.categories.items()
    ]


@router.get("/api/places")
def places(
    request: Request,
    caller: Reporter,
    q: str = Query(max_length=64, description="part of a place's or a street's name"),
    limit: int = Query(10, ge=1, le=50),
) -> list[dict[str, Any]]:
    """The city's named places and streets whose name holds `q`, best first (equal, then
    starting with it, then holding it), inside the caller's area scope; WGS-84. A street
    comes with no address, a place with the street it lies on."""
    if not q.strip():
        raise HTTPException(422, "q: type part of a name to search for (it was blank)")
    state = app_state(request)
    if state.city is None:
        return []
    city, scope = state.city, scope_of(caller, state)
    found = city.places.search(q, limit=limit, where=lambda p: scope.covers_point(p.location))
    answer = []
    for place in found:
        area = city.areas.area_for(place.location)
        answer.append(
            {
                "name": place.name,
                "kind": place.kind,
                "lon": place.location.lon,
                "lat": place.location.lat,
                "area": None if area is None else area.id,
                "area_name": "" if area is None else area.name,
                "address": ""
                if place.kind == STREET
                else city.places.nearest_street(place.location) or "",
            }
        )
    return answer
