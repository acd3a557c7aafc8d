"""The common output of every telemetry parser."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TelemetryPoint:
    """One position from a file: WGS-84 degrees, metres; `at` UTC epoch seconds when the
    file says (None: only `offset_s`, seconds from the start of the recording, is known)."""

    offset_s: float
    lat: float
    lon: float
    alt_m: float | None = None
    at: float | None = None


class TelemetryError(ValueError):
    """Telemetry that cannot be read; the message names where and what to do."""
