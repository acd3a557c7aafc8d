"""Data quality for positions: accept live, accept as backfill, or reject with a reason.

Pure: the caller passes the device's jump-filter state and `now` (server receive time, never
the device clock). Every rejection carries a short reason code for counting and a sentence for
the person reading the dead-letter stream.

The jump filter judges a live fix against the device's anchor, its newest live fix. Two fixes
*agree* when one device could have made both within `Limits.max_speed_kmh`; they *vouch* for
each other when they also are two observations (different times and places: a redelivered
message, a parked receiver and one stuck on a bad fix all repeat a position verbatim) at most
`VOUCH_SPAN_S` apart. A new fix is:

1. accepted when it agrees with the anchor;
2. accepted when it vouches for a *rival*, one of the last `MAX_RIVALS` fixes rejected against
   the anchor since it was set: two consecutive fixes agree with each other and not with the
   anchor, so the anchor is the outlier;
3. accepted when it vouches for the fix before the anchor (the one the anchor agreed with) and
   no device could have gone from that fix through the anchor to this one: the anchor was a
   spike between two fixes that agree (agreeing over the longer span alone says little);
4. otherwise rejected as `implausible_jump`, and remembered as a rival.

Under rules 2 and 3 the new fix carries `reanchored_from`, the tst of the anchor it displaces:
the chain records that the anchor is suspect without rewriting it. Judging only against the
last accepted fix, one accepted outlier (a cold GPS start, a spike under the speed limit, a
point after a silence) made every true fix after it a "jump" until the distance became
plausible again. Now a spike costs only itself, and an outlier with nothing around it (a
device's first fix, or one after a long silence) costs itself and the one true fix that
becomes its rival: one fix against another cannot say which is wrong, and letting the newer
win put a taxi in Hainan for a fix in the T-Drive hour. The memory per device is one earlier
fix and at most `MAX_RIVALS` rivals; the store keeps it beside the anchor.

A late fix (not newer than the anchor) is backfill and never moves the anchor; it must agree
with the stored fixes just before and after it in time, and when those two contradict each
other, with one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from devices.messages import Location, Sos
from dispatch.core.track import DeviceKey, Fix, LastFix
from gis.coords import Datum, LonLat, haversine_m, to_wgs84
from gis.service_area import CHINA, ServiceArea, box_area

_MS_EPOCH_THRESHOLD = (
    100_000_000_000  # epoch seconds pass this in the year 5138; ms passed it in 1973
)


class Reason(StrEnum):
    """Why a message was not stored; the value is the code counted in the stats."""

    OVERSIZE = "oversize"
    TOO_DEEP = "too_deep"
    MALFORMED_JSON = "malformed_json"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_TOPIC = "bad_topic"
    NOT_FINITE = "not_finite"
    LAT_OUT_OF_RANGE = "lat_out_of_range"
    LON_OUT_OF_RANGE = "lon_out_of_range"
    ZERO_COORDINATE = "zero_coordinate"
    OUTSIDE_SERVICE_AREA = "outside_service_area"
    UNKNOWN_CRS = "unknown_crs"
    TST_IN_FUTURE = "tst_in_future"
    TST_TOO_OLD = "tst_too_old"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    IMPLAUSIBLE_JUMP = "implausible_jump"
    DUPLICATE = "duplicate"
    UNKNOWN_DEVICE = "unknown_device"
    REGISTRATION_LIMIT = "registration_limit"
    WRONG_OFFICER = "wrong_officer"
    # IoT sensors: not registered, or reporting as another type or in another unit.
    UNKNOWN_SENSOR = "unknown_sensor"
    WRONG_SENSOR_TYPE = "wrong_sensor_type"
    WRONG_UNIT = "wrong_unit"
    CHAIN_CONTENTION = "chain_contention"
    # Judging or storing the message raised, twice: the error is kept with it.
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str


# The jump filter (rules in the module docstring).
# Two fixes vouch for each other only this close in time: over longer spans the speed limit
# admits nearly anywhere (an hour at 250 km/h is 250 km), so their agreement says nothing.
VOUCH_SPAN_S = 600
# Fixes rejected as jumps against the anchor that a device's memory keeps, newest last.
MAX_RIVALS = 2
# Device times are whole seconds: two fixes stamped the same second may be one second apart.
_TST_RESOLUTION_S = 1


@dataclass(frozen=True, slots=True)
class JumpMemory:
    """What the jump filter remembers of a device besides its anchor (the newest live fix).

    The store keeps it beside the anchor, so a restarted worker judges as the stopped one
    would have; an empty memory is the old rule of judging against the anchor alone.
    """

    before: LastFix | None = None  # the live fix the anchor agreed with
    rivals: tuple[LastFix, ...] = ()  # fixes rejected against the anchor since it was set


@dataclass(frozen=True, slots=True)
class Neighbours:
    """A device's stored fixes just before and just after a late fix, in fix time."""

    before: LastFix | None = None
    after: LastFix | None = None


