"""Datum transforms against published vectors, and round trips under hypothesis."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.coords import (
    CoordinateError,
    Datum,
    LonLat,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    haversine_m,
    out_of_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# wandergis/coordtransform README, input (116.404, 39.915) as (lng, lat).
WANDERGIS = [
    (bd09_to_gcj02, (116.39762729119315, 39.90865673957631)),
    (gcj02_to_bd09, (116.41036949371029, 39.92133699351021)),
    (wgs84_to_gcj02, (116.41024449916938, 39.91640428150164)),
]

# googollee/eviltransform: (wgs lat, wgs lng, gcj lat, gcj lng).
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
]


@pytest.mark.parametrize(("transform", "expected"), WANDERGIS)
def test_published_wandergis_vectors(transform, expected) -> None:
    assert transform(116.404, 39.915) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("wlat", "wlng", "glat", "glng"), EVILTRANSFORM)
def test_published_wgs_to_gcj_vectors(wlat, wlng, glat, glng) -> None:
    assert wgs84_to_gcj02(wlng, wlat) == pytest.approx((glng, glat), abs=1e-6)


@pytest.mark.parametrize(("wlat", "wlng", "glat", "glng"), EVILTRANSFORM)
def test_exact_inverse_lands_within_half_a_metre(wlat, wlng, glat, glng) -> None:
    back = gcj02_to_wgs84(glng, glat)
    assert haversine_m(back, LonLat(wlng, wlat)) < 0.5


def test_transbigdata_bd09_vectors() -> None:
    assert wgs84_to_bd09(121.432966, 31.130154) == pytest.approx(
        (121.44400198, 31.13461178), abs=1e-8
    )
    assert gcj02_to_bd09(120, 30) == pytest.approx((120.00640999946, 30.006359999864998), abs=1e-10)
    assert wgs84_to_bd09(120, 30) == pytest.approx(
        (120.011070620552, 30.003883055512777), abs=1e-10
    )


def test_beijing_railway_station_across_three_datums() -> None:
    wgs = LonLat(116.42079, 39.90105)
    assert haversine_m(wgs84_to_gcj02(*wgs), LonLat(116.42703, 39.90245)) < 2.0
    assert haversine_m(wgs84_to_bd09(*wgs), LonLat(116.43351, 39.90851)) < 2.0
    assert haversine_m(bd09_to_wgs84(116.43351, 39.90851), wgs) < 2.0


def test_outside_china_is_left_alone() -> None:
    assert out_of_china(5.112126, 53.430722)
    assert wgs84_to_gcj02(5.112126, 53.430722) == (5.112126, 53.430722)
    assert gcj02_to_wgs84(2.29513, 48.85833) == (2.29513, 48.85833)


def test_to_wgs84_dispatches_on_datum() -> None:
    gcj = wgs84_to_gcj02(116.3975, 39.9087)
    assert haversine_m(to_wgs84(*gcj, Datum.GCJ02), LonLat(116.3975, 39.9087)) < 0.01
    assert to_wgs84(116.3975, 39.9087, Datum.CGCS2000) == (116.3975, 39.9087)


china = st.tuples(st.floats(74.0, 134.5), st.floats(4.5, 53.0))


@given(china)
def test_gcj_round_trip_is_sub_millimetre(point) -> None:
    lon, lat = point
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert haversine_m(back, LonLat(lon, lat)) < 0.001


@given(china)
def test_bd_round_trip_is_within_half_a_metre(point) -> None:
    # BD-09 → GCJ-02 is the published closed form (it matches the vectors above), ~0.1 m off.
    lon, lat = point
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert haversine_m(back, LonLat(lon, lat)) < 0.5


@given(china)
def test_gcj_offset_has_the_known_magnitude(point) -> None:
    shift = haversine_m(LonLat(*point), wgs84_to_gcj02(*point))
    assert 0.0 < shift < 1000.0


@pytest.mark.parametrize("datum", list(Datum))
@pytest.mark.parametrize(
    ("lon", "lat", "why"),
    [
        (119.65, 1e308, "lat 1e+308 is outside -90..90"),
        (-180.5, 29.0, "lon -180.5 is outside -180..180"),
        (float("inf"), 29.0, "not finite"),
        (119.65, float("nan"), "not finite"),
    ],
)
def test_a_point_no_datum_can_hold_is_refused_before_any_arithmetic(lon, lat, why, datum) -> None:
    with pytest.raises(CoordinateError, match=re.escape(why)):
        to_wgs84(lon, lat, datum)


@given(
    lon=st.floats(-180, 180),
    lat=st.floats(-90, 90),
    datum=st.sampled_from(list(Datum)),
)
def test_every_point_in_range_converts_to_finite_degrees(lon, lat, datum) -> None:
    point = to_wgs84(lon, lat, datum)
    assert all(math.isfinite(v) for v in point)
