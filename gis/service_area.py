"""The service area: where a center's devices can plausibly be.

A fix outside it is a device misconfigured, spoofed or reporting another datum, never an
officer on duty. The area is built once at start (the city's outline grown by a margin, or a
plain box) and prepared, so testing a fix is one point-in-polygon query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import shapely
from shapely.geometry.base import BaseGeometry

from gis.coords import LonLat
from gis.plane import LocalPlane

# The grown outline is simplified to this share of the margin: a 50 km margin moves by at most
# 500 m, and a district outline of thousands of vertices shrinks to a few hundred.
_SIMPLIFY_SHARE = 0.01
# Where China's datums apply: the default for a center that names neither a city nor a box.
CHINA = (73.66, 3.86, 135.05, 53.55)


@dataclass(frozen=True, slots=True, eq=False)
class ServiceArea:
    """A WGS-84 shape, prepared for point tests, and the words a rejection uses for it."""

    shape: BaseGeometry
    description: str
    # Every fix is tested: comparisons decide the points outside the bounds, and all of a box.
    _bounds: tuple[float, float, float, float] = field(init=False)
    _is_box: bool = field(init=False)

    def __post_init__(self) -> None:
        shapely.prepare(self.shape)
        object.__setattr__(self, "_bounds", tuple(self.shape.bounds))
        object.__setattr__(self, "_is_box", bool(self.shape.equals(self.shape.envelope)))

    def covers(self, point: LonLat) -> bool:
        west, south, east, north = self._bounds
        if not (west <= point.lon <= east and south <= point.lat <= north):
            return False
        return self._is_box or bool(shapely.intersects_xy(self.shape, point.lon, point.lat))


def box_area(west: float, south: float, east: float, north: float) -> ServiceArea:
    if not (-180.0 <= west < east <= 180.0 and -90.0 <= south < north <= 90.0):
        raise ValueError(
            f"a service-area box is west, south, east, north in degrees with west < east and "
            f"south < north; got ({west}, {south}, {east}, {north})"
        )
    return ServiceArea(
        shapely.box(west, south, east, north), f"the box ({west}, {south}, {east}, {north})"
    )


def area_around(outlines: Iterable[BaseGeometry], margin_m: float, name: str) -> ServiceArea:
    """The union of `outlines` grown by `margin_m` metres on every side."""
    if margin_m < 0:
        raise ValueError(f"a service-area margin cannot be negative, got {margin_m} m")
    outline = shapely.union_all(list(outlines))
    if outline.is_empty:
        raise ValueError(f"{name} has no outline to draw a service area around")
    centre = outline.centroid
    plane = LocalPlane(LonLat(centre.x, centre.y))
    (outline_m,) = plane.geometries([outline])
    grown = outline_m.buffer(margin_m).simplify(max(margin_m * _SIMPLIFY_SHARE, 1.0))
    return ServiceArea(plane.to_degrees(grown), f"{name} and {margin_m / 1000:g} km around it")
