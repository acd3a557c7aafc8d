"""DJI flight telemetry in SRT subtitles, every layout the aircraft write.

- `GPS(lon,lat,alt)` with `HOME(lon,lat)` (Mavic Pro, Phantom 4, older firmware);
- `GPS(lat,lon,12.3M)`: the Matrice 300 family writes latitude first, altitude in metres
  with a unit, and a `yyyy.mm.dd hh:mm:ss` line;
- `F/2.8, SS …, GPS (lon, lat, alt), D …` on one line (Mavic Mini, Phantom 4 Pro);
- `<font …>` blocks with `[latitude: …] [longitude: …] [altitude: …]` (Air 2, Air 2S,
  Mini 3 and later; some firmware spells `longtitude`).

Times in the files are the aircraft's local clock with no zone: they are returned as
`local_time` text, never guessed into UTC. A file that ends inside a cue or holds no cue is
rejected with the cue and line to look at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devices.telemetry.points import TelemetryError, TelemetryPoint

_TIMING = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)\s*-->\s*(\d+):(\d+):(\d+)[,.](\d+)")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_GPS_METRES = re.compile(rf"GPS\s*\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*M\s*\)")
_GPS = re.compile(rf"GPS\s*\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)?\)")
# `[latitude: 41.42] [longitude: 2.23] [altitude: 117.0]`, or `[rel_alt: 5.2 abs_alt: 30.1]`.
_BRACKETED = {
    name: re.compile(rf"(?<![a-z_]){pattern}\s*:\s*{_NUMBER}")
    for name, pattern in (
        ("lat", "latitude"),
        ("lon", "long?t?itude"),
        ("alt", "(?:rel_)?alt(?:itude)?"),
    )
}
_LOCAL_TIME = re.compile(r"(\d{4}[-.]\d{1,2}[-.]\d{1,2} \d{1,2}:\d{2}:\d{2}(?:[,.]\d{1,3})?)")


@dataclass(frozen=True, slots=True)
class SrtPoint:
    point: TelemetryPoint
    cue: int
    local_time: str | None


def parse_srt(text: str, name: str = "SRT") -> list[SrtPoint]:
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
    points = []
    for cue, (line_no, block) in enumerate(blocks, start=1):
        parsed = _cue(cue, block)
        if parsed is None:
            raise TelemetryError(
                f"{name}: cue {cue} (line {line_no}) has no position"
                + (", the file ends inside it: it is truncated" if cue == len(blocks) else "")
            )
        points.append(parsed)
    return points


def _cue(cue: int, block: list[str]) -> SrtPoint | None:
    timing = _TIMING.search(block[0])
    assert timing is not None
    h, m, s, ms = (int(g) for g in timing.groups()[:4])
    offset = h * 3600 + m * 60 + s + ms / 10 ** len(timing.group(4))
    body = "\n".join(block[1:])
    local = _LOCAL_TIME.search(body)
    lat_lon_alt = _position(body)
    if lat_lon_alt is None:
        return None
    lat, lon, alt = lat_lon_alt
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise TelemetryError(f"cue {cue}: latitude {lat} / longitude {lon} out of range")
    point = TelemetryPoint(offset, lat, lon, alt)
    return SrtPoint(point, cue, local.group(1) if local else None)


def _position(body: str) -> tuple[float, float, float | None] | None:
    if metres := _GPS_METRES.search(body):  # Matrice 300: latitude first
        return float(metres.group(1)), float(metres.group(2)), float(metres.group(3))
    if plain := _GPS.search(body):  # everything older: longitude first
        alt = plain.group(3)
        return float(plain.group(2)), float(plain.group(1)), None if alt is None else float(alt)
    found = {k: p.search(body) for k, p in _BRACKETED.items()}
    if found["lat"] and found["lon"]:
        alt = found["alt"]
        return (
            float(found["lat"].group(1)),
            float(found["lon"].group(1)),
            float(alt.group(1)) if alt else None,
        )
    return None
