"""GIS against real data: Beijing districts in two datums, T-Drive fixes, Shenzhen streets."""

from __future__ import annotations

import collections
import csv
from itertools import pairwise

import numpy as np
import pytest
import shapely

from gis.areas import AreaIndex, load_areas
from gis.coords import LonLat, haversine_m
from gis.routing import StreetGraph

pytestmark = pytest.mark.data

TIANANMEN = LonLat(116.3975, 39.9087)


@pytest.fixture(scope="module")
def boundaries(shared_data):
    return shared_data / "admin-boundaries-cn"


@pytest.fixture(scope="module")
def beijing_wgs(boundaries) -> AreaIndex:
    path = boundaries / "beijing_districts_wgs84.geojson"
    return AreaIndex(load_areas(path, datum="wgs84", id_field="adcode", name_field="name"))


@pytest.fixture(scope="module")
def beijing_gcj(boundaries) -> AreaIndex:
    path = boundaries / "beijing_districts_gcj02.geojson"
    return AreaIndex(load_areas(path, datum="gcj02", id_field="adcode", name_field="name"))


def test_tiananmen_is_in_dongcheng_in_both_datums(beijing_wgs, beijing_gcj) -> None:
    assert beijing_wgs.area_for(TIANANMEN).name == "东城区"
    assert beijing_gcj.area_for(TIANANMEN).name == "东城区"


def test_the_datum_must_be_declared_and_is_applied(boundaries, beijing_gcj) -> None:
    path = boundaries / "beijing_districts_gcj02.geojson"
    with pytest.raises(TypeError):
        load_areas(path, id_field="adcode", name_field="name")  # type: ignore[call-arg]
    raw = AreaIndex(load_areas(path, datum="wgs84", id_field="adcode", name_field="name"))
    converted, unconverted = beijing_gcj.get("110101").geometry, raw.get("110101").geometry
    shift = haversine_m(
        LonLat(converted.centroid.x, converted.centroid.y),
        LonLat(unconverted.centroid.x, unconverted.centroid.y),
    )
    assert 400 < shift < 700  # what a GCJ-02 polygon would be off by, unconverted


def read_tdrive(shared_data) -> tuple[np.ndarray, np.ndarray]:
    path = shared_data / "tdrive-beijing-1h" / "tdrive_2008-02-02_16h_shared.csv"
    with path.open(newline="") as handle:
        rows = [(float(r["lon"]), float(r["lat"])) for r in csv.DictReader(handle)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def test_every_tdrive_fix_inside_beijing_gets_one_district(
    shared_data, beijing_wgs, beijing_gcj
) -> None:
    lons, lats = read_tdrive(shared_data)
    assert len(lons) == 110_654
    found = beijing_wgs.indices_for(lons, lats)
    beijing = shapely.union_all([a.geometry for a in beijing_wgs.areas])
    inside = shapely.covers(beijing, shapely.points(lons, lats))
    assert np.array_equal(found >= 0, inside)  # a district for every fix inside, none outside
    counts = collections.Counter(beijing_wgs.areas[i].name for i in found if i >= 0)
    print(
        f"\nT-Drive fixes per district: {dict(counts.most_common())}; outside Beijing {int((found < 0).sum())}"
    )
    assert counts["朝阳区"] > counts["海淀区"] > 10_000
    # The detailed GCJ-02 outlines, converted, agree with the coarse WGS-84 set almost everywhere.
    agree = beijing_gcj.indices_for(lons[inside], lats[inside])
    same = np.array(
        [
            a >= 0 and beijing_gcj.areas[a].id == beijing_wgs.areas[b].id
            for a, b in zip(agree, found[inside], strict=True)
        ]
    )
    assert same.mean() > 0.97


@pytest.fixture(scope="module")
def shenzhen(shared_data) -> StreetGraph:
    return StreetGraph.from_graphml(
        shared_data / "osm-shenzhen-futian" / "shenzhen_futian_drive.graphml"
    )


def test_shenzhen_eta_grows_with_distance(shenzhen) -> None:
    rng = np.random.default_rng(7)
    component = shenzhen.largest_component()
    assert len(component) > 1500
    destination = LonLat(*shenzhen.lonlat[component[0]])
    origins = [LonLat(*shenzhen.lonlat[n]) for n in rng.choice(component, 300, replace=False)]
    eta = shenzhen.travel_times_to(destination, origins)
    distance = np.array([haversine_m(o, destination) for o in origins])
    assert np.isfinite(eta).all()
    assert (eta >= distance / (80 / 3.6) - 1e-6).all()  # never faster than the fastest road
    # One-way streets make single pairs noisy; by distance quintile the median time must rise.
    quintiles = np.array_split(np.argsort(distance), 5)
    medians = [float(np.median(eta[q])) for q in quintiles]
    assert medians == sorted(medians) and medians[0] < medians[-1] / 2, medians


def test_a_route_exists_between_any_two_snapped_points_of_the_component(shenzhen) -> None:
    rng = np.random.default_rng(11)
    component = set(shenzhen.largest_component().tolist())
    west, south = shenzhen.lonlat.min(axis=0)
    east, north = shenzhen.lonlat.max(axis=0)
    points = [LonLat(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(40)]
    nodes, _ = shenzhen.snap(points)
    inside = [p for p, n in zip(points, nodes, strict=True) if int(n) in component]
    assert len(inside) == len(points)
    for a, b in pairwise(inside):
        assert shenzhen.route(a, b), (a, b)
        assert np.isfinite(shenzhen.travel_times_to(b, [a])[0])
