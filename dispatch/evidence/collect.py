"""Gathering what an incident's evidence package holds, from Redis and the sealed archive.

The officers are everyone an order of the incident named (including those it was taken from)
and whoever reached a milestone; their devices are the ones that published under their
names. The window runs from the report to the last thing that happened, each widened by a
margin. Each device's chain excerpt is the stored run covering the window, with the hash it
starts from, so a verifier can recompute it without the rest of the chain. A citizen's report
brings its photos, read from the photo folder by their sha256 (a photo whose file is gone is
listed as missing, never left out silently).
"""

from __future__ import annotations

from typing import Any

import msgspec

from devices.telemetry.points import TelemetryPoint
from dispatch.core.model import Incident
from dispatch.core.track import DeviceKey, genesis
from dispatch.evidence.archive import Archive, full_track
from dispatch.evidence.crosscheck import crosscheck
from dispatch.evidence.formats import DeviceTrack, PackageContent
from dispatch.evidence.records import ChainRecord
from dispatch.photos import PhotoFolder
from dispatch.records import IncidentRecords
from dispatch.store import Store


class UnknownIncidentError(LookupError):
    """No incident with that id; the message says where to look."""


def incident_officers(incident: Incident) -> list[str]:
    named: list[str] = []
    if incident.order is not None:
        named += incident.order.officers
    named += incident.past_officers
    named += [
        m.by for m in incident.milestones if m.via in ("gps", "geofence", "button", "terminal")
    ]
    return sorted(set(named))


def excerpt(
    records: list[ChainRecord], dev: DeviceKey, start: float, end: float
) -> tuple[str, list[ChainRecord]]:
    """The contiguous stored run whose fixes fall in [start, end], and the hash before it."""
    inside = [n for n, r in enumerate(records) if start <= r.fix["fix_at"] <= end]
    if not inside:
        return genesis(dev), []
    first, last = inside[0], inside[-1]
    before = records[first - 1].chain_hash if first > 0 else genesis(dev)
    return before, records[first : last + 1]


def collect(
    store: Store,
    records: IncidentRecords,
    archive: Archive,
    incident_id: str,
    *,
    photos: PhotoFolder,
    now: float,
    margin_s: float = 300.0,
    zone: str = "Asia/Shanghai",
) -> PackageContent:
    incident = records.incident(incident_id)
    if incident is None:
        raise UnknownIncidentError(
            f"no incident {incident_id}; list them with GET /api/incidents?open_only=false"
        )
    audit = records.audit(incident_id)
    moments = [incident.reported_at, *(m.reached_at for m in incident.milestones)]
    moments += [float(r["at"]) for r in audit]
    start, end = incident.reported_at - margin_s, min(now, max(moments) + margin_s)
    officers = incident_officers(incident)
    tracks = []
    for dev in sorted(store.tracks.device_keys()):
        officer = dev.split("/", 1)[0]
        if officer not in officers:
            continue
        device = DeviceKey(dev)
        chain_start, records = excerpt(full_track(store, archive, device), device, start, end)
        if records:
            tracks.append(DeviceTrack(device, officer, chain_start, records))
    clips, file_tracks, crosschecks = [], {}, {}
    for officer in officers:
        for clip_id in store.clips.clip_ids_for_officer(officer, start, end):
            clip = store.clips.clip(clip_id)
            if clip is None:
                continue
            clips.append({**clip, "officer": officer})
            from_file = store.clips.file_track(clip_id)
            if from_file is not None:
                file_tracks[clip_id] = from_file
                fixes = [
                    (r.fix["fix_at"], r.fix["lon"], r.fix["lat"])
                    for t in tracks if t.officer == officer for r in t.records
                ]  # fmt: skip
                points = [
                    TelemetryPoint(0.0, lat, lon, alt, at)
                    for at, lon, lat, alt in from_file["points"]
                ]
                crosschecks[clip_id] = crosscheck(points, fixes)
    photo_records, photo_files = incident_photos(store, photos, incident_id)
    return PackageContent(
        incident=msgspec.to_builtins(incident),
        audit=audit,
        tracks=tracks,
        clips=clips,
        window=(start, end),
        zone=zone,
        crosschecks=crosschecks,
        file_tracks=file_tracks,
        photos=photo_records,
        photo_files=photo_files,
    )


def incident_photos(
    store: Store, photos: PhotoFolder, incident_id: str
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The records of the incident's photos (with the report they came with), and the bytes
    of each by its sha256."""
    report = store.citizen.report(incident_id)
    if report is None:
        return [], {}
    records, files = [], {}
    for photo in report["photos"]:
        data = photos.read(photo["sha256"])
        if data is None:
            records.append({**photo, "missing": f"no file {photos.path(photo['sha256'])}"})
            continue
        files[photo["sha256"]] = data
        records.append(photo)
    about = {k: v for k, v in report.items() if k != "photos"}
    return [{**r, "report": about} for r in records], files
