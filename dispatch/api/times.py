"""Times at the HTTP edge: stored as UTC epoch seconds, shown in the user's zone."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import HTTPException

# One way to show a time in the center's zone; alerts carry it from the core.
from dispatch.core.alerts import local_iso

__all__ = ["LATEST_EPOCH_S", "local_iso", "parse_time"]

LATEST_EPOCH_S = 32503680000  # 3000-01-01: beyond it PostgreSQL's timestamps overflow
_MAX_TEXT = 64


def parse_time(text: str, zone: str) -> float:
    """Epoch seconds, or ISO 8601; an ISO time without offset is read in `zone`. Either lies
    between 1970 and 3000 (422 otherwise: NaN, inf and 1e400 parse as floats, too)."""
    shown = repr(text[:_MAX_TEXT])
    try:
        epoch_s = float(text)
    except ValueError:
        epoch_s = _iso_epoch_s(text, shown, zone)
    if not (math.isfinite(epoch_s) and 0 <= epoch_s <= LATEST_EPOCH_S):
        raise HTTPException(422, f"time {shown} lies outside 1970-01-01 to 3000-01-01")
    return epoch_s


def _iso_epoch_s(text: str, shown: str, zone: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(zone))
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise HTTPException(
            422, f"time {shown} is neither epoch seconds nor ISO 8601 (2026-11-22T08:00:00)"
        ) from None
