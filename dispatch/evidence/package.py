"""Per-incident evidence packages: one zip anyone can check without us.

    manifest.json     what is inside: every file's sha256, each device's chain start, head and
                      count, the incident, the window, the public key
    manifest.sig      Ed25519 signature of manifest.json's canonical bytes
    incident.json     the incident with its milestones; timeline.json its audit trail
    chains/*.jsonl    each device's chained records over the window, in storage order
    tracks/*.geojson, tracks/*.parquet (GeoParquet), tracks/*.gpx   the same fixes as tracks
    clips.json        body-cam clip records of the officers over the window
    report.html       the readable report with a drawn map; map.html an interactive one

`verify_package` checks the signature, every digest, every chain link from its start to the
manifest's head, and every track file against the chain, value for value; each problem names
the file and the record.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import geopandas

from dispatch.core.track import DeviceKey
from dispatch.evidence.records import ChainRecord, check_chain, frame, records_from_frame
from dispatch.evidence.signing import Signer, canonical_json, signature_valid
from dispatch.evidence.staticmap import pydeck_page, svg_map
from gis.coords import LonLat, haversine_m

KIND = "yiwang-evidence/1"
_ZIP_SIGNATURE_HEX = 128  # an Ed25519 signature, hex
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
_GPX_NS = "http://www.topografix.com/GPX/1/1"


@dataclass
class DeviceTrack:
    device: DeviceKey
    officer: str
    chain_start: str
    records: list[ChainRecord]

    @property
    def stem(self) -> str:
        return self.device.replace("/", "_")


@dataclass
class PackageContent:
    incident: dict[str, Any]
    audit: list[dict[str, Any]]
    tracks: list[DeviceTrack]
    clips: list[dict[str, Any]]
    window: tuple[float, float]
    zone: str = "Asia/Shanghai"
    crosschecks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Tracks read from clip files (by clip id): evidence of another kind, tagged as such.
    file_tracks: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Verdict:
    problems: list[str]
    summary: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def build_package(
    content: PackageContent, signer: Signer, created_at: float, *, with_map: bool = True
) -> bytes:
    files: dict[str, bytes] = {
        "incident.json": _json(content.incident),
        "timeline.json": _json({"milestones": content.incident.get("milestones", []), "audit": content.audit}),
        "clips.json": _json(content.clips),
    }  # fmt: skip
    chains: dict[str, Any] = {}
    for track in content.tracks:
        head, problems = check_chain(track.records, track.chain_start, track.device, track.device)
        if problems:
            raise ValueError(
                f"the stored chain is broken, no package can vouch for it: {problems[0]}"
            )
        names = {
            "chain": f"chains/{track.stem}.jsonl",
            "geojson": f"tracks/{track.stem}.geojson",
            "parquet": f"tracks/{track.stem}.parquet",
            "gpx": f"tracks/{track.stem}.gpx",
        }
        files[names["chain"]] = b"".join(canonical_json(r.to_json()) + b"\n" for r in track.records)
        files[names["geojson"]] = _json(_geojson(track))
        buffer = io.BytesIO()
        frame(track.records).to_parquet(buffer, index=False)
        files[names["parquet"]] = buffer.getvalue()
        files[names["gpx"]] = _gpx(track)
        chains[track.device] = {
            **names,
            "officer": track.officer,
            "start": track.chain_start,
            "head": head,
            "count": len(track.records),
        }
    for clip_id, from_file in content.file_tracks.items():
        files[f"tracks/files/{clip_id}.geojson"] = _json(_file_geojson(clip_id, from_file))
    lines = {t.device: [(r.fix["lon"], r.fix["lat"]) for r in t.records] for t in content.tracks}
    spot = tuple(content.incident["location"])
    files["report.html"] = _report(content, chains, svg_map(lines, spot)).encode()
    if with_map:
        files.update(pydeck_page(lines, spot))
    manifest = {
        "kind": KIND,
        "incident": content.incident["id"],
        "window": list(content.window),
        "created_at": round(created_at, 3),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "chains": chains,
        "key_id": signer.key_id,
        "public_key": signer.public_hex,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
        archive.writestr(SIGNATURE, signer.sign(canonical_json(manifest)))
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.comment = b"0" * _ZIP_SIGNATURE_HEX
    # The zip's own bytes are signed too, the signature being its comment (the last bytes of
    # the file): even a header byte that changes no content fails verification.
    signed = buffer.getvalue()[:-_ZIP_SIGNATURE_HEX]
    return signed + signer.sign(signed).encode()


def verify_package(data: bytes, trusted_key: str | None = None) -> Verdict:
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return Verdict([f"package: not a readable zip ({exc})"], [])
    contents: dict[str, bytes] = {}
    for name in names:
        try:
            contents[name] = archive.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
            problems.append(f"{name}: cannot be read from the zip ({exc})")
    try:
        manifest = json.loads(contents[MANIFEST])
        signature = contents[SIGNATURE].decode("ascii").strip()
    except (KeyError, ValueError) as exc:
        return Verdict([*problems, f"{MANIFEST} or {SIGNATURE}: missing or unreadable ({exc})"], [])
    signed, whole = (
        data[:-_ZIP_SIGNATURE_HEX],
        data[-_ZIP_SIGNATURE_HEX:].decode("ascii", "replace"),
    )
    if not signature_valid(str(manifest.get("public_key", "")), signed, whole):
        problems.append("package: the zip's bytes changed after signing (whole-package signature)")
    if not re.fullmatch("[0-9a-f]{128}", signature):
        problems.append(f"{SIGNATURE}: not the lower-case hex Ed25519 signature written at export")
    elif not signature_valid(
        str(manifest.get("public_key", "")), canonical_json(manifest), signature
    ):
        problems.append(f"{MANIFEST}: the signature does not match (changed after signing)")
    if trusted_key is not None and manifest.get("public_key") != trusted_key:
        problems.append(f"{MANIFEST}: signed by key {manifest.get('key_id')}, not the trusted key")
    listed: dict[str, str] = manifest.get("files", {})
    for name, digest in listed.items():
        if name not in contents:
            if not any(p.startswith(f"{name}:") for p in problems):
                problems.append(f"{name}: listed in the manifest, missing from the package")
        elif hashlib.sha256(contents[name]).hexdigest() != digest:
            problems.append(f"{name}: sha256 differs from the manifest (the file was changed)")
    for name in names:
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            problems.append(f"{name}: in the package but not in the manifest")
    summary = [f"incident {manifest.get('incident')}, signed by key {manifest.get('key_id')}"]
    for device, chain in manifest.get("chains", {}).items():
        try:
            problems += _check_device(DeviceKey(device), chain, contents)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(f"{MANIFEST}: the chain entry of {device} is unusable ({exc!r})")
        summary.append(
            f"{device} ({chain.get('officer')}): {chain.get('count')} fixes, head {str(chain.get('head'))[:16]}…"
        )
    return Verdict(problems, summary)


def _check_device(
    device: DeviceKey, chain: dict[str, Any], contents: dict[str, bytes]
) -> list[str]:
    problems: list[str] = []
    name = chain["chain"]
    records = []
    for number, line in enumerate(contents.get(name, b"").splitlines(), start=1):
        try:
            records.append(ChainRecord.from_json(json.loads(line)))
        except (ValueError, KeyError) as exc:
            problems.append(f"{name}: line {number} is not a chain record ({exc})")
            return problems
    head, chain_problems = check_chain(records, chain["start"], name, device)
    problems += chain_problems
    if not chain_problems and head != chain["head"]:
        problems.append(
            f"{name}: the chain ends on {head[:16]}…, the manifest says {str(chain['head'])[:16]}… (records missing at the end)"
        )
    if len(records) != chain["count"]:
        problems.append(f"{name}: {len(records)} records, the manifest says {chain['count']}")
    if chain_problems:
        return problems  # the tracks cannot be compared with a chain that does not hold
    expected = [(r.fix["fix_at"], float(r.fix["lon"]), float(r.fix["lat"])) for r in records]
    for kind, reader in (
        ("geojson", _geojson_points),
        ("parquet", _parquet_points),
        ("gpx", _gpx_points),
    ):
        file = chain[kind]
        if file not in contents:
            continue
        try:
            found = reader(contents[file])
        # Decoders of untrusted bytes (pyarrow, pyproj, shapely) raise errors of their own.
        except Exception as exc:
            problems.append(f"{file}: unreadable ({exc})")
            continue
        problems += _compare(file, found, expected)
    return problems


def _compare(
    file: str, found: list[tuple[int, float, float]], expected: list[tuple[int, float, float]]
) -> list[str]:
    for index, (got, want) in enumerate(zip(found, expected, strict=False)):
        if got[0] != want[0] or abs(got[1] - want[1]) > 1e-9 or abs(got[2] - want[2]) > 1e-9:
            return [f"{file}: point {index} is {got}, the chain says {want}"]
    if len(found) != len(expected):
        return [f"{file}: {len(found)} points, the chain has {len(expected)}"]
    return []


def _geojson(track: DeviceTrack) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "properties": {"device": track.device, "officer": track.officer, "crs": "WGS-84"},
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [r.fix["lon"], r.fix["lat"]]},
                "properties": {
                    **r.fix,
                    "stream_id": r.stream_id,
                    "chain_hash": r.chain_hash,
                    "backfill": r.backfill,
                },
            }
            for r in track.records
        ],
    }


def _file_geojson(clip_id: str, from_file: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "properties": {"source": "file", "clip_id": clip_id, **{k: v for k, v in from_file.items() if k != "points"}},
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
             "properties": {"time": at, "alt_m": alt, "source": "file"}}
            for at, lon, lat, alt in from_file["points"]
        ],
    }  # fmt: skip


def _geojson_points(data: bytes) -> list[tuple[int, float, float]]:
    features = json.loads(data)["features"]
    return [
        (
            int(f["properties"]["fix_at"]),
            float(f["geometry"]["coordinates"][0]),
            float(f["geometry"]["coordinates"][1]),
        )
        for f in features
    ]


def _parquet_points(data: bytes) -> list[tuple[int, float, float]]:
    records, problems = records_from_frame(geopandas.read_parquet(io.BytesIO(data)), "parquet")
    if problems:
        raise ValueError(problems[0])
    return [(r.fix["fix_at"], float(r.fix["lon"]), float(r.fix["lat"])) for r in records]


def _gpx(track: DeviceTrack) -> bytes:
    ET.register_namespace("", _GPX_NS)
    gpx = ET.Element(f"{{{_GPX_NS}}}gpx", version="1.1", creator="yiwang")
    trk = ET.SubElement(gpx, f"{{{_GPX_NS}}}trk")
    ET.SubElement(trk, f"{{{_GPX_NS}}}name").text = f"{track.officer} {track.device}"
    segment = ET.SubElement(trk, f"{{{_GPX_NS}}}trkseg")
    for record in track.records:
        fix = record.fix
        point = ET.SubElement(
            segment, f"{{{_GPX_NS}}}trkpt", lat=repr(float(fix["lat"])), lon=repr(float(fix["lon"]))
        )
        ET.SubElement(point, f"{{{_GPX_NS}}}time").text = datetime.fromtimestamp(
            fix["fix_at"], ZoneInfo("UTC")
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ET.tostring(gpx, xml_declaration=True, encoding="utf-8")


def _gpx_points(data: bytes) -> list[tuple[int, float, float]]:
    root = ET.fromstring(data)
    points = []
    for point in root.iter(f"{{{_GPX_NS}}}trkpt"):
        stamp = point.findtext(f"{{{_GPX_NS}}}time") or ""
        at = int(
            datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=ZoneInfo("UTC"))
            .timestamp()
        )
        points.append((at, float(point.attrib["lon"]), float(point.attrib["lat"])))
    return points


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode()


def _crosscheck_text(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "no GPS in the file"
    if not stats.get("compared"):
        return f"{stats['file_points']} file points, none at a time the officer's track covers"
    return (
        f"{stats['compared']} of {stats['file_points']} points compared: median "
        f"{stats['median_m']} m, p95 {stats['p95_m']} m, max {stats['max_m']} m"
    )


def _local(at: float | None, zone: str) -> str:
    return (
        "-"
        if at is None
        else datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
    )


def _report(content: PackageContent, chains: dict[str, Any], drawing: str) -> str:
    incident, zone = content.incident, content.zone
    rows = "".join(
        f"<tr><td>{escape(m['milestone'])}</td><td>{_local(m.get('due_at'), zone)}</td><td>{_local(m['reached_at'], zone)}</td>"
        f"<td>{m['late_by_s']:.0f} s</td><td>{escape(str(m['by']))}</td><td>{escape(str(m['via']))}</td></tr>"
        for m in incident.get("milestones", [])
    )
    audit = "".join(
        f"<tr><td>{_local(float(r['at']), zone)}</td><td>{escape(str(r.get('kind')))}</td><td>{escape(str(r.get('detail') or r.get('reason') or ''))[:300]}</td></tr>"
        for r in content.audit
    )
    tracks = ""
    for track in content.tracks:
        fixes = [r.fix for r in track.records]
        length = sum(
            haversine_m(LonLat(a["lon"], a["lat"]), LonLat(b["lon"], b["lat"]))
            for a, b in itertools.pairwise(fixes)
        )
        span = (
            f"{_local(fixes[0]['fix_at'], zone)} – {_local(fixes[-1]['fix_at'], zone)}"
            if fixes
            else "-"
        )
        tracks += (
            f"<tr><td>{escape(track.officer)}</td><td>{escape(track.device)}</td><td>{len(fixes)}</td>"
            f"<td>{length:,.0f} m</td><td>{span}</td><td><code>{chains[track.device]['head'][:16]}…</code></td></tr>"
        )
    clips = "".join(
        f"<tr><td>{escape(str(c.get('clip_id')))}</td><td>{escape(str(c.get('officer', '')))}</td><td>{_local(c.get('start'), zone)}</td>"
        f"<td>{_local(c.get('end'), zone)}</td><td>{escape(str(c.get('file_name', '')))}</td>"
        f"<td>{escape(_crosscheck_text(content.crosschecks.get(str(c.get('clip_id')))))}</td></tr>"
        for c in content.clips
    )
    start, end = content.window
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>执法证据包 {escape(incident["id"])}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}}h1{{font-size:20px}}h2{{font-size:16px;margin-top:2em}}</style></head><body>
<h1>执法证据包 Evidence package — {escape(incident["id"])}</h1>
<p>{escape(incident.get("title") or incident["category"])} · 类别 {escape(incident["category"])} · 优先级 {incident.get("priority")} · 来源 {escape(str(incident.get("source")))}<br>
上报 reported {_local(incident.get("reported_at"), zone)} · 状态 phase {escape(str(incident.get("phase")))} · 时段 window {_local(start, zone)} – {_local(end, zone)} ({escape(zone)})</p>
{drawing}
<h2>1/3/15 时限 Milestones</h2><table><tr><th>milestone</th><th>due</th><th>reached</th><th>late</th><th>by</th><th>via</th></tr>{rows}</table>
<h2>轨迹 Tracks</h2><table><tr><th>officer</th><th>device</th><th>fixes</th><th>length</th><th>from – to</th><th>chain head</th></tr>{tracks}</table>
<h2>执法记录仪 Clips</h2><table><tr><th>clip</th><th>officer</th><th>start</th><th>end</th><th>file</th><th>GPS cross-check</th></tr>{clips}</table>
<h2>审计 Audit trail</h2><table><tr><th>time</th><th>what</th><th>detail</th></tr>{audit}</table>
<h2>核验 How to verify</h2><p>Every file's sha256 is in <code>manifest.json</code>, signed in <code>manifest.sig</code> (Ed25519, public key inside the manifest).
Each chain record's hash is sha256(previous hash ‖ canonical fix ‖ sha256(raw payload)). Run <code>yiwang evidence verify PACKAGE.zip</code>, or recompute them with any sha256 tool.</p>
</body></html>"""