@dataclass(frozen=True, slots=True)
class Judged:
    """A verdict and the device's jump-filter state after it."""

    verdict: Fix | Rejection
    last: LastFix | None
    memory: JumpMemory


@dataclass(frozen=True, slots=True)
class Limits:
    """Plausibility limits; defaults suit officers on foot and in patrol cars."""

    max_payload_bytes: int = 4096
    max_future_s: float = 300.0
    max_age_s: float = 7 * 24 * 3600.0
    max_speed_kmh: float = 250.0
    # Where our devices can be: the city's outline and a margin where one is configured.
    service_area: ServiceArea = field(default_factory=lambda: box_area(*CHINA))


def timestamp_rejection(tst: float, now: float, limits: Limits) -> Rejection | None:
    """Reject device times that are in the future or beyond the horizon."""
    if tst > now + limits.max_future_s:
        hint = (
            " (it looks like milliseconds; tst is epoch seconds)"
            if tst > _MS_EPOCH_THRESHOLD
            else ""
        )
        return Rejection(
            Reason.TST_IN_FUTURE, f"tst {tst:.0f} is {tst - now:.0f} s ahead of the server{hint}"
        )
    if tst < now - limits.max_age_s:
        return Rejection(
            Reason.TST_TOO_OLD,
            f"tst {tst:.0f} is {now - tst:.0f} s old, beyond the {limits.max_age_s:.0f} s horizon",
        )
    return None


def position_rejection(lon: float, lat: float) -> Rejection | None:
    """Reject coordinates no officer can be at (checked in WGS-84)."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return Rejection(Reason.NOT_FINITE, f"coordinates ({lon}, {lat}) are not finite numbers")
    if not -90.0 <= lat <= 90.0:
        return Rejection(Reason.LAT_OUT_OF_RANGE, f"lat {lat} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        return Rejection(Reason.LON_OUT_OF_RANGE, f"lon {lon} is outside -180..180")
    if lon == 0.0 or lat == 0.0:
        return Rejection(
            Reason.ZERO_COORDINATE,
            f"coordinate ({lon}, {lat}) has a zero axis: a receiver without a fix, not a place",
        )
    return None


def _area_rejection(point: LonLat, limits: Limits) -> Rejection | None:
    """Checked on the WGS-84 point, after a GCJ-02 or BD-09 input is converted."""
    if limits.service_area.covers(point):
        return None
    return Rejection(
        Reason.OUTSIDE_SERVICE_AREA,
        f"({point.lon:.6f}, {point.lat:.6f}) is outside the service area: "
        f"{limits.service_area.description}",
    )


_RANGES = (
    ("acc", 0.0, 100_000.0),
    ("vel", 0.0, 500.0),
    ("cog", 0.0, 360.0),
    ("batt", 0, 100),
    ("hdop", 0.0, 100.0),
    ("sat", 0, 200),
)


def datum_of(crs: str | None) -> Datum | Rejection:
    """The datum a message reports in (WGS-84 when it names none), or why it is unusable."""
    if crs is None:
        return Datum.WGS84
    try:
        return Datum(crs)
    except ValueError:
        return Rejection(
            Reason.UNKNOWN_CRS, f"crs {crs!r} is not one of wgs84, cgcs2000, gcj02, bd09"
        )


def sos_rejection(msg: Sos, limits: Limits) -> Rejection | None:
    """Why an alarm's position cannot be used, or None. The alarm itself is never refused
    for it: the ingest leaves the position out with this reason, and the engine opens the
    incident at the officer's last known position."""
    judged = alarm_position(msg.lon, msg.lat, msg.crs, limits)
    return judged if isinstance(judged, Rejection) else None


