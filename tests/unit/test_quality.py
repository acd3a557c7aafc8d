"""Plausibility rules for positions, with `now` passed in."""

from __future__ import annotations

import math

import pytest
import shapely

from devices.messages import Location, Sos
from devices.quality import (
    MAX_RIVALS,
    JumpMemory,
    Limits,
    Neighbours,
    Reason,
    Rejection,
    judge_location,
    sos_rejection,
)
from devices.sink import memory_from_text, memory_text
from dispatch.core.track import DeviceKey, Fix, LastFix
from gis.coords import METRES_PER_DEG_LAT, LonLat, haversine_m, wgs84_to_bd09, wgs84_to_gcj02
from gis.service_area import area_around

NOW = 1_795_300_000.0
DEV = DeviceKey("zhang3/BC-0042")
LIMITS = Limits()
NO_NEIGHBOURS = Neighbours()


def judge(
    last: LastFix | None = None,
    now: float = NOW,
    neighbours: Neighbours = NO_NEIGHBOURS,
    limits: Limits = LIMITS,
    **fields,
) -> Fix | Rejection:
    location = Location(**{"lat": 29.08, "lon": 119.65, "tst": int(NOW) - 5, **fields})
    return judge_location(
        DEV, location, last=last, neighbours=neighbours, now=now, limits=limits
    ).verdict


def reason(result: Fix | Rejection) -> Reason:
    assert isinstance(result, Rejection), result
    return result.reason


def test_a_good_fix_is_accepted_live_in_canonical_units() -> None:
    fix = judge(acc=8, vel=5, batt=80)
    assert isinstance(fix, Fix)
    assert (fix.lon, fix.lat, fix.fix_at, fix.received_at) == (119.65, 29.08, int(NOW) - 5, NOW)
    assert (fix.acc_m, fix.vel_kmh, fix.batt_pct, fix.backfill) == (8, 5, 80, False)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"lat": 91.0}, Reason.LAT_OUT_OF_RANGE),
        ({"lon": -181.0}, Reason.LON_OUT_OF_RANGE),
        ({"lat": 0.0, "lon": 0.0}, Reason.ZERO_COORDINATE),
        ({"lon": 0.0}, Reason.ZERO_COORDINATE),
        ({"lat": float("nan")}, Reason.NOT_FINITE),
        ({"lat": 64.0, "lon": 133.0}, Reason.OUTSIDE_SERVICE_AREA),
        ({"tst": int(NOW) + 3600}, Reason.TST_IN_FUTURE),
        ({"tst": int(NOW) - 8 * 86400}, Reason.TST_TOO_OLD),
        ({"vel": -3}, Reason.VALUE_OUT_OF_RANGE),
        ({"batt": 140}, Reason.VALUE_OUT_OF_RANGE),
        ({"crs": "utm50n"}, Reason.UNKNOWN_CRS),
    ],
)
def test_impossible_values_are_rejected_with_their_reason(fields, expected) -> None:
    assert reason(judge(**fields)) == expected


def test_milliseconds_are_called_out() -> None:
    result = judge(tst=int(NOW * 1000))
    assert reason(result) == Reason.TST_IN_FUTURE
    assert "milliseconds" in result.detail


def test_gcj02_and_bd09_inputs_are_stored_in_wgs84() -> None:
    truth = LonLat(119.65, 29.08)
    for crs, shifted in (("gcj02", wgs84_to_gcj02(*truth)), ("bd09", wgs84_to_bd09(*truth))):
        fix = judge(lon=shifted.lon, lat=shifted.lat, crs=crs)
        assert isinstance(fix, Fix)
        assert haversine_m(LonLat(fix.lon, fix.lat), truth) < 0.5
        assert fix.datum == crs


def test_an_older_fix_is_backfill_and_a_newer_one_is_live() -> None:
    last = LastFix(119.65, 29.08, int(NOW) - 5)
    older = judge(last=last, tst=int(NOW) - 60)
    assert isinstance(older, Fix) and older.backfill
    newer = judge(last=last, tst=int(NOW) - 1, lat=29.0801)
    assert isinstance(newer, Fix) and not newer.backfill


def test_a_teleport_is_an_implausible_jump() -> None:
    last = LastFix(119.65, 29.08, int(NOW) - 65)
    result = judge(last=last, lat=29.18)  # 11 km in 60 s
    assert reason(result) == Reason.IMPLAUSIBLE_JUMP
    assert "km/h" in result.detail


def test_a_car_at_city_speed_is_not_a_jump() -> None:
    last = LastFix(119.65, 29.08, int(NOW) - 65)
    assert isinstance(judge(last=last, lat=29.09), Fix)  # 1.1 km in 60 s = 67 km/h


class Feed:
    """One device's fixes judged in turn, keeping the state the batch writer would keep."""

    def __init__(self) -> None:
        self.last: LastFix | None = None
        self.memory = JumpMemory()
        self.verdicts: list[Fix | Rejection] = []

    def send(self, fix_at: int, lon: float, lat: float) -> Fix | Rejection:
        location = Location(lat=lat, lon=lon, tst=fix_at)
        judged = judge_location(
            DEV, location, last=self.last, memory=self.memory, now=NOW, limits=LIMITS
        )
        self.last, self.memory = judged.last, judged.memory
        self.verdicts.append(judged.verdict)
        return judged.verdict

    def rejected(self) -> list[int]:
        return [n for n, v in enumerate(self.verdicts) if isinstance(v, Rejection)]


