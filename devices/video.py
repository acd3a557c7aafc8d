"""Clip files as the center sees them, read with PyAV: container and streams, duration,
codecs, creation time, the ISO 6709 location tag, and GPS telemetry: GoPro GPMF tracks inside
the file, or a DJI SRT file (given itself, or lying beside the video under the same name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import av

from devices.telemetry.gpmf import gps_points
from devices.telemetry.iso6709 import parse_iso6709
from devices.telemetry.points import TelemetryError, TelemetryPoint
from devices.telemetry.srt import SrtTrack, parse_srt

_GPMF_HANDLER = "GoPro MET"


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # video, audio, data, ...
    codec: str | None
    handler: str | None
    duration_s: float | None
    detail: str = ""  # e.g. 1920x1080 25 fps, 48000 Hz


@dataclass
class Probe:
    path: str
    container: str
    size: int
    duration_s: float | None
    created_at: float | None  # UTC epoch seconds, from the container's creation_time
    location: tuple[float, float, float | None] | None  # ISO 6709: lat, lon, height
    streams: list[StreamInfo] = field(default_factory=list)
    # "gpmf": with positions; "gpmf, no position"; "srt"; "srt sidecar NAME"; "none"
    telemetry: str = "none"
    gps: list[TelemetryPoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    srt: SrtTrack | None = None  # local times, satellites: what `gps` alone does not say


def probe(path: Path, *, strict: bool = False) -> Probe:
    """Read a clip file, or an SRT file alone; `strict` refuses an SRT with a bad cue."""
    if path.suffix.lower() == ".srt":
        result = Probe(str(path), "srt", path.stat().st_size, None, None, None)
        _attach_srt(result, path, "srt", strict)
        result.duration_s = result.gps[-1].offset_s
        return result
    result = _probe_media(path)
    sidecar = next(
        (p for p in (path.with_suffix(".SRT"), path.with_suffix(".srt")) if p.is_file()), None
    )
    if sidecar is not None and not result.gps:
        _attach_srt(result, sidecar, f"srt sidecar {sidecar.name}", strict)
    return result


def _attach_srt(result: Probe, path: Path, telemetry: str, strict: bool) -> None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise TelemetryError(f"{path}: not a UTF-8 SRT text file") from None
    track = parse_srt(text, path.name, strict=strict)
    result.srt, result.telemetry = track, telemetry
    result.gps = [p.point for p in track.points]
    result.problems.extend(track.bad)


def _probe_media(path: Path) -> Probe:
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise TelemetryError(f"{path}: not a readable media file ({exc})") from None
    with container:
        meta = dict(container.metadata)
        result = Probe(
            str(path),
            container.format.name,
            path.stat().st_size,
            container.duration / av.time_base if container.duration else None,
            _creation(meta.get("creation_time")),
            None,
        )
        location = meta.get("location") or meta.get("location-eng")
        if location:
            try:
                result.location = parse_iso6709(location)
            except TelemetryError as exc:
                result.problems.append(str(exc))
        gpmf = None
        for stream in container.streams:
            handler = _printable(stream.metadata.get("handler_name"))
            result.streams.append(_stream_info(stream, handler))
            if stream.type == "data" and handler and _GPMF_HANDLER in handler:
                gpmf = stream
        if gpmf is not None:
            packets = [
                (
                    float(p.pts * p.time_base) if p.pts is not None else 0.0,
                    float(p.duration * p.time_base) if p.duration else 1.0,
                    bytes(p),
                )
                for p in container.demux(gpmf)
                if p.size
            ]
            try:
                result.gps = gps_points(packets)
            except TelemetryError as exc:
                result.problems.append(f"GPMF: {exc}")
            result.telemetry = "gpmf" if result.gps else "gpmf, no position"
    return result


def _stream_info(stream: av.stream.Stream, handler: str | None) -> StreamInfo:
    context = getattr(stream, "codec_context", None)
    codec = context.name if context is not None else None
    duration = (
        float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    )
    detail = ""
    if stream.type == "video" and context is not None:
        rate = stream.average_rate
        detail = f"{context.width}x{context.height}" + (f" {float(rate):.3g} fps" if rate else "")
    elif stream.type == "audio" and context is not None:
        detail = f"{context.sample_rate} Hz"
    return StreamInfo(stream.index, stream.type, codec, handler, duration, detail)


def _printable(text: str | None) -> str | None:
    # MP4 handler names often keep their Pascal-string length byte.
    return None if text is None else "".join(c for c in text if c.isprintable()).strip()


def _creation(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
