"""Point → innermost area against a brute-force scan, borders included; grids; the tree."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given
from hypothesis import strategies as st

from gis.areas import DISTRICT, GRID, STREET, Area, AreaId, AreaIndex, grid_cells
from gis.coords import LonLat

CELL = 0.01  # degrees; cells share exact borders


def square(col: int, row: int, size: float = CELL) -> shapely.Polygon:
    return shapely.box(
        120 + col * size, 30 + row * size, 120 + (col + 1) * size, 30 + (row + 1) * size
    )


DISTRICT_AREA = Area(AreaId("d"), "示例区", DISTRICT, square(0, 0, 5 * CELL))
STREETS = [
    Area(
        AreaId(f"s{n}"),
        f"街道{n}",
        STREET,
        shapely.box(120 + n * 0.025, 30, 120 + (n + 1) * 0.025, 30.05),
        AreaId("d"),
    )
    for n in range(2)
]
CELLS = [
    Area(
        AreaId(f"g{row}{col}"),
        f"网格{row}{col}",
        GRID,
        square(col, row),
        AreaId("s0" if col < 2.5 else "s1"),
    )
    for row in range(4)
    for col in range(4)
]
ALL = [DISTRICT_AREA, *STREETS, *CELLS]
INDEX = AreaIndex(reversed(ALL))  # load order must not matter


def brute_force(point: LonLat) -> Area | None:
    covering = [a for a in ALL if a.geometry.covers(shapely.Point(point))]
    return min(covering, key=lambda a: (-a.level, a.id), default=None)


# Coordinates that often fall exactly on a cell border (multiples of CELL).
lon = st.one_of(
    st.integers(-1, 6).map(lambda k: 120 + k * CELL), st.floats(119.99, 120.06, allow_nan=False)
)
lat = st.one_of(
    st.integers(-1, 6).map(lambda k: 30 + k * CELL), st.floats(29.99, 30.06, allow_nan=False)
)


@given(lon, lat)
def test_area_for_matches_brute_force_even_on_borders(x: float, y: float) -> None:
    assert INDEX.area_for(LonLat(x, y)) == brute_force(LonLat(x, y))


@given(st.lists(st.tuples(lon, lat), min_size=1, max_size=50))
def test_batch_lookup_matches_single_lookups(points) -> None:
    lons, lats = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    found = INDEX.indices_for(lons, lats)
    expected = [INDEX.area_for(LonLat(*p)) for p in points]
    assert [INDEX.areas[i] if i >= 0 else None for i in found] == expected


def test_shared_border_goes_to_the_smallest_id() -> None:
    border = LonLat(120 + CELL, 30 + CELL / 2)  # between g00 and g01
    assert INDEX.area_for(border).id == "g00"
    corner = LonLat(120 + CELL, 30 + CELL)  # g00, g01, g10, g11 meet
    assert INDEX.area_for(corner).id == "g00"


def test_outside_every_area_is_none() -> None:
    assert INDEX.area_for(LonLat(121.0, 31.0)) is None
    assert INDEX.area_for(LonLat(120.045, 30.045)).id == "s1"  # beyond the grid, inside a street


def test_neighbours_are_same_level_and_nearest_first() -> None:
    ids = [a.id for a in INDEX.neighbours("g11")]
    assert set(ids) == {"g00", "g01", "g02", "g10", "g12", "g20", "g21", "g22"}
    assert set(ids[:4]) == {"g01", "g10", "g12", "g21"}  # edge neighbours before corners
    assert [a.id for a in INDEX.neighbours("s0")] == ["s1"]


def test_tree_navigation() -> None:
    assert [a.id for a in INDEX.ancestors("g03")] == ["s1", "d"]
    assert [a.id for a in INDEX.children("d")] == ["s0", "s1"]


def test_grid_cells_tile_the_district_and_nothing_else() -> None:
    outline = Area(AreaId("w"), "婺城区", DISTRICT, shapely.Point(119.65, 29.08).buffer(0.03))
    cells = grid_cells(outline, 1000.0)
    union = shapely.union_all([c.geometry for c in cells])
    assert abs(union.area - outline.geometry.area) < 1e-9
    assert all(outline.geometry.buffer(1e-9).covers(c.geometry) for c in cells)
    assert {c.level for c in cells} == {DISTRICT + 1} and {c.parent for c in cells} == {"w"}
    assert 25 < len(cells) < 40  # a 6.7 km wide disc in ~1 km squares
    index = AreaIndex([outline, *cells])
    assert index.area_for(LonLat(119.65, 29.08)).parent == "w"
