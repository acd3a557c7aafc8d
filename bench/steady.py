"""Whether a series sampled over a long run has settled (pure): its least-squares slope over
the last window and whether the change that slope makes over the window stays within a
tolerance of the series' level there. A soak reads its memory and queue series with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FLAT_TOLERANCE = 0.10  # ±10 % of the level over the window


@dataclass(frozen=True, slots=True)
class Trend:
    """A series over its last window: the slope per minute, the change that slope makes over
    the window as a share of the mean level there, and whether that share is within bounds."""

    slope_per_min: float
    change: float  # slope × window / mean level; ±inf when the level is 0 and the slope is not
    flat: bool
    samples: int  # in the window


def trend(
    times_s: Sequence[float],
    values: Sequence[float],
    *,
    window_s: float = 600.0,
    tolerance: float = FLAT_TOLERANCE,
) -> Trend:
    """The trend of `values` sampled at `times_s` (seconds, ascending) over the last
    `window_s` of the run (all of it when the run is shorter). Fewer than two samples there
    tell no slope: flat, with a slope of 0."""
    if len(times_s) != len(values):
        raise ValueError(f"{len(times_s)} times for {len(values)} values")
    if not times_s:
        return Trend(0.0, 0.0, True, 0)
    since = times_s[-1] - window_s
    window = [(t, v) for t, v in zip(times_s, values, strict=True) if t >= since]
    ts = np.array([t for t, _ in window], dtype=float)
    vs = np.array([v for _, v in window], dtype=float)
    if len(window) < 2 or float(np.ptp(ts)) == 0.0:
        return Trend(0.0, 0.0, True, len(window))
    # Least squares about the means: a constant series has exactly no slope.
    dt = ts - ts.mean()
    slope_per_s = float((dt * (vs - vs.mean())).sum() / (dt * dt).sum())
    span_s = min(window_s, float(ts[-1] - ts[0]))
    level = abs(float(vs.mean()))
    if level == 0.0:
        change = 0.0 if slope_per_s == 0.0 else math.copysign(math.inf, slope_per_s)
    else:
        change = slope_per_s * span_s / level
    return Trend(slope_per_s * 60, change, abs(change) <= tolerance, len(window))


def verdict(found: Trend, tolerance: float = FLAT_TOLERANCE) -> str:
    """One phrase for a table: "flat within ±10 %" or "grows 23 %" / "shrinks 14 %"."""
    if found.flat:
        return f"flat within ±{tolerance:.0%}"
    direction = "grows" if found.change > 0 else "shrinks"
    if math.isinf(found.change):
        return f"{direction} from 0"
    return f"{direction} {abs(found.change):.0%}"
