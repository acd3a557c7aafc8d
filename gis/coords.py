"""Coordinates: the WGS-84 point type, great-circle distance, and China's map datums.

Everything inside Yiwang is WGS-84 (CGCS2000 is treated as equal, the difference is sub-metre).
Chinese web maps and SDKs report GCJ-02 (Amap, Tencent) or BD-09 (Baidu); those inputs are
converted here, at the edge, with the constants every public implementation shares
(Krasovsky semi-major axis 6378245 m, ee = 0.00669342162296594323, x_pi = pi * 3000 / 180).
Functions take and return (lon, lat) in that order.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEG_LAT = 111_320.0
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
# Below this residual the inverse is exact well beyond GNSS accuracy (1e-9 deg is ~0.1 mm).
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_STEPS = 30


class LonLat(NamedTuple):
    """A WGS-84 position in degrees, longitude first."""

    lon: float
    lat: float


class Datum(StrEnum):
    """The coordinate systems a device or map may report in."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def haversine_m(a: LonLat, b: LonLat) -> float:
    """Great-circle distance in metres between two WGS-84 points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a.lon, a.lat, b.lon, b.lat))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def to_local_metres(lonlat: np.ndarray, origin: LonLat) -> np.ndarray:
    """(n, 2) lon/lat → metres east and north of `origin` on an equirectangular plane.

    Accurate to well under a metre across a few kilometres: enough for fences, snapping and
    simplification, which all work on city-sized extents.
    """
    points = np.atleast_2d(np.asarray(lonlat, dtype=float))
    east = (points[:, 0] - origin.lon) * METRES_PER_DEG_LAT * math.cos(math.radians(origin.lat))
    north = (points[:, 1] - origin.lat) * METRES_PER_DEG_LAT
    return np.column_stack((east, north))


def out_of_china(lon: float, lat: float) -> bool:
    """True where the GCJ-02 offset is not applied (the published bounding box)."""
    return not (73.66 < lon < 135.05 and 3.86 < lat < 53.55)


def _offset_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> LonLat:
    """WGS-84 to GCJ-02; identity outside China."""
    if out_of_china(lon, lat):
        return LonLat(lon, lat)
    dlat = _offset_lat(lon - 105.0, lat - 35.0)
    dlon = _offset_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _KRASOVSKY_EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrtmagic * math.cos(radlat) * math.pi)
    return LonLat(lon + dlon, lat + dlat)


def gcj02_to_wgs84(lon: float, lat: float) -> LonLat:
    """GCJ-02 to WGS-84 by fixed-point iteration on the forward transform.

    The one-step inverse most libraries ship is off by up to ~2 m; iterating until the forward
    transform of the guess lands on the input brings it under a millimetre.
    """
    if out_of_china(lon, lat):
        return LonLat(lon, lat)
    guess_lon, guess_lat = lon, lat
    for _ in range(_INVERSE_MAX_STEPS):
        fwd = wgs84_to_gcj02(guess_lon, guess_lat)
        dlon, dlat = fwd.lon - lon, fwd.lat - lat
        guess_lon, guess_lat = guess_lon - dlon, guess_lat - dlat
        if abs(dlon) < _INVERSE_TOLERANCE_DEG and abs(dlat) < _INVERSE_TOLERANCE_DEG:
            break
    return LonLat(guess_lon, guess_lat)


def gcj02_to_bd09(lon: float, lat: float) -> LonLat:
    """GCJ-02 to Baidu's BD-09."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return LonLat(z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006)


def bd09_to_gcj02(lon: float, lat: float) -> LonLat:
    """Baidu's BD-09 to GCJ-02 (the standard closed-form inverse)."""
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return LonLat(z * math.cos(theta), z * math.sin(theta))


def wgs84_to_bd09(lon: float, lat: float) -> LonLat:
    """WGS-84 to BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> LonLat:
    """BD-09 to WGS-84, through GCJ-02 with the exact inverse."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


class CoordinateError(ValueError):
    """A point no datum can hold: a coordinate that is not finite or out of its range."""


def check_lonlat(lon: float, lat: float) -> None:
    """Raise CoordinateError unless (lon, lat) are finite degrees within their ranges."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise CoordinateError(f"coordinates ({lon}, {lat}) are not finite numbers")
    if not -90.0 <= lat <= 90.0:
        raise CoordinateError(f"lat {lat} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise CoordinateError(f"lon {lon} is outside -180..180")


def to_wgs84(lon: float, lat: float, datum: Datum) -> LonLat:
    """Bring a point reported in `datum` into WGS-84; CoordinateError if it is no point.

    The transforms' trigonometry fails (or returns NaN) far outside the ranges, so the
    input is checked before any arithmetic."""
    check_lonlat(lon, lat)
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if datum is Datum.BD09:
        return bd09_to_wgs84(lon, lat)
    return LonLat(lon, lat)
