"""Sealing each device's track into signed GeoParquet segments, and reading it back whole.

A segment holds a run of the device's chain in storage order; its manifest names the chain
hash it starts from and the one it ends on, the file's sha256 and the fix time range, and is
signed with the center's key. Segments follow each other: each starts where the previous one
ended, the first at the device's genesis. Redis drops the sealed entries only after the file
and manifest are on disk (written, synced, renamed). A crash in between leaves a segment
reaching past where Redis says the archive ends: the next seal finishes it, dropping exactly
the entries it covers, and seals only what follows. Archivers before that one wrote such
entries into a second segment instead; reads take each entry once from overlapping segments,
and the verifier compares the copies.

    archive/<user>/<device>/<first id>_<last id>.parquet
    archive/<user>/<device>/<first id>_<last id>.manifest.json   {"manifest": …, "signature": …}

with `user` and `device` named as `dispatch.evidence.layout` says: never outside `archive/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas

from dispatch.core.feed import stream_order
from dispatch.core.track import DeviceKey, genesis
from dispatch.evidence.layout import device_folder, legacy_folder
from dispatch.evidence.records import (
    ChainRecord,
    check_chain,
    frame,
    join_segments,
    records_from_frame,
)
from dispatch.evidence.signing import Signer, canonical_json, signature_valid
from dispatch.store import UNAVAILABLE, Store

MANIFEST = ".manifest.json"
_MANIFEST_FIELDS = (
    "device", "file", "sha256", "count", "chain_start", "chain_end", "first_id", "last_id",
    "public_key",
)  # fmt: skip
KIND = "yiwang-segment/1"

log = logging.getLogger(__name__)


# The ingest recognises a copy of a stored fix by its device's index of stored fixes. Once a
# segment is sealed that index keeps only the fixes within this long (of fix time) before the
# segment's newest: the broker and a device resend within seconds to minutes, and without the
# trim the index holds six hours of every device (43 million entries for 2,000 devices at
# 1 Hz). A copy arriving later, of a fix archived already, is stored again as backfill.
SEEN_AFTER_SEAL_S = 600


@dataclass(frozen=True)
class SealPolicy:
    """Seal a device's live track once it holds this many fixes or its oldest is this old."""

    max_fixes: int = 10_000
    max_age_s: float = 3600.0


class ArchiveError(RuntimeError):
    """The archive cannot take or give a track; the message names the device and the file."""


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def segment_bytes(records: list[ChainRecord]) -> bytes:
    buffer = io.BytesIO()
    frame(records).to_parquet(buffer, index=False)
    return buffer.getvalue()