def east_of(lon: float, lat: float, metres: float) -> float:
    return lon + metres / (METRES_PER_DEG_LAT * math.cos(math.radians(lat)))


def test_an_accepted_outlier_followed_by_20_good_fixes_loses_only_itself() -> None:
    # A patrol car every 10 s, silent for 400 s, then a fix 25 km off: 225 km/h since the
    # last, so it passes and becomes the anchor.
    feed, start, lat = Feed(), int(NOW) - 1000, 29.08
    for n in range(5):
        assert isinstance(feed.send(start + 10 * n, east_of(119.65, lat, 100 * n), lat), Fix)
    outlier_at = start + 440
    outlier = feed.send(outlier_at, east_of(119.65, lat, 25_400), lat)
    assert isinstance(outlier, Fix) and outlier.reanchored_from is None
    anchor = feed.last
    truth = [(outlier_at + 10 * n, east_of(119.65, lat, 500 + 100 * n), lat) for n in range(1, 21)]
    # Judged against that anchor alone, every one of the 20 true fixes is a jump.
    alone = [
        judge_location(
            DEV, Location(lat=la, lon=lo, tst=t), last=anchor, now=NOW, limits=LIMITS
        ).verdict
        for t, lo, la in truth
    ]
    assert all(isinstance(v, Rejection) for v in alone)
    good = [feed.send(*fix) for fix in truth]
    assert feed.rejected() == []
    first = good[0]
    assert isinstance(first, Fix) and first.reanchored_from == outlier_at
    assert b'"reanchored_from":%d' % outlier_at in first.canonical()
    assert all(
        isinstance(f, Fix) and not f.backfill and f.reanchored_from is None for f in good[1:]
    )
    assert feed.last == LastFix(truth[-1][1], truth[-1][2], truth[-1][0])


def test_an_outlier_with_nothing_before_it_costs_one_true_fix_then_the_track_moves_on() -> None:
    # A cold GPS start 104 km off. One fix against another cannot say which is wrong: the
    # first true fix waits as a rival, the second agrees with it and takes the anchor.
    feed, start, lat = Feed(), int(NOW) - 1000, 29.08
    feed.send(start, east_of(119.65, lat, 104_000), lat)
    good = [feed.send(start + 10 * n, east_of(119.65, lat, 100 * n), lat) for n in range(1, 21)]
    assert feed.rejected() == [1]
    assert isinstance(good[0], Rejection) and good[0].reason is Reason.IMPLAUSIBLE_JUMP
    second = good[1]
    assert isinstance(second, Fix) and second.reanchored_from == start
    assert all(isinstance(f, Fix) for f in good[1:])


def test_an_isolated_outlier_is_still_rejected_and_does_not_move_the_anchor() -> None:
    feed, start, lat = Feed(), int(NOW) - 1000, 29.08
    for n in range(5):
        feed.send(start + 10 * n, east_of(119.65, lat, 100 * n), lat)
    jump = feed.send(start + 50, east_of(119.65, lat, 30_000), lat)
    assert isinstance(jump, Rejection) and jump.reason is Reason.IMPLAUSIBLE_JUMP
    after = [feed.send(start + 10 * n, east_of(119.65, lat, 100 * n), lat) for n in range(6, 12)]
    assert all(isinstance(f, Fix) and f.reanchored_from is None for f in after)
    assert feed.rejected() == [5]


def test_two_agreeing_outliers_take_the_anchor_only_when_they_are_two_observations() -> None:
    # A receiver stuck on one bad point repeats it verbatim (a T-Drive taxi did, 1,500 km off,
    # for minutes): repeats are one witness and never take over a track.
    feed, start, lat = Feed(), int(NOW) - 1000, 29.08
    for n in range(5):
        feed.send(start + 10 * n, east_of(119.65, lat, 100 * n), lat)
    for n in range(5, 25):
        assert isinstance(feed.send(start + 10 * n, 133.68271, 38.52468), Rejection)
    back = feed.send(start + 250, east_of(119.65, lat, 500), lat)
    assert isinstance(back, Fix) and back.reanchored_from is None


def test_the_memory_of_a_device_stays_bounded() -> None:
    feed, start = Feed(), int(NOW) - 1000
    feed.send(start, 119.65, 29.08)
    for n in range(1, 200):  # each far from every other: nothing agrees with anything
        feed.send(start + n, 119.65 + (n % 2) * 0.5, 29.08 + n * 0.05)
        assert len(feed.memory.rivals) <= MAX_RIVALS
    assert len(feed.rejected()) == 199


