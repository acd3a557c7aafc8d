"""Commands for evidence: archive, evidence export and verify, video probe and import."""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from devices.telemetry.points import TelemetryError
from devices.telemetry.srt import utc_times
from devices.video import Probe, probe
from dispatch.db import Database
from dispatch.db.history import HistoryStore
from dispatch.evidence.archive import MANIFEST, verify_segment
from dispatch.evidence.archiver import Archiver
from dispatch.evidence.build import build_package
from dispatch.evidence.collect import UnknownIncidentError, collect
from dispatch.evidence.verify import verify_package
from dispatch.records import IncidentRecords
from dispatch.settings import Settings
from dispatch.store import Store


def cmd_video(args: argparse.Namespace, settings: Settings) -> int:
    zone = ZoneInfo(settings.timezone)
    try:
        clip = probe(Path(args.file), strict=args.strict)
        if args.action == "import":
            return _import_file_track(clip, args.clip, args.srt_zone, settings)
    except TelemetryError as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    created = datetime.fromtimestamp(clip.created_at, zone).isoformat() if clip.created_at else "-"
    print(f"{clip.path}: {clip.container}, {clip.size:,} bytes, {clip.duration_s or 0:.2f} s")
    print(f"  created {created}")
    print(
        f"  location {clip.location[0]:.4f}, {clip.location[1]:.4f}"
        if clip.location
        else "  location -"
    )
    for stream in clip.streams:
        print(
            f"  #{stream.index} {stream.kind} {stream.codec or '-'} {stream.detail} {stream.handler or ''}".rstrip()
        )
    print(f"  telemetry: {clip.telemetry}")
    if clip.gps:
        lats, lons = [p.lat for p in clip.gps], [p.lon for p in clip.gps]
        print(
            f"  GPS: {len(clip.gps)} points, lat {min(lats):.6f}…{max(lats):.6f}, "
            f"lon {min(lons):.6f}…{max(lons):.6f}"
        )
    if clip.srt is not None:
        first, last = clip.srt.points[0], clip.srt.points[-1]
        print(f"  aircraft clock {first.local_time or '-'} … {last.local_time or '-'} (no zone)")
    for problem in clip.problems:
        print(f"  problem: {problem}")
    return 0


def _import_file_track(
    clip: Probe, clip_id: str | None, srt_zone: str | None, settings: Settings
) -> int:
    if not clip_id:
        print("FAIL name the clip record the file belongs to: --clip CLIP_ID", file=sys.stderr)
        return 1
    if not clip.gps:
        print(f"FAIL {clip.path} has no GPS telemetry ({clip.telemetry})", file=sys.stderr)
        return 1
    if clip.srt is not None:
        if srt_zone is None:
            print(
                f"FAIL {clip.path}: SRT times are the aircraft's clock with no zone; "
                "name it, e.g. --srt-zone Asia/Shanghai",
                file=sys.stderr,
            )
            return 1
        clip.gps = utc_times(clip.srt, srt_zone)
    if any(p.at is None for p in clip.gps):
        print(f"FAIL {clip.path}: its GPS points carry no UTC time to compare", file=sys.stderr)
        return 1
    store = Store.from_url(settings.redis_url, settings.key_prefix)
    data = Path(clip.path).read_bytes()
    store.clips.save_file_track(
        clip_id,
        {
            "source": "file",
            "file_name": Path(clip.path).name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "telemetry": clip.telemetry,
            "points": [[p.at, p.lon, p.lat, p.alt_m] for p in clip.gps],
        },
    )
    print(
        f"{len(clip.gps)} GPS points of {Path(clip.path).name} stored as the file track of {clip_id}"
    )
    return 0


def cmd_evidence(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "export":
        store = Store.from_url(settings.redis_url, settings.key_prefix)
        db = Database(settings.database_url, max_size=1)
        records = IncidentRecords(store.incidents, HistoryStore(db))
        now = time.time()
        try:
            content = collect(
                store, records, settings.archive(), args.incident, photos=settings.photos(),
                now=now, margin_s=args.margin, zone=settings.timezone,
            )  # fmt: skip
        except UnknownIncidentError as exc:
            print(f"FAIL {exc}", file=sys.stderr)
            return 1
        finally:
            db.close()
        out = Path(args.output or f"{args.incident}-evidence.zip")
        out.write_bytes(build_package(content, settings.signer(), now))
        fixes = sum(len(t.records) for t in content.tracks)
        print(
            f"{out}: {len(content.tracks)} devices, {fixes} fixes, {len(content.clips)} clips, "
            f"{len(content.photo_files)} photos"
        )
        return 0
    path = Path(args.package)
    if path.name.endswith(MANIFEST):
        problems, summary = verify_segment(path, args.key), [f"segment {path.name}"]
    else:
        verdict = verify_package(path.read_bytes(), args.key)
        problems, summary = verdict.problems, verdict.summary
    for line in summary:
        print(f"  {line}")
    for problem in problems:
        print(f"FAIL {problem}")
    print(
        "VERIFIED: intact and signed" if not problems else f"NOT VERIFIED: {len(problems)} problems"
    )
    return 1 if problems else 0


def cmd_archive(args: argparse.Namespace, settings: Settings) -> int:
    archiver = Archiver(
        Store.from_url(settings.redis_url, settings.key_prefix),
        settings.archive(),
        settings.signer(),
        settings.seal_policy(),
        # The center's clock, as the fixes' times: a track's age is in the same time.
        settings.clock(),
        force=args.force,
        on_sealed=lambda path: print(f"sealed {path}", flush=True),
    )
    if args.once:
        failed = archiver.run_once()
        if failed:
            print(f"FAIL {failed} devices could not be sealed (see the log)", file=sys.stderr)
        return 1 if failed else 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    archiver.run(stop, args.every if args.every is not None else settings.archive_every_s)
    return 0


def add_evidence_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evidence = commands.add_parser("evidence", help="export and verify evidence packages")
    evidence_actions = evidence.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = evidence_actions.add_parser("export", help="write an incident's signed package")
    export.add_argument("--incident", required=True)
    export.add_argument("-o", "--output", help="zip file (default INCIDENT-evidence.zip)")
    export.add_argument("--margin", type=float, default=300.0, help="seconds around the incident")
    check = evidence_actions.add_parser("verify", help="check a package or a sealed segment")
    check.add_argument("package", help="a package .zip or a segment's .manifest.json")
    check.add_argument("--key", help="the public key (hex) the signature must be made with")
    evidence.set_defaults(func=cmd_evidence)

    archive = commands.add_parser("archive", help="seal live tracks into signed GeoParquet")
    archive.add_argument("--once", action="store_true", help="one pass, then exit")
    archive.add_argument("--force", action="store_true", help="seal every live track now")
    archive.add_argument(
        "--every", type=float, help="seconds between passes (default YIWANG_ARCHIVE_EVERY_S, 60)"
    )
    archive.set_defaults(func=cmd_archive)

    video = commands.add_parser("video", help="read clip files: container, streams, GPS")
    video.add_argument("action", choices=["probe", "import"], help="import: keep the GPS track")
    video.add_argument("file")
    video.add_argument("--clip", help="import: the clip record the file belongs to")
    video.add_argument(
        "--strict", action="store_true", help="refuse an SRT file with any cue that has no position"
    )
    video.add_argument(
        "--srt-zone",
        metavar="ZONE",
        help="import: the time zone of the aircraft's clock in an SRT (e.g. Asia/Shanghai)",
    )
    video.set_defaults(func=cmd_video)