def placed_sos(msg: Sos, limits: Limits) -> tuple[Sos, dict[str, str]]:
    """The alarm as the engine gets it: with its own position, or, where that cannot be used,
    without one and with `position_refused` saying why (the engine then places it at the
    officer's last known position)."""
    rejection = sos_rejection(msg, limits)
    if rejection is None:
        return msg, {}
    unplaced = msgspec.structs.replace(msg, lat=None, lon=None, crs=None)
    return unplaced, {"position_refused": f"{rejection.reason}: {rejection.detail}"}


def alarm_position(
    lon: float | None, lat: float | None, crs: str | None, limits: Limits
) -> LonLat | Rejection | None:
    """An alarm's own position in WGS-84 (an SOS's, a mobile sensor's), why it cannot be
    used, or None when it carries none."""
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        return Rejection(Reason.MISSING_FIELD, "an alarm's position needs both lat and lon")
    datum = datum_of(crs)
    if isinstance(datum, Rejection):
        return datum
    refused = position_rejection(lon, lat)
    if refused is not None:
        return refused
    point = _wgs84(lon, lat, datum)
    return _area_rejection(point, limits) or point


def _range_rejection(msg: Location) -> Rejection | None:
    for name, low, high in _RANGES:
        value = getattr(msg, name)
        if value is not None and not low <= value <= high:
            return Rejection(Reason.VALUE_OUT_OF_RANGE, f"{name} {value} is outside {low}..{high}")
    return None


def judge_location(
    device: DeviceKey,
    msg: Location,
    *,
    last: LastFix | None,
    memory: JumpMemory = JumpMemory(),
    neighbours: Neighbours = Neighbours(),
    now: float,
    limits: Limits,
) -> Judged:
    """Turn a decoded location into a Fix (live or backfill), or say why not.

    `last` and `memory` are the device's jump-filter state; the caller keeps the state the
    answer carries for the device's next fix. A fix not newer than `last` is backfill: stored
    and chained, but flagged so it never moves the live position or fires live events; it is
    judged against `neighbours`, which the caller reads for it (left empty for a fix the store
    already holds, which it will answer as a duplicate).
    """
    datum = datum_of(msg.crs)
    if isinstance(datum, Rejection):
        return Judged(datum, last, memory)
    rejection = (
        position_rejection(msg.lon, msg.lat)
        or timestamp_rejection(msg.tst, now, limits)
        or _range_rejection(msg)
    )
    if rejection is not None:
        return Judged(rejection, last, memory)
    point = _wgs84(msg.lon, msg.lat, datum)
    rejection = _area_rejection(point, limits)
    if rejection is not None:
        return Judged(rejection, last, memory)
    here = LastFix(point.lon, point.lat, int(msg.tst))
    backfill = last is not None and here.fix_at <= last.fix_at
    displaced: int | None = None
    after = memory
    if backfill:
        rejection = _backfill_rejection(here, neighbours, limits)
    elif last is not None:
        rejection, after, displaced = _follow(here, last, memory, limits)
    if rejection is not None:
        return Judged(rejection, last, after)
    fix = Fix(
        device=device,
        lon=point.lon,
        lat=point.lat,
        fix_at=here.fix_at,
        received_at=round(now, 3),
        acc_m=msg.acc,
        alt_m=msg.alt,
        vel_kmh=msg.vel,
        cog_deg=msg.cog,
        batt_pct=msg.batt,
        seq=msg.seq,
        sat=msg.sat,
        hdop=msg.hdop,
        datum=datum.value if datum is not Datum.WGS84 else None,
        badge=msg.badge,
        backfill=backfill,
        reanchored_from=displaced,
    )
    return Judged(fix, last if backfill else here, after)


def wgs84_point(msg: Location) -> LonLat | None:
    """Where a location is in WGS-84, as it would be stored; None for an unknown crs or
    coordinates no officer can be at."""
    datum = datum_of(msg.crs)
    if isinstance(datum, Rejection) or position_rejection(msg.lon, msg.lat) is not None:
        return None
    return _wgs84(msg.lon, msg.lat, datum)


def _wgs84(lon: float, lat: float, datum: Datum) -> LonLat:
    return LonLat(lon, lat) if datum is Datum.WGS84 else to_wgs84(lon, lat, datum)