def test_a_late_fix_is_judged_against_its_stored_neighbours() -> None:
    last = LastFix(119.65, 29.08, int(NOW) - 5)
    before, after = LastFix(119.65, 29.08, int(NOW) - 120), LastFix(119.651, 29.08, int(NOW) - 60)
    around = Neighbours(before, after)
    fits = judge(last=last, neighbours=around, tst=int(NOW) - 90, lon=119.6505)
    assert isinstance(fits, Fix) and fits.backfill
    jumps = judge(last=last, neighbours=around, tst=int(NOW) - 90, lat=29.5)  # 46 km in 30 s
    assert reason(jumps) is Reason.IMPLAUSIBLE_JUMP
    assert "backfill" in jumps.detail and f"tst {int(NOW) - 60}" in jumps.detail
    only_after = judge(last=last, neighbours=Neighbours(None, after), tst=int(NOW) - 90, lat=29.5)
    assert reason(only_after) is Reason.IMPLAUSIBLE_JUMP
    assert isinstance(judge(last=last, tst=int(NOW) - 90, lat=29.5), Fix), "nothing to judge by"


def test_a_late_fix_may_side_with_one_of_two_neighbours_that_contradict_each_other() -> None:
    last = LastFix(119.65, 29.08, int(NOW) - 5)
    before, after = LastFix(119.65, 29.08, int(NOW) - 120), LastFix(119.65, 29.5, int(NOW) - 60)
    fix = judge(last=last, neighbours=Neighbours(before, after), tst=int(NOW) - 90)
    assert isinstance(fix, Fix) and fix.backfill


def test_a_late_fix_never_moves_the_anchor_nor_the_memory() -> None:
    last = LastFix(119.65, 29.08, int(NOW) - 5)
    memory = JumpMemory(before=LastFix(119.65, 29.08, int(NOW) - 15))
    judged = judge_location(
        DEV,
        Location(lat=29.0801, lon=119.65, tst=int(NOW) - 60),
        last=last,
        memory=memory,
        now=NOW,
        limits=LIMITS,
    )
    assert isinstance(judged.verdict, Fix) and judged.verdict.backfill
    assert (judged.last, judged.memory) == (last, memory)


JINHUA = shapely.box(119.4, 28.9, 119.9, 29.3)
CITY = Limits(service_area=area_around([JINHUA], 50_000, "Jinhua"))


def test_a_fix_1000_km_outside_the_city_is_outside_the_service_area() -> None:
    far = judge(limits=CITY, lon=east_of(119.9, 29.1, 1_000_000), lat=29.1)
    assert reason(far) is Reason.OUTSIDE_SERVICE_AREA
    assert "Jinhua and 50 km around it" in far.detail
    # The box where China's datums apply, the default without a city, takes it in.
    assert isinstance(judge(lon=east_of(119.9, 29.1, 1_000_000), lat=29.1), Fix)


@pytest.mark.parametrize(("outside_m", "inside"), [(0, True), (45_000, True), (55_000, False)])
def test_the_service_area_reaches_the_margin_beyond_the_outline(outside_m, inside) -> None:
    fix = judge(limits=CITY, lon=east_of(119.9, 29.1, outside_m), lat=29.1)
    assert isinstance(fix, Fix) is inside, fix


def test_the_memory_survives_the_store_exactly_and_junk_reads_as_empty() -> None:
    memory = JumpMemory(
        LastFix(119.65000000000001, 29.08, int(NOW) - 20),
        (LastFix(120.1, 29.3, int(NOW) - 10), LastFix(120.1 + 1e-13, 29.3, int(NOW) - 5)),
    )
    assert memory_from_text(memory_text(memory)) == memory
    assert memory_from_text(memory_text(JumpMemory())) == JumpMemory()
    rivals_only = JumpMemory(rivals=(LastFix(120.1, 29.3, int(NOW)),))
    assert memory_from_text(memory_text(rivals_only)) == rivals_only
    for junk in (None, "", "x", "1|2", ";;", "1|a|3", "1|2|3;"):
        assert memory_from_text(junk) == JumpMemory(), junk


@pytest.mark.parametrize(
    ("sos", "reason"),
    [
        (Sos(tst=1, crs="bd09", lat=1e308, lon=119.65), Reason.LAT_OUT_OF_RANGE),
        (Sos(tst=1, lat=29.08, lon=float("inf")), Reason.NOT_FINITE),
        (Sos(tst=1, lat=29.08), Reason.MISSING_FIELD),
        (Sos(tst=1, crs="utm50", lat=29.08, lon=119.65), Reason.UNKNOWN_CRS),
        (Sos(tst=1, lat=29.08, lon=119.65), None),
        (Sos(tst=1), None),  # no position: on the record, though it opens no incident
    ],
)
def test_an_alarm_s_position_is_judged_like_a_fix(sos: Sos, reason: Reason | None) -> None:
    rejection = sos_rejection(sos, Limits())
    assert (rejection.reason if rejection else None) is reason


def test_an_alarm_outside_the_city_s_service_area_is_refused_its_position() -> None:
    far = Sos(tst=1, lat=29.1, lon=east_of(119.9, 29.1, 1_000_000))
    assert sos_rejection(far, Limits()) is None
    rejection = sos_rejection(far, CITY)
    assert rejection is not None and rejection.reason is Reason.OUTSIDE_SERVICE_AREA
