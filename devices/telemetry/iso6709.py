"""ISO 6709 location strings as video containers store them (`location`, `©xyz`):
`+33.1268-117.3273/`, `+47.5577+008.4697+482.123/` (latitude, longitude, optional height)."""

from __future__ import annotations

import re

from devices.telemetry.points import TelemetryError

_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?/?$")


def parse_iso6709(text: str) -> tuple[float, float, float | None]:
    """(lat, lon, height m or None) in decimal degrees."""
    match = _ISO6709.match(text.strip())
    if match is None:
        raise TelemetryError(f"{text!r} is not an ISO 6709 decimal-degree location")
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise TelemetryError(f"{text!r}: latitude or longitude out of range")
    return lat, lon, float(match.group(3)) if match.group(3) else None
