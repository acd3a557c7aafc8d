"""The OsmAnd protocol over HTTP, as Traccar takes it (Traccar Client, the OsmAnd app and the
many trackers that speak it), read into the OwnTracks `location` our MQTT devices publish, so
the batch writer judges, chains and stores it like any other fix (pure).

Two forms, one position per request:

- parameters, in the query string or a form body: `id` or `deviceid`; `lat` and `lon`, or
  `location=lat,lon`; `timestamp`; `speed` in knots; `bearing` or `heading` (degrees);
  `altitude` and `accuracy` (m); `hdop`; `batt` (%); `valid` (`false` or `0`: no GPS fix);
- JSON (Traccar Client 9): `device_id`, `location.timestamp`, `location.coords.{latitude,
  longitude, accuracy, speed (m/s, -1 unknown), heading (-1 unknown), altitude}`,
  `location.battery.level` (0..1, -1 unknown).

A timestamp is epoch seconds, milliseconds from 2^31 - 1 on (Traccar's rule), or ISO 8601
(`2016-01-27T18:55:47Z`, `2014-06-04 09:10:11`); without an offset it is the center's local
time, as every time of our API is; without a timestamp the position is of now. What Traccar
keeps as free attributes (`cell`, `wifi`, `driverUniqueId`, `odometer`, `activity`, ...) is
not a fix's and is left out. Units convert here and nowhere else (knots and m/s to km/h, a
battery fraction to per cent); ranges and plausibility are the judge's (`devices.quality`).

Devices prove who they are with a key of their own (`key=` in the URL they are given), kept
by the center as its sha256 only: the key is random and long, so no slow hash is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

import msgspec

from devices.messages import Location
from devices.quality import Reason

# Traccar reads a timestamp from here on as milliseconds.
_MS_FROM = 2**31 - 1
KNOT_KMH = 1.852
_MPS_KMH = 3.6
# A device id is a registry key: a serial, or `user/device` (two topic levels of at most 64).
_ID_MAX = 129
_TEXT_MAX = 64  # of a value quoted back in a refusal
_KEY_BYTES = 24


class OsmAndError(ValueError):
    """A request that is no position; `reason` is the code it is counted under."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def query_device_id(params: Mapping[str, str]) -> str:
    """The device a parameter request names, or OsmAndError."""
    return _device_id(params.get("id") or params.get("deviceid"), "id")


def json_device_id(doc: Mapping[str, Any]) -> str:
    """The device a JSON request names, or OsmAndError."""
    value = doc.get("device_id")
    return _device_id(None if value is None else str(value), "device_id")


def read_query(params: Mapping[str, str], *, now: float, zone: tzinfo) -> Location:
    """The position of a parameter request (`params`: the last value of each name)."""
    if "location" in params:
        lat_text, _, lon_text = params["location"].partition(",")
        lat, lon = _number("location", lat_text), _number("location", lon_text)
    else:
        lat, lon = _required(params, "lat"), _required(params, "lon")
    if params.get("valid", "true").lower() in ("false", "0"):
        raise OsmAndError(Reason.BAD_FIELD, "valid=false: the device has no GPS fix")
    speed_kn = _optional(params, "speed")
    batt = _optional(params, "batt")
    return Location(
        lat=lat,
        lon=lon,
        tst=_timestamp(params.get("timestamp"), now, zone),
        vel=None if speed_kn is None else round(speed_kn * KNOT_KMH, 2),
        cog=_optional(params, "bearing", "heading"),
        alt=_optional(params, "altitude"),
        acc=_optional(params, "accuracy"),
        hdop=_optional(params, "hdop"),
        batt=None if batt is None else round(batt),
    )


def read_json(doc: Mapping[str, Any], *, now: float, zone: tzinfo) -> Location:
    """The position of a Traccar Client JSON request."""
    location = _object(doc, "location")
    coords = _object(location, "coords", "location.")
    lat = _json_number(coords, "latitude", required=True)
    lon = _json_number(coords, "longitude", required=True)
    assert lat is not None and lon is not None
    speed_mps = _known(_json_number(coords, "speed"))
    level = _known(_json_number(_object(location, "battery", required=False), "level"))
    stamp = location.get("timestamp")
    return Location(
        lat=lat,
        lon=lon,
        tst=_timestamp(None if stamp is None else str(stamp), now, zone),
        vel=None if speed_mps is None else round(speed_mps * _MPS_KMH, 2),
        cog=_known(_json_number(coords, "heading")),
        alt=_json_number(coords, "altitude"),
        acc=_json_number(coords, "accuracy"),
        batt=None if level is None else round(level * 100),
    )


def payload(location: Location, request: str) -> bytes:
    """What the batch writer receives: the OwnTracks location, with the request it was read
    from beside it (`osmand`; ignored by the decoder, kept with the payload's hash in the
    chain and in full in a dead letter)."""
    return msgspec.json.encode({**msgspec.to_builtins(location), "osmand": request})


def new_device_key() -> str:
    return secrets.token_urlsafe(_KEY_BYTES)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, digest: str) -> bool:
    return hmac.compare_digest(key_digest(key), digest)


def _device_id(value: str | None, name: str) -> str:
    if not value:
        raise OsmAndError(Reason.MISSING_FIELD, f"{name} is missing: which device is this?")
    if len(value) > _ID_MAX or not value.isprintable():
        raise OsmAndError(Reason.BAD_FIELD, f"{name} {value[:_TEXT_MAX]!r} is no device id")
    return value


def _timestamp(text: str | None, now: float, zone: tzinfo) -> int | float:
    if text is None or not text.strip():
        return int(now)
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        return number / 1000 if number >= _MS_FROM else number
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OsmAndError(
            Reason.BAD_FIELD,
            f"timestamp {text[:_TEXT_MAX]!r} is neither epoch seconds, milliseconds nor "
            "ISO 8601 (2016-01-27T18:55:47Z)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OsmAndError(Reason.BAD_FIELD, f"{name} {text[:_TEXT_MAX]!r} is no number") from None
    if not math.isfinite(value):
        raise OsmAndError(Reason.NOT_FINITE, f"{name} {text[:_TEXT_MAX]!r} is not finite")
    return value


def _required(params: Mapping[str, str], name: str) -> float:
    if not params.get(name):
        raise OsmAndError(Reason.MISSING_FIELD, f"{name} is missing (or give location=lat,lon)")
    return _number(name, params[name])


def _optional(params: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        if params.get(name):
            return _number(name, params[name])
    return None


def _object(
    doc: Mapping[str, Any], name: str, where: str = "", *, required: bool = True
) -> Mapping[str, Any]:
    value = doc.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        reason = Reason.MISSING_FIELD if value is None else Reason.BAD_FIELD
        raise OsmAndError(reason, f"{where}{name} must be an object")
    return value


def _json_number(doc: Mapping[str, Any], name: str, *, required: bool = False) -> float | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise OsmAndError(Reason.MISSING_FIELD, f"location.coords.{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OsmAndError(Reason.BAD_FIELD, f"{name} {str(value)[:_TEXT_MAX]!r} is no number")
    return float(value)


def _known(value: float | None) -> float | None:
    """Traccar Client's -1 for a speed, heading or battery level it does not know."""
    return None if value is None or value < 0 else value
