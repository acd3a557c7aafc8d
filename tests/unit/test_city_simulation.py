"""The simulated city without a server: the demo city's files, officers' behaviour, incident
arrivals and the simulated dispatcher, all stepped by hand with `now`."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import networkx as nx
import pytest
import shapely

from devices.registry import load_bindings
from gis.areas import DISTRICT, Area, AreaId, voronoi_cells
from gis.coords import LonLat, haversine_m
from simulators.city import Behaviour, CityModel, Duty
from simulators.cityfiles import DEMO_TEAMS, build_demo_city, district_outline, load_sim_city
from simulators.incidents import DAILY_PROFILE, DispatcherBot, DispatcherPlan, IncidentArrivals

T0 = 1_795_000_000.0  # 2026-11-19 08:26:40 UTC, 16:26 in Jinhua


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    return load_sim_city(build_demo_city(tmp_path_factory.mktemp("city"), officers_per_team=2))


def test_voronoi_cells_tile_the_district_without_overlap() -> None:
    name, outline = district_outline()
    assert name == "婺城区"
    cells = voronoi_cells(Area(AreaId("330702"), name, DISTRICT, outline), 17, seed=1)
    assert len(cells) == 17
    union = shapely.union_all([c.geometry for c in cells])
    assert shapely.symmetric_difference(union, outline).area < 1e-9 * outline.area + 1e-12
    assert sum(c.geometry.area for c in cells) == pytest.approx(outline.area, rel=1e-9)
    sizes = sorted(c.geometry.area for c in cells)
    assert sizes[-1] < 3 * sizes[0], "Lloyd relaxation keeps cells of comparable size"
    again = voronoi_cells(Area(AreaId("330702"), name, DISTRICT, outline), 17, seed=1)
    assert [c.geometry.wkb for c in again] == [c.geometry.wkb for c in cells]


def test_demo_city_has_a_team_and_streets_in_every_cell(city) -> None:
    assert len(city.areas) == DEMO_TEAMS
    assert len(city.officers) == 2 * DEMO_TEAMS
    assert {o.area for o in city.officers} == {a.id for a in city.areas.areas}
    for area in city.areas.areas:
        assert len(city.nodes_in(area.id)) >= 20, area.id
    assert len(city.streets.largest_component()) >= 0.99 * len(city.streets)


def order(point: LonLat, order_id: str = "O-1") -> dict:
    return {"_type": "dispatch", "order_id": order_id, "lon": point.lon, "lat": point.lat}


def run(model: CityModel, start: float, end: float, step: float = 1.0) -> list:
    out, t = [], start
    while t <= end:
        out += model.step(t)
        t += step
    return out


def test_an_officer_accepts_drives_there_handles_and_reports_done(city) -> None:
    behaviour = Behaviour(accept_delay_s=(10, 20), reject_probability=0, handling_s=(60, 90))
    model = CityModel(city, behaviour=behaviour, seed=3, now=T0)
    run(model, T0, T0 + 30)
    target = model.point_near("officer001", 1200)
    received = model.deliver("officer001", order(target), T0 + 31)
    assert [m.payload["status"] for m in received] == ["received"]
    out = run(model, T0 + 32, T0 + 900)
    acks = [(m.at, m.payload["status"]) for m in out if m.suffix == "ack"]
    assert [status for _, status in acks] == ["accepted", "done"]
    accepted_at, done_at = acks[0][0], acks[1][0]
    assert T0 + 41 <= accepted_at <= T0 + 52
    fixes = [m for m in out if m.user == "officer001" and m.suffix == ""]
    at_scene = [
        f for f in fixes if haversine_m(LonLat(f.payload["lon"], f.payload["lat"]), target) < 1
    ]
    assert at_scene, "the officer reached the incident"
    arrived = at_scene[0].at
    assert 60 - behaviour.report_every_s <= done_at - arrived <= 90 + 1
    # Driving speed between acceptance and arrival never exceeds the response speed.
    assert max(f.payload["vel"] for f in fixes if accepted_at < f.at < arrived) <= 40
    assert model.officers["officer001"].duty is Duty.PATROL


def test_a_busy_officer_rejects_and_a_withdrawal_ends_the_order(city) -> None:
    model = CityModel(city, behaviour=Behaviour(reject_probability=0), seed=4, now=T0)
    target = model.point_near("officer002", 500)
    model.deliver("officer002", order(target, "O-1"), T0)
    second = model.deliver("officer002", order(target, "O-2"), T0 + 1)
    assert [(m.payload["order_id"], m.payload["status"]) for m in second] == [("O-2", "rejected")]
    model.deliver("officer002", {"_type": "dispatch", "order_id": "O-1", "cancel": True}, T0 + 2)
    assert model.officers["officer002"].duty is Duty.PATROL
    out = run(model, T0 + 3, T0 + 120)
    assert not [m for m in out if m.suffix == "ack"], "no answer to a withdrawn order"


def test_every_officer_reports_at_its_interval_with_plausible_fields(city) -> None:
    model = CityModel(city, behaviour=Behaviour(report_every_s=5), seed=5, now=T0)
    out = run(model, T0, T0 + 60, step=0.5)
    per_device: dict[str, list[float]] = {}
    for m in out:
        per_device.setdefault(m.device, []).append(m.at)
        assert m.payload["_type"] == "location"
        assert 0 < m.payload["batt"] <= 100 and 0 <= m.payload["cog"] < 360
        assert city.areas.area_for(LonLat(m.payload["lon"], m.payload["lat"])) is not None
    assert len(per_device) == len(city.officers)
    for times in per_device.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) in (12, 13) and all(g == pytest.approx(5, abs=0.5) for g in gaps)


def test_a_resumed_officer_starts_where_last_stored_and_moves_on_plausibly(city) -> None:
    first, second = city.officers[0].officer, city.officers[1].officer
    fresh = CityModel(city, behaviour=Behaviour(report_every_s=5), seed=5, now=T0)
    # Where the first was last seen: another officer's starting street node, in the city.
    last = fresh.officers[second].position
    resumed = CityModel(
        city,
        behaviour=Behaviour(report_every_s=5),
        seed=5,
        now=T0,
        resume_at={first: last, second: LonLat(0.0, 0.0)},  # the second: outside the city
    )
    assert resumed.officers[first].position == last
    assert resumed.officers[second].position == fresh.officers[second].position
    fixes = [m for m in run(resumed, T0, T0 + 10, step=0.5) if m.user == first]
    assert fixes
    moved_m = haversine_m(last, LonLat(fixes[0].payload["lon"], fixes[0].payload["lat"]))
    assert moved_m <= Behaviour().patrol_kmh / 3.6 * 10 + 1


def test_arrivals_follow_the_rate_and_the_daily_profile(city) -> None:
    model = CityModel(city, behaviour=Behaviour(), seed=1, now=T0)
    places = model.street_points()
    arrivals = IncidentArrivals(places, per_hour=60, seed=9, now=T0)
    days = 5
    reports = arrivals.due(T0 + days * 86400)
    assert 60 * 24 * days * 0.9 < len(reports) < 60 * 24 * days * 1.1
    by_hour = [0] * 24
    for r in reports:
        by_hour[int((r.at + 8 * 3600) % 86400 // 3600)] += 1
    quietest, busiest = (
        DAILY_PROFILE.index(min(DAILY_PROFILE)),
        DAILY_PROFILE.index(max(DAILY_PROFILE)),
    )
    assert by_hour[busiest] > 5 * by_hour[quietest]
    assert all(city.areas.area_for(LonLat(r.lon, r.lat)) is not None for r in reports)
    again = IncidentArrivals(places, per_hour=60, seed=9, now=T0).due(T0 + days * 86400)
    assert again == reports


def test_the_simulated_dispatcher_acts_once_per_phase_after_its_delay() -> None:
    bot = DispatcherBot(DispatcherPlan(dispatch_after_s=(10, 10), close_after_s=30), seed=1)
    reported = {"id": "A", "phase": "reported", "order": None, "past_officers": []}
    assert bot.actions([reported], T0) == []
    assert bot.actions([reported], T0 + 9) == []
    assert bot.actions([reported], T0 + 10) == [("A", "dispatch")]
    assert bot.actions([reported], T0 + 11) == [], "never twice"
    rejected = {"id": "A", "phase": "acknowledged", "order": None, "past_officers": ["x"]}
    bot.actions([rejected], T0 + 20)
    assert bot.actions([rejected], T0 + 41) == [("A", "redispatch")]
    again = {**rejected, "past_officers": ["x", "y"]}
    bot.actions([again], T0 + 50)
    assert bot.actions([again], T0 + 71) == [("A", "redispatch")], "each rejection answered"
    resolved = {"id": "A", "phase": "resolved", "order": {"id": "O"}, "past_officers": []}
    bot.actions([resolved], T0 + 100)
    assert bot.actions([resolved], T0 + 129) == []
    assert bot.actions([resolved], T0 + 130) == [("A", "close")]
    on_scene = {"id": "B", "phase": "on_scene", "order": {"id": "O"}, "past_officers": []}
    assert bot.actions([on_scene], T0 + 1000) == []


def test_demo_city_folder_is_complete(tmp_path: Path) -> None:
    folder = build_demo_city(tmp_path / "city", officers_per_team=1)
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "areas.geojson",
        "streets.graphml",
        "places.geojson",
        "roster.yaml",
        "devices.csv",
    }
    places = json.loads((folder / "places.geojson").read_text(encoding="utf-8"))["features"]
    assert len(places) == 3 * DEMO_TEAMS and len({p["properties"]["name"] for p in places}) == 51
    streets = nx.read_graphml(folder / "streets.graphml")
    assert all(data["name"] for _, _, data in streets.edges(data=True))


def test_a_city_whose_officers_carry_phones_of_one_name_binds_them_as_pairs(
    tmp_path: Path,
) -> None:
    folder = build_demo_city(tmp_path / "city", officers_per_team=1)
    bodycams = list(csv.DictReader((folder / "devices.csv").open(encoding="utf-8")))
    with (folder / "devices.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["user", "device", "team"])
        writer.writeheader()
        writer.writerows(
            {"user": r["officer"], "device": "phone", "team": r["team"]} for r in bodycams
        )
    officers = load_sim_city(folder).officers
    assert [(o.officer, o.team) for o in officers] == [(r["officer"], r["team"]) for r in bodycams]
    assert {o.device for o in officers} == {"phone"}
    bindings = load_bindings(folder / "devices.csv")
    assert sorted(b.key for b in bindings) == sorted(f"{o.officer}/phone" for o in officers)