class Archive:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, dev: DeviceKey) -> Path:
        """Where the device's segments are written (`dispatch.evidence.layout`)."""
        return device_folder(self.root, dev)

    def manifests(self, dev: DeviceKey) -> list[tuple[Path, dict[str, Any]]]:
        """The device's segment manifests in chain order (by first stream id, then last), from
        its folder and from the folder an earlier layout kept it in, if that is another."""
        found = {}
        for folder in (self.folder(dev), legacy_folder(self.root, dev)):
            for path in folder.glob(f"*{MANIFEST}") if folder else ():
                # The same segment in both folders is one segment: the newer folder's copy.
                found.setdefault(path.name, (path, _manifest(path)))
        return sorted(found.values(), key=lambda item: _span(item[1]))

    def seal(
        self, store: Store, signer: Signer, dev: DeviceKey, records: list[ChainRecord]
    ) -> list[Path]:
        """Write one segment of the `records` past the archive's end, sign it, then let Redis
        drop them: the manifests of the segments sealed.

        A segment whose seal died before Redis dropped its entries is finished first (see
        `_finish_interrupted_seal`), and is among those returned; the records it covers are
        not written again."""
        finished = self._finish_interrupted_seal(store, dev)
        sealed = [] if finished is None else [finished]
        end = store.tracks.archive_end(dev)
        if end is not None:
            records = [r for r in records if stream_order(r.stream_id) > stream_order(end[1])]
        if not records:
            return sealed
        path, head = self._write_segment(signer, dev, records, end[0] if end else genesis(dev))
        store.tracks.mark_sealed(dev, head, records[-1].stream_id)
        newest = max(record.fix["fix_at"] for record in records)
        store.tracks.forget_seen_before(dev, newest - SEEN_AFTER_SEAL_S)
        return [*sealed, path]

    def _write_segment(
        self, signer: Signer, dev: DeviceKey, records: list[ChainRecord], start: str
    ) -> tuple[Path, str]:
        """Write and sign one segment of `records`, which follow chain hash `start`: (its
        manifest, the chain hash it ends on). Redis is left as it is; `seal` trims it."""
        head, problems = check_chain(records, start, f"live track of {dev}", dev)
        if problems:
            raise ArchiveError(f"refusing to seal a broken chain: {problems[0]}")
        data = segment_bytes(records)
        fixes = [r.fix["fix_at"] for r in records]
        name = f"{records[0].stream_id}_{records[-1].stream_id}"
        folder = self.folder(dev)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / f"{name}.parquet", data)
        manifest = {
            "kind": KIND,
            "device": dev,
            "file": f"{name}.parquet",
            "sha256": hashlib.sha256(data).hexdigest(),
            "count": len(records),
            "chain_start": start,
            "chain_end": head,
            "first_id": records[0].stream_id,
            "last_id": records[-1].stream_id,
            "fix_from": min(fixes),
            "fix_to": max(fixes),
            "sealed_at": round(time.time(), 3),
            "key_id": signer.key_id,
            "public_key": signer.public_hex,
        }
        signed = {"manifest": manifest, "signature": signer.sign(canonical_json(manifest))}
        _write_atomically(folder / f"{name}{MANIFEST}", json.dumps(signed, indent=1).encode())
        return folder / f"{name}{MANIFEST}", head

    def _finish_interrupted_seal(self, store: Store, dev: DeviceKey) -> Path | None:
        """Drop from Redis the entries of a segment that reaches past where Redis says the
        archive ends (its seal died between writing and trimming); its manifest, or None when
        no segment does.

        The entries go only when the segment verifies and ends on the chain hash the live
        track holds at its last entry, so it is a copy of them: an ArchiveError otherwise."""
        if not (manifests := self.manifests(dev)):
            return None
        path, manifest = _furthest(manifests)
        end = store.tracks.archive_end(dev)
        if end is not None and stream_order(manifest["last_id"]) <= stream_order(end[1]):
            return None
        where = f"{dev}: {path.name}, left by an interrupted seal,"
        if problems := verify_segment(path):
            raise ArchiveError(f"{where} does not verify: {problems[0]}")
        if store.tracks.chain_hash_at(dev, manifest["last_id"]) != manifest["chain_end"]:
            raise ArchiveError(
                f"{where} ends on stream id {manifest['last_id']}, where the live track holds "
                "another chain hash or none"
            )
        store.tracks.mark_sealed(dev, manifest["chain_end"], manifest["last_id"])
        log.warning("archive: finished an interrupted seal device=%r segment=%s", dev, path.name)
        return path

    def read(self, manifest_path: Path) -> list[ChainRecord]:
        manifest = _manifest(manifest_path)
        if not _beside(manifest["file"]):
            raise ArchiveError(f"{manifest_path}: names {manifest['file']!r}, not a file beside it")
        table = geopandas.read_parquet(manifest_path.parent / manifest["file"])
        records, _ = records_from_frame(table, manifest["file"])
        return records


@dataclass(frozen=True)
class SealPass:
    """What one pass of the archiver did: the segments it wrote, and each device it could not
    seal with the reason (the pass went on with the others)."""

    sealed: list[Path]
    failed: dict[DeviceKey, str]


def seal_due(
    store: Store,
    archive: Archive,
    signer: Signer,
    now: float,
    policy: SealPolicy,
    *,
    force: bool = False,
) -> SealPass:
    """Seal every device whose live track is due (all of them with `force`)."""
    sealed: list[Path] = []
    failed: dict[DeviceKey, str] = {}
    for dev in store.tracks.device_keys():
        device = DeviceKey(dev)
        try:
            sealed += _seal_device(store, archive, signer, device, now, policy, force)
        except UNAVAILABLE:
            raise  # Redis itself is away: no other device would fare better
        # One device's track or folder (a broken chain, a full disk, a name the file system
        # refuses, a record pyarrow cannot write) must not keep the others from being sealed.
        except Exception as exc:
            failed[device] = f"{type(exc).__name__}: {exc}"
            log.error("archive: cannot seal device=%r error=%s", dev, failed[device])
    return SealPass(sealed, failed)


