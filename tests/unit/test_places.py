"""The place index: ranked, bounded type-ahead, and the address of a point."""

from __future__ import annotations

from shapely.geometry import LineString

from gis.coords import LonLat
from gis.places import STREET, Place, PlaceIndex

# Two streets crossing at (119.65, 29.08): 人民路 runs east-west over two edges.
STREETS = [
    ("人民路", LineString([(119.64, 29.08), (119.65, 29.08)])),
    ("人民路", LineString([(119.65, 29.08), (119.66, 29.08)])),
    ("八一北街", LineString([(119.65, 29.07), (119.65, 29.09)])),
    ("", LineString([(119.64, 29.07), (119.66, 29.07)])),  # unnamed: no entry
]
PLACES = [
    Place("人民广场", "poi", LonLat(119.6505, 29.0805)),
    Place("人民医院", "hospital", LonLat(119.6405, 29.0805)),
    Place("新华书店", "poi", LonLat(119.66, 29.09)),
]


def index() -> PlaceIndex:
    return PlaceIndex(PLACES, STREETS)


def test_a_street_is_one_entry_on_the_street_itself() -> None:
    streets = [p for p in index().entries if p.kind == STREET]
    assert sorted(s.name for s in streets) == sorted(["人民路", "八一北街"])
    road = next(s for s in streets if s.name == "人民路")
    assert road.location.lat == 29.08 and 119.64 <= road.location.lon <= 119.66
    assert len(index()) == 5


def test_search_ranks_exact_then_prefix_then_substring_and_is_bounded() -> None:
    found = [p.name for p in index().search("人民", limit=10)]
    assert found == ["人民路", "人民医院", "人民广场"]  # all prefixes: shorter, then by name
    assert [p.name for p in index().search("人民路", limit=10)] == ["人民路"]
    assert [p.name for p in index().search("北街", limit=10)] == ["八一北街"]
    assert len(index().search("人", limit=2)) == 2
    assert index().search("   ", limit=5) == [] and index().search("人", limit=0) == []


def test_search_keeps_only_what_the_caller_may_see() -> None:
    east = index().search("人民", limit=10, where=lambda p: p.location.lon >= 119.645)
    assert [p.name for p in east] == ["人民路", "人民广场"]


def test_an_address_names_the_nearest_street_and_the_place_beside_it() -> None:
    assert index().address_of(LonLat(119.6502, 29.0806)) == "八一北街 人民广场附近"
    assert index().address_of(LonLat(119.6430, 29.0802)) == "人民路"
    assert index().address_of(LonLat(119.80, 29.30)) == ""
    assert PlaceIndex([]).address_of(LonLat(119.65, 29.08)) == ""
