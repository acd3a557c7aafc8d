"""A flat plane of metres around a point, for geometry that must be measured, not guessed.

An azimuthal equidistant projection centred on `origin`: distances from the centre are true,
and the scale error across it is about (d/R)²/6, under 1e-6 at 15 km and 4e-5 (4 mm per
100 m) at 100 km, far below GNSS noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from gis.coords import LonLat

Floats = NDArray[np.float64]


class LocalPlane:
    """Metres east/north on an azimuthal equidistant projection centred on `origin`."""

    def __init__(self, origin: LonLat) -> None:
        self.origin = origin
        plane = f"+proj=aeqd +lat_0={origin.lat} +lon_0={origin.lon} +datum=WGS84 +units=m +no_defs"
        degrees = "+proj=longlat +datum=WGS84 +no_defs"
        self._forward = Transformer.from_crs(degrees, plane, always_xy=True)
        self._inverse = Transformer.from_crs(plane, degrees, always_xy=True)

    def xy(self, lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
        x, y = self._forward.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def geometries(
        self, geometries: Sequence[BaseGeometry] | NDArray[np.object_]
    ) -> NDArray[np.object_]:
        def project(coords: Floats) -> Floats:
            x, y = self.xy(coords[:, 0], coords[:, 1])
            return np.column_stack((x, y))

        projected: NDArray[np.object_] = shapely.transform(
            np.asarray(geometries, dtype=object), project
        )
        return projected

    def to_degrees(self, geometry: BaseGeometry) -> BaseGeometry:
        """A geometry drawn in this plane's metres, back in WGS-84 degrees."""

        def unproject(coords: Floats) -> Floats:
            lon, lat = self._inverse.transform(coords[:, 0], coords[:, 1])
            return np.column_stack((lon, lat))

        degrees: BaseGeometry = shapely.transform(geometry, unproject)
        return degrees
