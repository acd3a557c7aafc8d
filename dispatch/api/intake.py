"""What an intake form offers: the catalogue of categories (GET /api/categories) and the
type-ahead over the city's named places and streets (GET /api/places)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dispatch.api.auth import authenticated
from dispatch.api.state import app_state
from dispatch.core.access import Principal
from dispatch.core.citizen import citizen_categories

router = APIRouter(tags=["intake"])

Caller = Annotated[Principal, Depends(authenticated)]


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
