"""Wire payloads: the JSON objects devices publish, decoded and type-checked.

Field names and units are OwnTracks' wherever one exists (reference: the OwnTracks booklet and
json-schema); our terminals add optional keys that OwnTracks apps and the Recorder ignore.
Unknown keys are accepted and dropped, so a newer app version never breaks ingest.
Decoding checks size, nesting depth and types only; ranges and plausibility are judged in
`devices.quality`. Every payload is bounded before it reaches a parser: the parsers recurse per
level of nesting, and a couple of kilobytes of brackets would exhaust the interpreter's stack.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from devices.topics import Channel


class Location(msgspec.Struct, tag_field="_type", tag="location", frozen=True, omit_defaults=True):
    lat: float
    lon: float
    tst: int | float
    acc: float | None = None
    alt: float | None = None
    vac: float | None = None
    vel: float | None = None  # km/h
    cog: float | None = None
    batt: int | None = None
    bs: int | None = None
    conn: str | None = None
    t: str | None = None
    tid: str | None = None
    created_at: int | float | None = None
    inregions: list[str] | None = None
    # Extensions sent by our terminals.
    crs: str | None = None
    src: str | None = None
    sat: int | None = None
    hdop: float | None = None
    fix: int | None = None
    devid: str | None = None
    badge: str | None = None
    seq: int | None = None


class Lwt(msgspec.Struct, tag_field="_type", tag="lwt", frozen=True, omit_defaults=True):
    """Published by the broker when an OwnTracks app drops off; Android omits `tst`."""

    tst: int | None = None


class Transition(
    msgspec.Struct, tag_field="_type", tag="transition", frozen=True, omit_defaults=True
):
    lat: float
    lon: float
    tst: int | float
    event: Literal["enter", "leave"]
    wtst: int | None = None
    acc: float | None = None
    desc: str | None = None
    rid: str | None = None
    t: str | None = None
    tid: str | None = None
    created_at: int | float | None = None


class Sos(msgspec.Struct, tag_field="_type", tag="sos", frozen=True, omit_defaults=True):
    tst: int | float
    alarm: str = "sos"
    lat: float | None = None
    lon: float | None = None
    acc: float | None = None
    seq: int | None = None
    cancel: bool = False
    crs: str | None = None
    raw: dict[str, object] | None = None


class DevStat(msgspec.Struct, tag_field="_type", tag="devstat", frozen=True, omit_defaults=True):
    tst: int | float
    batt: int | None = None
    bs: int | None = None
    rec: bool | None = None
    storage_free_mb: float | None = None
    rssi: int | None = None
    fix: int | None = None
    sat: int | None = None
    fw: str | None = None
    temp_c: float | None = None


class Conn(msgspec.Struct, tag_field="_type", tag="conn", frozen=True, omit_defaults=True):
    online: bool
    tst: int | float | None = None
    fw: str | None = None
    ip: str | None = None


class Clip(msgspec.Struct, tag_field="_type", tag="clip", frozen=True, omit_defaults=True):
    clip_id: str
    start: int | float
    end: int | float | None = None
    devid: str | None = None
    badge: str | None = None
    tz_offset_s: int | None = None
    duration_s: float | None = None
    file_name: str | None = None
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    codec: str | None = None
    resolution: str | None = None
    important: bool = False
    case_code: str | None = None
    card_id: str | None = None
    station_id: str | None = None
    collected_at: int | float | None = None
    state: Literal["recording", "on_device", "at_station", "archived"] = "on_device"
    osd_badge: str | None = None


class Ack(msgspec.Struct, tag_field="_type", tag="ack", frozen=True, omit_defaults=True):
    order_id: str
    status: Literal["received", "accepted", "rejected", "enroute", "arrived", "done"]
    tst: int | float
    lat: float | None = None
    lon: float | None = None
    reason: str | None = None


# A sensor type key or a unit: short words, which reach incidents' titles.
_Word = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class Reading(msgspec.Struct, tag_field="_type", tag="reading", frozen=True, omit_defaults=True):
    """An IoT sensor's report on `{root}/iot/{sensor}/alarm`: what it measured, in which unit,
    and whether it alarms or clears. `lat`/`lon` (with `crs`) only from a mobile sensor."""

    sensor_type: _Word
    value: float
    unit: _Word
    state: Literal["alarm", "clear"]
    tst: int | float
    lat: float | None = None
    lon: float | None = None
    crs: str | None = None
    seq: int | None = None
    batt: int | None = None


Message = Location | Lwt | Transition | Sos | DevStat | Conn | Clip | Ack | Reading

_DECODERS: dict[Channel, msgspec.json.Decoder[Message]] = {
    Channel.LOCATION: msgspec.json.Decoder(Location | Lwt),
    Channel.EVENT: msgspec.json.Decoder(Transition),
    Channel.SOS: msgspec.json.Decoder(Sos),
    Channel.CLIP: msgspec.json.Decoder(Clip),
    Channel.HB: msgspec.json.Decoder(DevStat),
    Channel.CONN: msgspec.json.Decoder(Conn),
    Channel.ACK: msgspec.json.Decoder(Ack),
    Channel.ALARM: msgspec.json.Decoder(Reading),
}


# The codes a PayloadError carries; each is also a `devices.quality.Reason` (a test checks).
PayloadReason = Literal[
    "oversize", "too_deep", "malformed_json", "missing_field", "bad_field", "bad_topic"
]

# A device payload is a few hundred bytes; the broker may carry far more, so a caller that
# knows better passes its own limit.
MAX_PAYLOAD_BYTES = 64 * 1024
# Our objects hold at most a list or an object of scalars (`inregions`, an SOS's `raw`); a
# little room is left for what newer apps add under keys we drop.
MAX_DEPTH = 16
# A JSON string, escapes included, so brackets inside strings are not counted as nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENING = frozenset(b"[{")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class PayloadError(ValueError):
    """A payload that cannot be used; `reason` is a short code, the message says why."""

    def __init__(self, reason: PayloadReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: PayloadReason = reason


def check_bounds(payload: bytes, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
    """Raise PayloadError unless `payload` is at most `max_bytes` long and nested at most
    `max_depth` levels deep. Cheap enough for every message: the depth is only measured when
    the payload holds more brackets than the limit."""
    if len(payload) > max_bytes:
        raise PayloadError(
            "oversize",
            f"payload of {len(payload)} bytes exceeds {max_bytes}; "
            "positions are a few hundred bytes, media never goes over MQTT",
        )
    if payload.count(b"[") + payload.count(b"{") <= max_depth:
        return
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b'""', payload).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in _OPENING else -1
        deepest = max(deepest, depth)
    if deepest > max_depth:
        raise PayloadError(
            "too_deep", f"payload nests {deepest} levels deep; at most {max_depth} are allowed"
        )


def decode(channel: Channel, payload: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> Message:
    """Decode the payload published on `channel`, or raise PayloadError."""
    decoder = _DECODERS.get(channel)
    if decoder is None:
        raise PayloadError("bad_topic", f"the center does not accept messages on /{channel}")
    check_bounds(payload, max_bytes)
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        text = str(exc)
        reason: PayloadReason = (
            "missing_field" if text.startswith("Object missing required field") else "bad_field"
        )
        raise PayloadError(reason, text) from None
    except msgspec.DecodeError as exc:
        raise PayloadError("malformed_json", f"not valid JSON: {exc}") from None


_any_json = msgspec.json.Decoder()


def decode_json(text: str | bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> Any:
    """Any JSON value within the same bounds, or PayloadError; never NaN or an infinity,
    which JSON cannot spell (Python's own `json` would make them of `NaN` or `1e999`)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    check_bounds(raw, max_bytes)
    try:
        return _any_json.decode(raw)
    except msgspec.DecodeError as exc:
        raise PayloadError("malformed_json", f"not valid JSON: {exc}") from None


_encoder = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    """Encode a payload exactly as a device would send it."""
    return _encoder.encode(message)
