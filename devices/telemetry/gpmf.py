"""GoPro GPMF: the KLV telemetry in a GoPro file's `GoPro MET` data track.

Each entry is a 4-character key, a type byte, a structure size byte and a 16-bit repeat
count (big-endian), then the data padded to 4 bytes; type 0 nests entries. Positions are
`GPS5` (lat, lon, alt, 2D speed, 3D speed as int32 divided by `SCAL`) with the UTC time of the
packet in `GPSU`, or on newer cameras `GPS9` (adds days since 2000 and seconds of the day per
sample, so every sample carries its own time).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from devices.telemetry.points import TelemetryError, TelemetryPoint

_TYPES = {
    "b": "b", "B": "B", "s": "h", "S": "H", "l": "i", "L": "I", "f": "f", "d": "d",
    "j": "q", "J": "Q",
}  # fmt: skip
_GPS9_EPOCH = datetime(2000, 1, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    type: str
    size: int
    repeat: int
    data: bytes

    def values(self) -> list[tuple[float | int, ...]]:
        """The samples, each a tuple of the structure's elements."""
        code = _TYPES.get(self.type)
        if code is None:
            raise TelemetryError(f"GPMF {self.key}: type {self.type!r} is not numeric")
        width = struct.calcsize(code)
        per_sample = self.size // width
        unpacked = struct.unpack(f">{per_sample * self.repeat}{code}", self.data)
        return [tuple(unpacked[n * per_sample : (n + 1) * per_sample]) for n in range(self.repeat)]


def entries(data: bytes) -> Iterator[Entry]:
    """Every entry, nested containers flattened in order."""
    at = 0
    while at + 8 <= len(data):
        key = data[at : at + 4].decode("latin-1")
        kind = chr(data[at + 4]) if data[at + 4] else "\0"
        size, repeat = data[at + 5], struct.unpack(">H", data[at + 6 : at + 8])[0]
        length = size * repeat
        body = data[at + 8 : at + 8 + length]
        if len(body) < length:
            raise TelemetryError(f"GPMF {key} at byte {at} runs past the packet end")
        if kind == "\0":
            yield from entries(body)
        else:
            yield Entry(key, kind, size, repeat, body)
        at += 8 + (length + 3) // 4 * 4


def gps_points(packets: Sequence[tuple[float, float, bytes]]) -> list[TelemetryPoint]:
    """Positions from the GPMF packets as (start s, duration s, bytes), in file order."""
    points: list[TelemetryPoint] = []
    for start_s, duration_s, packet in packets:
        scale: tuple[float | int, ...] = (1,)
        utc: float | None = None
        layout = ""
        for entry in entries(packet):
            if entry.key == "SCAL":
                scale = tuple(v[0] for v in entry.values())
            elif entry.key == "TYPE":
                layout = entry.data.decode("latin-1").rstrip("\0")
            elif entry.key == "GPSU":
                utc = _gpsu(entry.data)
            elif entry.key == "GPS5":
                points += _gps5(entry, scale, start_s, duration_s, utc)
            elif entry.key == "GPS9":
                points += _gps9(entry, scale, layout, start_s, duration_s)
    return points


def _scaled(sample: tuple[float | int, ...], scale: tuple[float | int, ...]) -> list[float]:
    factors = scale if len(scale) == len(sample) else scale[:1] * len(sample)
    return [v / f for v, f in zip(sample, factors, strict=True)]


def _gps5(
    entry: Entry,
    scale: tuple[float | int, ...],
    start_s: float,
    duration_s: float,
    utc: float | None,
) -> list[TelemetryPoint]:
    samples = entry.values()
    step = duration_s / len(samples) if samples else 0.0
    out = []
    for n, sample in enumerate(samples):
        lat, lon, alt, *_speeds = _scaled(sample, scale)
        out.append(
            TelemetryPoint(
                start_s + n * step, lat, lon, alt, None if utc is None else utc + n * step
            )
        )
    return out


def _gps9(
    entry: Entry, scale: tuple[float | int, ...], layout: str, start_s: float, duration_s: float
) -> list[TelemetryPoint]:
    # GPS9 is a complex structure: TYPE gives one type letter per element.
    if len(layout) != 9:
        raise TelemetryError(f"GPS9 needs a TYPE of 9 elements, found {layout!r}")
    codes = ">" + "".join(_TYPES[c] for c in layout)
    width = struct.calcsize(codes)
    samples = [
        struct.unpack(codes, entry.data[n * width : (n + 1) * width]) for n in range(entry.repeat)
    ]
    step = duration_s / len(samples) if samples else 0.0
    out = []
    for n, sample in enumerate(samples):
        lat, lon, alt, _s2, _s3, days, seconds, _dop, _fix = _scaled(sample, scale)
        at = _GPS9_EPOCH + days * 86400 + seconds
        out.append(TelemetryPoint(start_s + n * step, lat, lon, alt, at))
    return out


def _gpsu(data: bytes) -> float:
    text = data[:16].decode("ascii")  # yymmddhhmmss.sss
    try:
        moment = datetime.strptime(text, "%y%m%d%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        raise TelemetryError(f"GPSU {text!r} is not a yymmddhhmmss.sss time") from None
    return moment.timestamp()
