"""DJI flight telemetry in SRT subtitles, every layout the aircraft write.

- `GPS(lon,lat,N)` with `HOME(lon,lat)` and `BAROMETER:h` or `Hb:h` (Mavic Pro, Phantom 4,
  older firmware);
- `GPS(lat,lon,12.3M)`: the Matrice 300 family writes latitude first, altitude in metres
  with a unit, and a `yyyy.mm.dd hh:mm:ss` line;
- `F/2.8, SS …, GPS (lon, lat, N), D …m, H …m` on one line (Mavic Mini, Phantom 4 Pro);
- `<font …>` blocks with `[latitude: …] [longitude: …] [altitude: …]` (Air 2, Air 2S,
  Mini 3 and later; some firmware spells `longtitude`, some puts spaces before the colons).

In the longitude-first `GPS(lon, lat, N)` layouts the third value is the number of
satellites, not a height, whenever the cue carries a height of its own (`BAROMETER:`, `Hb:`
or `H …m`): an integer there is read as satellites and the height is taken from that field.

Times in the files are the aircraft's local clock with no zone: they are returned as
`local_time` text and turned into UTC only with a zone the caller names (`utc_times`).

A cue without a usable position (`N/A`, cut off, out of range) is named in `SrtTrack.bad`
and the other cues are kept; `strict=True` refuses the file at the first such cue. A file
that holds no cue, or no cue with a position, is always refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devices.telemetry.points import TelemetryError, TelemetryPoint

_TIMING = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)\s*-->\s*(\d+):(\d+):(\d+)[,.](\d+)")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_GPS_METRES = re.compile(rf"GPS\s*\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*M\s*\)")
_GPS = re.compile(rf"GPS\s*\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)?\)")
# A height written beside `GPS(lon, lat, N)`: `BAROMETER:1.9`, `Hb:1.9` or `H 45.60m`.
_HEIGHT = re.compile(rf"(?:BAROMETER\s*:\s*|\bHb\s*:\s*|\bH\s+){_NUMBER}")
# `[latitude: 41.42] [longitude: 2.23] [altitude: 117.0]`, or `[rel_alt: 5.2 abs_alt: 30.1]`.
_BRACKETED = {
    name: re.compile(rf"(?<![a-z_]){pattern}\s*:\s*{_NUMBER}")
    for name, pattern in (
        ("lat", "latitude"),
        ("lon", "long?t?itude"),
        ("alt", "(?:rel_)?alt(?:itude)?"),
    )
}
_LOCAL_TIME = re.compile(
    r"(\d{4})[-.](\d{1,2})[-.](\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})(?:[,.](\d{1,3}))?"
)
_MAX_SATELLITES = 64


@dataclass(frozen=True, slots=True)
class SrtPoint:
    point: TelemetryPoint
    cue: int
    local_time: str | None
    satellites: int | None = None


@dataclass(frozen=True, slots=True)
class SrtTrack:
    """The cues that gave a position, and a sentence for each one that did not."""

    points: list[SrtPoint]
    bad: list[str] = field(default_factory=list)


class _BadCueError(ValueError):
    pass


def parse_srt(text: str, name: str = "SRT", *, strict: bool = False) -> SrtTrack:
    if not text.strip():
        raise TelemetryError(f"{name} is empty: no cue to read (was the copy interrupted?)")
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if _TIMING.search(line):
            blocks.append((number, [line]))
        elif blocks and line.strip():
            blocks[-1][1].append(line)
    if not blocks:
        raise TelemetryError(f"{name} has no subtitle timing line (hh:mm:ss,mmm --> …)")
    points, bad = [], []
    for cue, (line_no, block) in enumerate(blocks, start=1):
        try:
            points.append(_cue(cue, block))
        except _BadCueError as exc:
            last = ", the file ends inside it: it is truncated" if cue == len(blocks) else ""
            problem = f"{name}: cue {cue} (line {line_no}) {exc}{last}"
            if strict:
                raise TelemetryError(problem) from None
            bad.append(problem)
    if not points:
        raise TelemetryError(f"{name}: none of its {len(blocks)} cues has a position; {bad[0]}")
    return SrtTrack(points, bad)


def utc_times(track: SrtTrack, zone: str) -> list[TelemetryPoint]:
    """The track's points with `at` set from each cue's local time read in `zone`."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TelemetryError(
            f"{zone!r} is not a time zone; use a name like Asia/Shanghai"
        ) from None
    timed = []
    for srt in track.points:
        if srt.local_time is None:
            raise TelemetryError(f"cue {srt.cue} carries no date and time to place it in UTC")
        parts = _LOCAL_TIME.fullmatch(srt.local_time)
        assert parts is not None
        y, mo, d, h, mi, s = (int(g) for g in parts.groups()[:6])
        fraction = int((parts.group(7) or "0").ljust(3, "0")) / 1000
        at = datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp() + fraction
        p = srt.point
        timed.append(TelemetryPoint(p.offset_s, p.lat, p.lon, p.alt_m, at))
    return timed


def _cue(cue: int, block: list[str]) -> SrtPoint:
    timing = _TIMING.search(block[0])
    assert timing is not None
    h, m, s, ms = (int(g) for g in timing.groups()[:4])
    offset = h * 3600 + m * 60 + s + ms / 10 ** len(timing.group(4))
    body = "\n".join(block[1:])
    local = _LOCAL_TIME.search(body)
    lat, lon, alt, satellites = _position(body)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _BadCueError(f"has latitude {lat} / longitude {lon}, out of range")
    point = TelemetryPoint(offset, lat, lon, alt)
    return SrtPoint(point, cue, local.group(0) if local else None, satellites)


def _position(body: str) -> tuple[float, float, float | None, int | None]:
    if metres := _GPS_METRES.search(body):  # Matrice 300: latitude first
        return float(metres.group(1)), float(metres.group(2)), float(metres.group(3)), None
    if plain := _GPS.search(body):  # everything older: longitude first
        lat, lon, third = float(plain.group(2)), float(plain.group(1)), plain.group(3)
        height = _HEIGHT.search(body[plain.end() :])
        if third is not None and height and third.isdigit() and int(third) <= _MAX_SATELLITES:
            return lat, lon, float(height.group(1)), int(third)
        return lat, lon, None if third is None else float(third), None
    found = {k: p.search(body) for k, p in _BRACKETED.items()}
    if found["lat"] and found["lon"]:
        alt = found["alt"]
        return (
            float(found["lat"].group(1)),
            float(found["lon"].group(1)),
            float(alt.group(1)) if alt else None,
            None,
        )
    if "N/A" in body.upper():
        raise _BadCueError("says N/A where its position should be")
    raise _BadCueError("has no position")
