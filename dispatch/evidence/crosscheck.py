"""How far a track from a video file lies from the officer's MQTT track at the same moments.

Each file point with a UTC time inside the MQTT track's span is compared with the MQTT
position interpolated at that time; points outside the span, or where the MQTT track has a
gap longer than `max_gap_s`, are not compared. Statistics in metres.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

from devices.telemetry.points import TelemetryPoint
from gis.coords import LonLat, haversine_m


def crosscheck(
    file_points: Sequence[TelemetryPoint],
    fixes: Sequence[tuple[int, float, float]],
    *,
    max_gap_s: float = 30.0,
) -> dict[str, Any]:
    """Distance statistics between the file's points and the interpolated MQTT track."""
    ordered = sorted(fixes)
    times = [f[0] for f in ordered]
    distances = []
    for point in file_points:
        if point.at is None or not times or not times[0] <= point.at <= times[-1]:
            continue
        after = bisect.bisect_left(times, point.at)
        before = max(after - 1, 0) if times[min(after, len(times) - 1)] != point.at else after
        (t1, lon1, lat1), (t2, lon2, lat2) = ordered[before], ordered[min(after, len(ordered) - 1)]
        if t2 - t1 > max_gap_s:
            continue
        share = 0.0 if t2 == t1 else (point.at - t1) / (t2 - t1)
        here = LonLat(lon1 + (lon2 - lon1) * share, lat1 + (lat2 - lat1) * share)
        distances.append(haversine_m(here, LonLat(point.lon, point.lat)))
    if not distances:
        return {"file_points": len(file_points), "compared": 0}
    values = np.array(distances)
    return {
        "file_points": len(file_points),
        "compared": len(values),
        "median_m": round(float(np.median(values)), 1),
        "p95_m": round(float(np.percentile(values, 95)), 1),
        "max_m": round(float(values.max()), 1),
    }