def _seal_device(
    store: Store,
    archive: Archive,
    signer: Signer,
    device: DeviceKey,
    now: float,
    policy: SealPolicy,
    force: bool,
) -> list[Path]:
    sealed = []
    while True:
        records = _live(store, device, policy.max_fixes)
        if not records:
            return sealed
        oldest = int(records[0].stream_id.split("-")[0]) / 1000
        if not force and len(records) < policy.max_fixes and now - oldest < policy.max_age_s:
            return sealed
        sealed += archive.seal(store, signer, device, records)
        if len(records) < policy.max_fixes:
            return sealed


def _live(store: Store, dev: DeviceKey, limit: int) -> list[ChainRecord]:
    """The live track past the archive's end, as Redis records it."""
    end = store.tracks.archive_end(dev)
    records = []
    for stream_id, chain_link, backfill in store.tracks.chain_links(dev, end[1] if end else None):
        records.append(
            ChainRecord(
                stream_id,
                chain_link.canonical,
                chain_link.raw_sha256,
                chain_link.chain_hash,
                backfill,
            )
        )
        if len(records) >= limit:
            break
    return records


def _unsealed(
    live: list[ChainRecord], manifests: list[tuple[Path, dict[str, Any]]]
) -> list[ChainRecord]:
    """The live records past the segment on disk that reaches furthest. The live track is
    read before the manifests: a seal in between leaves on disk what it trims, and this drops
    it from `live` (as it does entries a crash left in Redis after their segment was written)."""
    if not manifests:
        return live
    sealed_to = stream_order(_furthest(manifests)[1]["last_id"])
    return [r for r in live if stream_order(r.stream_id) > sealed_to]


