"""Departure and arrival seen in an officer's fixes: two fixes in a row away from the start,
accuracy gating, one arrival however the fixes jitter, late fixes ignored; who is watched."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from dispatch.core import events as ev
from dispatch.core.model import Incident, IncidentId, Order, OrderId, Phase, Source
from dispatch.core.roster import OfficerId
from dispatch.core.tracking import SceneWatcher, officers_on_the_way, silent_officers
from gis.coords import LonLat, haversine_m

T0 = 1_800_000_000.0
SCENE = LonLat(119.65, 29.08)
RADIUS_M = 50.0
M_LAT = 1 / 111_320.0  # degrees of latitude per metre
NEAR, PARTNER, OTHER = OfficerId("near"), OfficerId("partner"), OfficerId("other")
INC = IncidentId("INC-1")


def south(metres: float) -> LonLat:
    """A point `metres` south of the scene: every walk below stays on this one line."""
    return LonLat(SCENE.lon, SCENE.lat - metres * M_LAT)


def incident(
    phase: Phase,
    officers: Sequence[OfficerId] = (NEAR,),
    *,
    order: str | None = "O-1",
    on_scene: Sequence[OfficerId] = (),
    incident_id: str = "INC-1",
) -> Incident:
    return Incident(
        IncidentId(incident_id),
        "street_vending",
        2,
        SCENE,
        Source.HOTLINE_12345,
        T0,
        phase=phase,
        order=None
        if order is None
        else Order(OrderId(order), tuple(officers), T0, on_scene=tuple(on_scene)),
    )


def watching(*incidents: Incident, departure_m: float = 100.0) -> SceneWatcher:
    watcher = SceneWatcher(departure_m)
    watcher.sync(incidents, lambda _: RADIUS_M)
    return watcher


def walk(
    watcher: SceneWatcher,
    fixes: Sequence[tuple[float, float | None]],
    officer: OfficerId = NEAR,
    first_at: float = T0 + 10,
) -> list[tuple[int, ev.Event]]:
    """Feed (metres south of the scene, accuracy) every 10 s; the events, by fix number."""
    return [
        (n, event)
        for n, (metres, acc) in enumerate(fixes)
        for event in watcher.observe(officer, south(metres), first_at + 10 * n, acc)
    ]


def departed(order: str = "O-1", officer: OfficerId = NEAR) -> ev.OfficerDeparted:
    return ev.OfficerDeparted(INC, OrderId(order), officer, via="gps")


def arrived(order: str = "O-1", officer: OfficerId = NEAR) -> ev.OfficerArrived:
    return ev.OfficerArrived(INC, OrderId(order), officer, via="gps")


def test_on_the_way_are_the_officers_of_orders_not_yet_on_scene() -> None:
    incidents = [
        incident(Phase.DISPATCHED, (NEAR, PARTNER), incident_id="A"),
        incident(Phase.EN_ROUTE, (OTHER,), incident_id="B"),
        incident(Phase.ON_SCENE, (OfficerId("c"),), incident_id="C"),
        incident(Phase.ACKNOWLEDGED, (OfficerId("d"),), order=None, incident_id="D"),
        incident(Phase.RESOLVED, (OfficerId("e"),), incident_id="E"),
        incident(Phase.DISPATCHED, order=None, incident_id="F"),
    ]
    assert officers_on_the_way(incidents) == [("A", NEAR), ("A", PARTNER), ("B", OTHER)]


def test_silent_are_only_the_offline_officers_still_on_the_way() -> None:
    incidents = [
        incident(Phase.DISPATCHED, (NEAR, PARTNER), incident_id="A"),
        incident(Phase.ON_SCENE, (OTHER,), incident_id="B"),
    ]
    assert silent_officers(incidents, {NEAR, OTHER}) == [
        ev.OfficerWentOffline(IncidentId("A"), NEAR)
    ]
    assert silent_officers(incidents, set()) == []


def test_two_fixes_in_a_row_beyond_the_threshold_are_one_departure() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    # The order finds the officer 1 km south; 150 m and 200 m on, still far outside the fence.
    events = walk(watcher, [(1000, 5.0), (850, 5.0), (800, 5.0), (700, 5.0), (600, 5.0)])
    assert events == [(2, departed())]


def test_a_single_fix_away_and_back_is_jitter_not_departure() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    events = walk(watcher, [(1000, None), (850, None), (990, None), (840, None), (830, None)])
    assert events == [(4, departed())]


def test_departure_counts_a_fix_only_as_far_as_its_accuracy_allows() -> None:
    vague = walk(watching(incident(Phase.DISPATCHED)), [(1000, 5.0), (850, 80.0), (800, 80.0)])
    assert vague == []  # 150 m and 200 m away, but either could be within 100 m of the start
    sharp = walk(watching(incident(Phase.DISPATCHED)), [(1000, 5.0), (850, 40.0), (800, 40.0)])
    assert sharp == [(2, departed())]


def test_the_departure_threshold_is_the_watcher_s() -> None:
    fixes: list[tuple[float, float | None]] = [(1000, None), (850, None), (800, None)]
    assert walk(watching(incident(Phase.DISPATCHED), departure_m=300), fixes) == []
    further = [*fixes, (650, None), (600, None)]
    assert walk(watching(incident(Phase.DISPATCHED), departure_m=300), further) == [(4, departed())]


def test_entering_the_fence_is_one_arrival_however_the_border_jitters() -> None:
    watcher = watching(incident(Phase.EN_ROUTE))
    events = walk(watcher, [(300, 5.0), (40, 5.0), (58, 5.0), (45, 5.0), (90, 5.0), (10, 5.0)])
    assert events == [(1, arrived())]


def test_an_inaccurate_fix_inside_the_fence_is_no_arrival() -> None:
    watcher = watching(incident(Phase.EN_ROUTE))
    assert walk(watcher, [(300, 5.0), (0, 150.0), (0, 100.0)]) == [(2, arrived())]


def test_a_fix_older_than_the_last_one_is_no_arrival() -> None:
    watcher = watching(incident(Phase.EN_ROUTE))
    assert watcher.observe(NEAR, south(300), T0 + 100) == []
    assert watcher.observe(NEAR, south(0), T0 + 50, 5.0) == []  # delivered late
    assert watcher.observe(NEAR, south(0), T0 + 110, 5.0) == [arrived()]


def test_an_officer_found_on_scene_arrives_without_departing() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    assert walk(watcher, [(10, 5.0)]) == [(0, arrived())]


def test_the_fix_that_arrives_is_not_also_the_second_one_away() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    assert walk(watcher, [(1000, 5.0), (850, 5.0), (0, 5.0)]) == [(2, arrived())]


def test_moving_about_the_scene_after_arriving_is_no_departure() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    assert walk(watcher, [(1000, 5.0), (850, 5.0), (0, 5.0), (5, 5.0)]) == [(2, arrived())]


def test_an_officer_already_en_route_is_not_departed_again() -> None:
    watcher = watching(incident(Phase.EN_ROUTE))
    assert walk(watcher, [(1000, 5.0), (850, 5.0), (800, 5.0), (0, 5.0)]) == [(3, arrived())]


def test_fixes_of_officers_without_an_order_move_nothing() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    assert walk(watcher, [(1000, 5.0), (850, 5.0), (800, 5.0), (0, 5.0)], officer=OTHER) == []
    assert walk(watcher, [(0, 5.0)]) == [(0, arrived())]


def test_on_scene_only_the_partner_not_yet_there_is_watched() -> None:
    pair = incident(Phase.ON_SCENE, (NEAR, PARTNER), on_scene=(NEAR,))
    watcher = watching(pair)
    assert walk(watcher, [(300, 5.0), (0, 5.0)]) == []
    assert walk(watcher, [(300, 5.0), (0, 5.0)], officer=PARTNER) == [(1, arrived(officer=PARTNER))]


def test_each_officer_of_a_two_officer_order_departs_on_his_own() -> None:
    watcher = watching(incident(Phase.DISPATCHED, (NEAR, PARTNER)))
    assert walk(watcher, [(1000, None), (850, None), (800, None)]) == [(2, departed())]
    assert walk(watcher, [(1000, None), (850, None)], officer=PARTNER) == []


def test_sync_keeps_what_a_watch_has_seen_and_starts_afresh_for_a_new_order() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    assert walk(watcher, [(1000, None), (850, None), (800, None)]) == [(2, departed())]
    # The engine has not applied the departure yet: the same order is watched as it was.
    watcher.sync([incident(Phase.DISPATCHED)], lambda _: RADIUS_M)
    assert walk(watcher, [(700, None), (600, None)], first_at=T0 + 100) == []
    # Re-dispatched to the same officer under a new order: a departure of its own.
    watcher.sync([incident(Phase.DISPATCHED, order="O-2")], lambda _: RADIUS_M)
    events = walk(watcher, [(600, None), (450, None), (400, None)], first_at=T0 + 200)
    assert events == [(2, departed("O-2"))]


def test_sync_stops_watching_officers_who_are_no_longer_on_the_way() -> None:
    watcher = watching(incident(Phase.DISPATCHED))
    assert watcher
    for gone in (
        incident(Phase.ON_SCENE, on_scene=(NEAR,)),
        incident(Phase.RESOLVED),
        incident(Phase.ACKNOWLEDGED, order=None),
    ):
        watcher = watching(incident(Phase.DISPATCHED))
        watcher.sync([gone], lambda _: RADIUS_M)
        assert not watcher
        assert walk(watcher, [(1000, None), (850, None), (800, None), (0, None)]) == []
    assert not watching()


# Distances along the line south of the scene, clear of the fence's border and its 15 m band.
inside = st.floats(min_value=0, max_value=40)
outside = st.floats(min_value=70, max_value=2000)
accuracy = st.sampled_from([None, 5.0, 60.0, 100.0, 150.0])


@given(st.lists(st.tuples(inside | outside, accuracy), min_size=1, max_size=30))
def test_one_arrival_at_the_first_accurate_fix_inside_and_at_most_one_departure(
    fixes: list[tuple[float, float | None]],
) -> None:
    events = walk(watching(incident(Phase.DISPATCHED)), fixes)
    arrivals = [n for n, e in events if isinstance(e, ev.OfficerArrived)]
    accurate_inside = [
        n for n, (metres, acc) in enumerate(fixes) if metres <= 40 and (acc is None or acc <= 100)
    ]
    assert arrivals == accurate_inside[:1]
    assert len([e for _, e in events if isinstance(e, ev.OfficerDeparted)]) <= 1


@given(st.lists(st.tuples(st.floats(min_value=500, max_value=1500), accuracy), min_size=1))
def test_departure_is_the_first_of_two_fixes_in_a_row_beyond_threshold_and_accuracy(
    fixes: list[tuple[float, float | None]],
) -> None:
    start = south(fixes[0][0])
    away = [haversine_m(start, south(metres)) - (acc or 0.0) > 100 for metres, acc in fixes]
    expected = next((n for n in range(1, len(fixes)) if away[n - 1] and away[n]), None)
    events = walk(watching(incident(Phase.DISPATCHED)), fixes)
    assert events == ([] if expected is None else [(expected, departed())])
