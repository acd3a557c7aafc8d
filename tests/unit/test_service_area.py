"""The service area: a city's outline grown by a true margin in metres, or a box, and the
settings that choose between them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import shapely
from pydantic import ValidationError

from dispatch.city import City
from dispatch.core.roster import Roster
from dispatch.settings import Settings
from gis.areas import Area, AreaId, AreaIndex
from gis.coords import LonLat, haversine_m
from gis.routing import StraightLine
from gis.service_area import area_around, box_area

JINHUA = shapely.box(119.4, 28.9, 119.9, 29.3)


def walked(start: LonLat, bearing_deg: float, metres: float) -> LonLat:
    """Where `metres` along a bearing from `start` ends, found by bisection on haversine."""
    low, high = 0.0, 2 * metres / 111_000
    theta = math.radians(bearing_deg)
    for _ in range(60):
        mid = (low + high) / 2
        point = LonLat(
            start.lon + mid * math.sin(theta) / math.cos(math.radians(start.lat)),
            start.lat + mid * math.cos(theta),
        )
        low, high = (mid, high) if haversine_m(start, point) < metres else (low, mid)
    return point


@pytest.mark.parametrize("bearing_deg", [0, 45, 90, 135, 180, 225, 270, 315])
def test_the_margin_is_metres_on_the_ground_in_every_direction(bearing_deg: float) -> None:
    area = area_around([JINHUA], 50_000, "Jinhua")
    corner = {
        0: LonLat(119.65, 29.3),
        45: LonLat(119.9, 29.3),
        90: LonLat(119.9, 29.1),
        135: LonLat(119.9, 28.9),
        180: LonLat(119.65, 28.9),
        225: LonLat(119.4, 28.9),
        270: LonLat(119.4, 29.1),
        315: LonLat(119.4, 29.3),
    }[bearing_deg]
    # Simplification may move the border by 1% of the margin; grant it twice that.
    assert area.covers(walked(corner, bearing_deg, 49_000))
    assert not area.covers(walked(corner, bearing_deg, 51_000))


def test_outlines_are_joined_and_a_box_is_a_box() -> None:
    west, east = shapely.box(119.0, 29.0, 119.1, 29.1), shapely.box(119.5, 29.0, 119.6, 29.1)
    area = area_around([west, east], 1_000, "two districts")
    assert area.covers(LonLat(119.05, 29.05)) and area.covers(LonLat(119.55, 29.05))
    assert not area.covers(LonLat(119.3, 29.05))
    box = box_area(119.2, 28.8, 120.1, 29.4)
    assert box.covers(LonLat(119.2, 28.8)) and not box.covers(LonLat(120.2, 29.0))
    assert box.description == "the box (119.2, 28.8, 120.1, 29.4)"


@pytest.mark.parametrize(
    "corners", [(120.1, 28.8, 119.2, 29.4), (119.2, 29.4, 120.1, 28.8), (-181, 0, 10, 10)]
)
def test_a_box_the_wrong_way_round_is_refused(corners) -> None:
    with pytest.raises(ValueError, match="west < east"):
        box_area(*corners)


def test_a_negative_margin_and_an_empty_outline_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        area_around([JINHUA], -1, "Jinhua")
    with pytest.raises(ValueError, match="no outline"):
        area_around([], 50_000, "nowhere")


def city() -> City:
    areas = AreaIndex([Area(AreaId("330702"), "婺城区", 1, JINHUA)])
    return City(areas, Roster([], [], areas), StraightLine())


def test_settings_draw_the_area_from_the_city_or_the_box(monkeypatch) -> None:
    far_east = LonLat(130.2, 29.1)  # 1,000 km east of the city, inside China's box
    plain = Settings(areas_file=Path("jinhua.geojson"))
    around_city = plain.limits(city()).service_area
    assert around_city.description == "the outline of jinhua.geojson and 50 km around it"
    assert not around_city.covers(far_east)
    assert Settings().limits(None).service_area.covers(far_east), "no city: China's box"
    monkeypatch.setenv("YIWANG_SERVICE_AREA_MARGIN_KM", "2")
    narrow = Settings(areas_file=Path("jinhua.geojson")).limits(city()).service_area
    assert narrow.covers(LonLat(119.92, 29.1)) and not narrow.covers(LonLat(119.95, 29.1))
    monkeypatch.setenv("YIWANG_SERVICE_AREA_BBOX", "[119.2, 28.8, 120.1, 29.4]")
    boxed = Settings(areas_file=Path("jinhua.geojson")).limits(city()).service_area
    assert boxed.covers(LonLat(120.05, 29.1)) and not boxed.covers(LonLat(120.2, 29.1))
    monkeypatch.setenv("YIWANG_SERVICE_AREA_BBOX", "[120.1, 28.8, 119.2, 29.4]")
    with pytest.raises(ValidationError, match="west < east"):
        Settings()
    monkeypatch.setenv("YIWANG_SERVICE_AREA_BBOX", "[119.2, 28.8, 120.1, 29.4]")
    monkeypatch.setenv("YIWANG_SERVICE_AREA_MARGIN_KM", "-5")
    with pytest.raises(ValidationError):
        Settings()
