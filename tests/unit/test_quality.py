"""Plausibility rules for positions, with `now` passed in."""

from __future__ import annotations

import pytest

from devices.messages import Location, Sos
from devices.quality import Limits, Reason, Rejection, judge_location, sos_rejection
from dispatch.core.track import DeviceKey, Fix, LastFix
from gis.coords import LonLat, haversine_m, wgs84_to_bd09, wgs84_to_gcj02

NOW = 1_795_300_000.0
DEV = DeviceKey("zhang3/BC-0042")
LIMITS = Limits()


def judge(last: LastFix | None = None, now: float = NOW, **fields) -> Fix | Rejection:
    location = Location(**{"lat": 29.08, "lon": 119.65, "tst": int(NOW) - 5, **fields})
    return judge_location(DEV, location, last=last, now=now, limits=LIMITS)


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
