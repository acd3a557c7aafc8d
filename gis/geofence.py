"""Geofences: circles and polygons, with enter/exit that neither misses nor flickers.

Arrival at an incident is an `enter` of its fence, so a missed transition is a missed
milestone. Three rules make the events trustworthy:
- accuracy gating: a fix whose accuracy radius is larger than `max_acc_m` moves no state;
- hysteresis: enter at the border, exit only `hysteresis_m` beyond it, so GPS jitter on the
  border does not produce enter/exit storms;
- segment crossing: when fixes are sparse and two consecutive ones lie outside while the
  straight line between them passes through the fence, the pass is reported as an enter and
  an exit at interpolated times.
All distances are metres in a local plane around the fence, accurate to well under a metre
over a few kilometres.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.coords import LonLat, haversine_m, to_local_metres


class Crossing(StrEnum):
    ENTER = "enter"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Crossing
    at: float
    interpolated: bool = False


class Fence:
    """A circle (centre and radius) or a WGS-84 polygon, measured in a local metric plane."""

    def __init__(self, origin: LonLat, shape_m: BaseGeometry) -> None:
        self.origin = origin
        self.shape_m = shape_m
        shapely.prepare(self.shape_m)

    @classmethod
    def circle(cls, centre: LonLat, radius_m: float) -> Fence:
        if radius_m <= 0:
            raise ValueError(f"a fence radius must be positive, got {radius_m} m")
        return cls(centre, shapely.Point(0.0, 0.0).buffer(radius_m, quad_segs=32))

    @classmethod
    def polygon(cls, polygon: BaseGeometry) -> Fence:
        centre = polygon.centroid
        fence = cls(LonLat(centre.x, centre.y), polygon)
        fence.shape_m = shapely.transform(polygon, lambda xy: to_local_metres(xy, fence.origin))
        shapely.prepare(fence.shape_m)
        return fence

    def to_plane(self, point: LonLat) -> tuple[float, float]:
        east, north = to_local_metres(np.array([point]), self.origin)[0]
        return float(east), float(north)

    def signed_distance_m(self, point: LonLat) -> float:
        """Metres to the border: negative inside, positive outside."""
        p = shapely.Point(self.to_plane(point))
        border = float(self.shape_m.boundary.distance(p))
        return -border if self.shape_m.contains(p) else border

    def segment_passes_through(self, a: LonLat, b: LonLat) -> bool:
        return bool(
            self.shape_m.intersects(shapely.LineString([self.to_plane(a), self.to_plane(b)]))
        )


@dataclass(frozen=True, slots=True)
class FenceState:
    """Where a device stands relative to one fence; `inside` is None before the first fix."""

    inside: bool | None = None
    entered_at: float | None = None
    last_point: LonLat | None = None
    last_at: float | None = None

    def dwell_s(self, now: float) -> float:
        """Seconds inside since the last enter (0 when outside)."""
        return now - self.entered_at if self.inside and self.entered_at is not None else 0.0


def observe(
    fence: Fence,
    state: FenceState,
    point: LonLat,
    at: float,
    *,
    acc_m: float | None = None,
    hysteresis_m: float = 15.0,
    max_acc_m: float = 100.0,
) -> tuple[FenceState, list[Transition]]:
    """Feed one fix (in time order); returns the new state and the transitions it caused.

    A first fix inside counts as an enter: an officer already on scene has arrived.
    """
    if acc_m is not None and acc_m > max_acc_m:
        return state, []
    if state.last_at is not None and at < state.last_at:
        return state, []  # out of order: a late fix never rewrites what was already decided
    distance = fence.signed_distance_m(point)
    moved = replace(state, last_point=point, last_at=at)
    if state.inside is None:
        if distance <= 0:
            return replace(moved, inside=True, entered_at=at), [Transition(Crossing.ENTER, at)]
        return replace(moved, inside=False), []
    if not state.inside:
        if distance <= 0:
            return replace(moved, inside=True, entered_at=at), [Transition(Crossing.ENTER, at)]
        if (
            state.last_point is not None
            and state.last_at is not None
            and fence.segment_passes_through(state.last_point, point)
        ):
            middle = (state.last_at + at) / 2
            return moved, [
                Transition(Crossing.ENTER, middle, interpolated=True),
                Transition(Crossing.EXIT, middle, interpolated=True),
            ]
        return moved, []
    if distance > hysteresis_m:
        return replace(moved, inside=False, entered_at=None), [Transition(Crossing.EXIT, at)]
    return moved, []


def has_departed(
    start: LonLat, recent: list[tuple[LonLat, float | None]], threshold_m: float
) -> bool:
    """True when the last two fixes are both farther than `threshold_m` (plus their accuracy)
    from where the officer accepted the order: moving, not jitter."""
    if len(recent) < 2:
        return False
    return all(haversine_m(start, point) - (acc or 0.0) > threshold_m for point, acc in recent[-2:])
