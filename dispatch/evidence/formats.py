"""What an evidence package holds, and how each file in it is written and read back.

    manifest.json     what is inside: every file's sha256, each device's chain start, head and
                      count, the incident, the window, the public key
    manifest.sig      Ed25519 signature of manifest.json's canonical bytes
    incident.json     the incident with its milestones; timeline.json its audit trail
    chains/*.jsonl    each device's chained records over the window, in storage order
    tracks/*.geojson, tracks/*.parquet (GeoParquet), tracks/*.gpx   the same fixes as tracks
    clips.json        body-cam clip records of the officers over the window
    photos.json, photos/<sha256>.jpg   a citizen's report and its photos, as stored
    report.html       the readable report with a drawn map; map.html an interactive one

Every track format is read back as (fix_at, lon, lat) points, so that a verifier can hold each
file against the chain value for value.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import geopandas

from dispatch.core.track import DeviceKey
from dispatch.evidence.records import ChainRecord, frame, records_from_frame
from dispatch.evidence.signing import canonical_json

KIND = "yiwang-evidence/1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
# The zip's comment is the signature of all the bytes before it: an Ed25519 signature, in hex.
ZIP_SIGNATURE_HEX = 128
_GPX_NS = "http://www.topografix.com/GPX/1/1"
_GPX_TIME = "%Y-%m-%dT%H:%M:%SZ"

Point = tuple[int, float, float]


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
    # A citizen's report: each photo's record, and the stored bytes by sha256.
    photos: list[dict[str, Any]] = field(default_factory=list)
    photo_files: dict[str, bytes] = field(default_factory=dict)


def encode_json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode()


def write_chain(records: list[ChainRecord]) -> bytes:
    # Canonical bytes, one record a line: anyone can recompute each link with a sha256 tool.
    return b"".join(canonical_json(r.to_json()) + b"\n" for r in records)


def write_geojson(track: DeviceTrack) -> bytes:
    return encode_json(
        {
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
    )


def read_geojson(data: bytes) -> list[Point]:
    features = json.loads(data)["features"]
    return [
        (
            int(f["properties"]["fix_at"]),
            float(f["geometry"]["coordinates"][0]),
            float(f["geometry"]["coordinates"][1]),
        )
        for f in features
    ]


def write_parquet(track: DeviceTrack) -> bytes:
    buffer = io.BytesIO()
    frame(track.records).to_parquet(buffer, index=False)
    return buffer.getvalue()


def read_parquet(data: bytes) -> list[Point]:
    records, problems = records_from_frame(geopandas.read_parquet(io.BytesIO(data)), "parquet")
    if problems:
        raise ValueError(problems[0])
    return [(r.fix["fix_at"], float(r.fix["lon"]), float(r.fix["lat"])) for r in records]


def write_gpx(track: DeviceTrack) -> bytes:
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
        ).strftime(_GPX_TIME)
    return ET.tostring(gpx, xml_declaration=True, encoding="utf-8")


def read_gpx(data: bytes) -> list[Point]:
    root = ET.fromstring(data)
    points = []
    for point in root.iter(f"{{{_GPX_NS}}}trkpt"):
        stamp = point.findtext(f"{{{_GPX_NS}}}time") or ""
        at = int(datetime.strptime(stamp, _GPX_TIME).replace(tzinfo=ZoneInfo("UTC")).timestamp())
        points.append((at, float(point.attrib["lon"]), float(point.attrib["lat"])))
    return points


@dataclass(frozen=True)
class TrackFormat:
    """One way a device's track is written into the package, and how it is read back."""

    suffix: str
    write: Callable[[DeviceTrack], bytes]
    read: Callable[[bytes], list[Point]]


TRACK_FORMATS = {
    "geojson": TrackFormat(".geojson", write_geojson, read_geojson),
    "parquet": TrackFormat(".parquet", write_parquet, read_parquet),
    "gpx": TrackFormat(".gpx", write_gpx, read_gpx),
}


def track_files(track: DeviceTrack) -> dict[str, str]:
    """The device's files in the package: its chain, then its track in each format."""
    return {
        "chain": f"chains/{track.stem}.jsonl",
        **{kind: f"tracks/{track.stem}{f.suffix}" for kind, f in TRACK_FORMATS.items()},
    }


def photo_file(sha256: str) -> str:
    """A photo's file in the package: named by its digest, which the manifest lists too."""
    return f"photos/{sha256}.jpg"


def write_file_geojson(clip_id: str, from_file: dict[str, Any]) -> bytes:
    return encode_json({
        "type": "FeatureCollection",
        "properties": {"source": "file", "clip_id": clip_id, **{k: v for k, v in from_file.items() if k != "points"}},
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
             "properties": {"time": at, "alt_m": alt, "source": "file"}}
            for at, lon, lat, alt in from_file["points"]
        ],
    })  # fmt: skip