def _span(manifest: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    return stream_order(manifest["first_id"]), stream_order(manifest["last_id"])


def _furthest(manifests: list[tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]]:
    """The segment whose last entry lies furthest along the chain."""
    return max(manifests, key=lambda item: stream_order(item[1]["last_id"]))


def _overlapping_runs(
    manifests: list[tuple[Path, dict[str, Any]]],
) -> list[list[tuple[Path, dict[str, Any]]]]:
    """Manifests in chain order, grouped into runs: a segment starting at or before the last
    entry of one before it joins that one's run (an interrupted seal written again)."""
    runs: list[list[tuple[Path, dict[str, Any]]]] = []
    reach = (-1, -1)
    for item in manifests:
        first, last = _span(item[1])
        if runs and first <= reach:
            runs[-1].append(item)
        else:
            runs.append([item])
        reach = max(reach, last)
    return runs


def _beside(name: object) -> bool:
    """A segment file named in a manifest lies in the manifest's own folder."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))["manifest"]  # type: ignore[no-any-return]


def full_track(
    store: Store,
    archive: Archive,
    dev: DeviceKey,
    since: float | None = None,
    until: float | None = None,
) -> list[ChainRecord]:
    """The device's chain: the sealed segments, then the live stream. With `since`/`until`,
    segments whose fix times all lie outside the window are not read (callers still filter
    the records: a segment can straddle the window's edge). Segments that overlap give each
    entry once."""
    live = _live(store, dev, 10**9)
    manifests = archive.manifests(dev)
    segments = [
        (manifest["file"], archive.read(path))
        for path, manifest in manifests
        if not (since is not None and manifest["fix_to"] < since)
        and not (until is not None and manifest["fix_from"] > until)
    ]
    # Copies of an entry that differ are the verifier's to report; a read takes the first.
    records, _differences = join_segments(segments)
    return records + _unsealed(live, manifests)


def verify_segment(manifest_path: Path, trusted_key: str | None = None) -> list[str]:
    """Problems with one sealed segment, each naming the file and the record; [] if sound."""
    return _checked_segment(manifest_path, trusted_key)[1]


def _checked_segment(
    manifest_path: Path, trusted_key: str | None
) -> tuple[list[ChainRecord], list[str]]:
    """The records of one sealed segment, as far as they can be read, and its problems."""
    where = manifest_path.name
    try:
        signed = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest = signed["manifest"]
        missing = [k for k in _MANIFEST_FIELDS if k not in manifest]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [], [f"{where}: unreadable manifest ({exc})"]
    if missing:
        return [], [f"{where}: the manifest lacks {', '.join(missing)}"]
    if not _beside(manifest["file"]):
        return [], [f"{where}: the manifest names {manifest['file']!r}, not a file beside it"]
    problems = []
    if not signature_valid(
        manifest["public_key"], canonical_json(manifest), signed.get("signature", "")
    ):
        problems.append(f"{where}: the signature does not match the manifest")
    if trusted_key is not None and manifest["public_key"] != trusted_key:
        problems.append(f"{where}: signed by key {manifest['key_id']}, not the trusted key")
    segment = manifest_path.parent / manifest["file"]
    try:
        data = segment.read_bytes()
    except OSError as exc:
        return [], [*problems, f"{manifest['file']}: missing ({exc})"]
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        problems.append(f"{manifest['file']}: sha256 differs from the manifest")
    try:
        table = geopandas.read_parquet(io.BytesIO(data))
    # Decoders of untrusted bytes (pyarrow, pyproj, shapely) raise errors of their own.
    except Exception as exc:
        return [], [*problems, f"{manifest['file']}: not a readable GeoParquet file ({exc})"]
    try:
        records, row_problems = records_from_frame(table, manifest["file"])
    # Decoders of untrusted bytes (pyarrow, pyproj, shapely) raise errors of their own.
    except Exception as exc:
        return [], [*problems, f"{manifest['file']}: rows that cannot be read ({exc})"]
    problems += row_problems
    head, chain_problems = check_chain(
        records, manifest["chain_start"], manifest["file"], DeviceKey(manifest["device"])
    )
    problems += chain_problems
    if not chain_problems and head != manifest["chain_end"]:
        problems.append(
            f"{manifest['file']}: the chain ends on {head[:16]}…, the manifest says {manifest['chain_end'][:16]}…"
        )
    if len(records) != manifest["count"]:
        problems.append(
            f"{manifest['file']}: {len(records)} records, the manifest says {manifest['count']}"
        )
    # The archive orders segments, and finds where they overlap, by these two ids.
    ends = (manifest["first_id"], manifest["last_id"])
    if records and (records[0].stream_id, records[-1].stream_id) != ends:
        problems.append(
            f"{manifest['file']}: the records run from stream id {records[0].stream_id} to "
            f"{records[-1].stream_id}, the manifest says {ends[0]} to {ends[1]}"
        )
    return records, problems


def verify_archive(
    store: Store, archive: Archive, dev: DeviceKey, trusted_key: str | None = None
) -> tuple[int, list[str]]:
    """Every segment sound and continuous, and the live stream continuing the last one:
    (the number of entries, problems).

    Segments that overlap (an interrupted seal written again by an earlier archiver) are
    continuous when their copies of each entry are the same: they are counted once and
    compared, and a copy that differs is a problem."""
    problems, expected_start, count = [], genesis(dev), 0
    live = _live(store, dev, 10**9)
    manifests = archive.manifests(dev)
    for run in _overlapping_runs(manifests):
        checked = [(manifest, *_checked_segment(path, trusted_key)) for path, manifest in run]
        for _manifest, _records, segment_problems in checked:
            problems += segment_problems
        path, first = run[0]
        if first["chain_start"] != expected_start:
            problems.append(
                f"{path.name}: starts from {first['chain_start'][:16]}…, the previous segment ended on {expected_start[:16]}…"
            )
        if len(run) == 1:
            count += first["count"]
        else:
            joined, differences = join_segments([(m["file"], rs) for m, rs, _ in checked])
            count += len(joined)
            problems += differences
        expected_start = _furthest(run)[1]["chain_end"]
    live = _unsealed(live, manifests)
    _head, live_problems = check_chain(live, expected_start, f"live track of {dev}", dev)
    return count + len(live), problems + live_problems
