"""Times at the HTTP edge: stored as UTC epoch seconds, shown in the user's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import HTTPException


def parse_time(text: str, zone: str) -> float:
    """Epoch seconds, or ISO 8601; an ISO time without offset is read in `zone`."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            422, f"time {text!r} is neither epoch seconds nor ISO 8601 (2026-11-22T08:00:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.timestamp()


def local_iso(epoch_s: float, zone: str) -> str:
    return datetime.fromtimestamp(epoch_s, ZoneInfo(zone)).isoformat(timespec="seconds")