def _follow(
    here: LastFix, last: LastFix, memory: JumpMemory, limits: Limits
) -> tuple[Rejection | None, JumpMemory, int | None]:
    """The jump filter on a live fix: (a rejection or None, the memory after it, and the tst
    of the anchor it displaces as an outlier). The rules are in the module docstring."""
    if _agree(last, here, limits):
        return None, JumpMemory(before=last), None
    for rival in reversed(memory.rivals):
        if _vouch(rival, here, limits):
            return None, JumpMemory(before=rival), last.fix_at
    if memory.before is not None and _spike(memory.before, last, here, limits):
        return None, JumpMemory(before=memory.before), last.fix_at
    distance_m = haversine_m(LonLat(last.lon, last.lat), LonLat(here.lon, here.lat))
    elapsed_s = here.fix_at - last.fix_at
    rejection = Rejection(
        Reason.IMPLAUSIBLE_JUMP,
        f"{distance_m:.0f} m in {elapsed_s} s since the last fix is "
        f"{_speed_kmh(last, here):.0f} km/h, above the {limits.max_speed_kmh:.0f} km/h limit",
    )
    rivals = (*memory.rivals, here)[-MAX_RIVALS:]
    return rejection, JumpMemory(memory.before, rivals), None


def _backfill_rejection(here: LastFix, neighbours: Neighbours, limits: Limits) -> Rejection | None:
    """A late fix must agree with the stored fixes just before and after it in time; when
    those two contradict each other, agreeing with one of them is enough."""
    around = [n for n in (neighbours.before, neighbours.after) if n is not None]
    against = [n for n in around if not _agree(n, here, limits)]
    if not against:
        return None
    if len(around) == 2 and len(against) == 1 and not _agree(around[0], around[1], limits):
        return None
    worst = max(against, key=lambda n: _speed_kmh(n, here))
    distance_m = haversine_m(LonLat(worst.lon, worst.lat), LonLat(here.lon, here.lat))
    return Rejection(
        Reason.IMPLAUSIBLE_JUMP,
        f"backfill at tst {here.fix_at}: {distance_m:.0f} m from the stored fix at tst "
        f"{worst.fix_at} is {_speed_kmh(worst, here):.0f} km/h, above the "
        f"{limits.max_speed_kmh:.0f} km/h limit",
    )


def _speed_kmh(a: LastFix, b: LastFix) -> float:
    elapsed_s = max(abs(b.fix_at - a.fix_at), _TST_RESOLUTION_S)
    return haversine_m(LonLat(a.lon, a.lat), LonLat(b.lon, b.lat)) / elapsed_s * 3.6


def _agree(a: LastFix, b: LastFix, limits: Limits) -> bool:
    """Whether one device could have made both fixes, at no more than the speed limit."""
    return _speed_kmh(a, b) <= limits.max_speed_kmh


def _spike(before: LastFix, anchor: LastFix, here: LastFix, limits: Limits) -> bool:
    """Whether `anchor` stands out of a path from `before` to `here`: those two vouch for each
    other, and no device could have passed through the anchor on the way."""
    if not _vouch(before, here, limits):
        return False
    detour_m = haversine_m(LonLat(before.lon, before.lat), LonLat(anchor.lon, anchor.lat))
    detour_m += haversine_m(LonLat(anchor.lon, anchor.lat), LonLat(here.lon, here.lat))
    elapsed_s = max(here.fix_at - before.fix_at, _TST_RESOLUTION_S)
    return detour_m / elapsed_s * 3.6 > limits.max_speed_kmh


def _vouch(a: LastFix, b: LastFix, limits: Limits) -> bool:
    """Whether two fixes are witnesses for each other: they agree, close enough in time to
    mean it, and are two observations."""
    return _moved(a, b) and abs(b.fix_at - a.fix_at) <= VOUCH_SPAN_S and _agree(a, b, limits)


def _moved(a: LastFix, b: LastFix) -> bool:
    """Whether two fixes are two observations, not one repeated: a redelivered or repeated
    message, a parked receiver and one stuck on a bad fix all repeat a position verbatim (in
    the T-Drive hour a taxi repeats a point 1,500 km off for minutes)."""
    return a.fix_at != b.fix_at and (a.lon, a.lat) != (b.lon, b.lat)
