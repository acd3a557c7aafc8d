"""Data quality for positions: accept live, accept as backfill, or reject with a reason.

Pure: the caller passes the device's last accepted state and `now` (server receive time, never
the device clock). Every rejection carries a short reason code for counting and a sentence for
the person reading the dead-letter stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from devices.messages import Location, Sos
from dispatch.core.track import DeviceKey, Fix, LastFix
from gis.coords import Datum, LonLat, haversine_m, to_wgs84

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
    CHAIN_CONTENTION = "chain_contention"
    # Judging or storing the message raised, twice: the error is kept with it.
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Plausibility limits; defaults suit officers on foot and in patrol cars."""

    max_payload_bytes: int = 4096
    max_future_s: float = 300.0
    max_age_s: float = 7 * 24 * 3600.0
    max_speed_kmh: float = 250.0
    # Where our devices can be; the default is the box inside which China's datums apply.
    service_area: tuple[float, float, float, float] = (73.66, 3.86, 135.05, 53.55)


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


def position_rejection(lon: float, lat: float, limits: Limits) -> Rejection | None:
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
    west, south, east, north = limits.service_area
    if not (west <= lon <= east and south <= lat <= north):
        return Rejection(
            Reason.OUTSIDE_SERVICE_AREA,
            f"({lon:.6f}, {lat:.6f}) is outside the service area {limits.service_area}",
        )
    return None


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
    """Why an alarm's position cannot be used. An alarm without one passes: the engine says
    it cannot open an incident nowhere, and the alarm is on the record."""
    if msg.lat is None and msg.lon is None:
        return None
    if msg.lat is None or msg.lon is None:
        return Rejection(Reason.MISSING_FIELD, "an SOS position needs both lat and lon")
    datum = datum_of(msg.crs)
    if isinstance(datum, Rejection):
        return datum
    return position_rejection(msg.lon, msg.lat, limits)


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
    now: float,
    limits: Limits,
) -> Fix | Rejection:
    """Turn a decoded location into a Fix (live or backfill), or say why not.

    A fix not newer than the device's last live fix is kept as backfill: stored and chained, but
    flagged so it never moves the live position or fires live events.
    """
    datum = datum_of(msg.crs)
    if isinstance(datum, Rejection):
        return datum
    rejection = (
        position_rejection(msg.lon, msg.lat, limits)
        or timestamp_rejection(msg.tst, now, limits)
        or _range_rejection(msg)
    )
    if rejection is not None:
        return rejection
    point = (
        to_wgs84(msg.lon, msg.lat, datum) if datum is not Datum.WGS84 else LonLat(msg.lon, msg.lat)
    )
    fix_at = int(msg.tst)
    backfill = last is not None and fix_at <= last.fix_at
    if last is not None and not backfill:
        rejection = _jump_rejection(point, fix_at, last, limits)
        if rejection is not None:
            return rejection
    return Fix(
        device=device,
        lon=point.lon,
        lat=point.lat,
        fix_at=fix_at,
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
    )


def _jump_rejection(point: LonLat, fix_at: int, last: LastFix, limits: Limits) -> Rejection | None:
    distance_m = haversine_m(LonLat(last.lon, last.lat), point)
    elapsed_s = fix_at - last.fix_at
    speed_kmh = distance_m / elapsed_s * 3.6
    if speed_kmh > limits.max_speed_kmh:
        return Rejection(
            Reason.IMPLAUSIBLE_JUMP,
            f"{distance_m:.0f} m in {elapsed_s} s since the last fix is {speed_kmh:.0f} km/h, "
            f"above the {limits.max_speed_kmh:.0f} km/h limit",
        )
    return None
