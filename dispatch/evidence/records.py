"""Chain records and the checks every evidence format shares.

A record is one stored fix as the chain committed to it: the canonical bytes, the digest of
the raw payload, the chain hash, and where it sat in storage. `check_chain` recomputes the
links from a known start and names the first record that does not follow; `join_segments`
takes segments that repeat each other's entries back to one copy of each; `track_rows`
turns records into rows for GeoJSON, GeoParquet and GPX, so each of those can be compared
with the chain value for value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import geopandas
import shapely

from dispatch.core.feed import stream_order
from dispatch.core.track import DeviceKey, link


@dataclass(frozen=True, slots=True)
class ChainRecord:
    stream_id: str
    canonical: bytes
    raw_sha256: str
    chain_hash: str
    backfill: bool = False

    @property
    def fix(self) -> dict[str, Any]:
        return json.loads(self.canonical)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "canonical": self.canonical.decode(),
            "raw_sha256": self.raw_sha256,
            "chain_hash": self.chain_hash,
            "backfill": self.backfill,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChainRecord:
        return cls(
            str(data["stream_id"]),
            str(data["canonical"]).encode(),
            str(data["raw_sha256"]),
            str(data["chain_hash"]),
            bool(data.get("backfill", False)),
        )


def check_chain(
    records: list[ChainRecord], start: str, where: str, device: DeviceKey | None = None
) -> tuple[str, list[str]]:
    """Recompute the chain from `start`: (the head, problems naming each bad record)."""
    problems, head = [], start
    for index, record in enumerate(records):
        try:
            expected = link(head, record.canonical, record.raw_sha256)
            owner = record.fix.get("device")
        except (ValueError, TypeError, AttributeError):
            problems.append(f"{where}: record {index} (stream id {record.stream_id}) is malformed")
            break
        if expected != record.chain_hash:
            problems.append(
                f"{where}: record {index} (stream id {record.stream_id}) does not follow "
                "the chain: it was changed, removed, reordered or inserted"
            )
            break
        if device is not None and owner != device:
            problems.append(f"{where}: record {index} belongs to {owner}")
            break
        head = expected
    return head, problems


def join_segments(
    segments: list[tuple[str, list[ChainRecord]]],
) -> tuple[list[ChainRecord], list[str]]:
    """The records of (name, records) segments, given in the order of their first stream ids,
    as one run holding each stream entry once: (records, problems).

    A segment may repeat entries of those before it (an interrupted seal that an archiver
    wrote again instead of finishing it). A repeated entry is taken as first read; the first
    record of each segment whose copy differs from it, or that lies among entries already
    read without being one of them, is a problem."""
    joined: list[ChainRecord] = []
    first_read: dict[str, tuple[str, ChainRecord]] = {}
    problems = []
    for where, records in segments:
        reported = False
        for index, record in enumerate(records):
            if not joined or stream_order(record.stream_id) > stream_order(joined[-1].stream_id):
                joined.append(record)
                first_read[record.stream_id] = (where, record)
                continue
            earlier = first_read.get(record.stream_id)
            if reported or (earlier is not None and earlier[1] == record):
                continue
            reported = True
            at = f"{where}: record {index} (stream id {record.stream_id})"
            problems.append(
                f"{at} is not among the entries the segments before it hold"
                if earlier is None
                else f"{at} differs from its copy in {earlier[0]}"
            )
    return joined, problems


def frame(records: list[ChainRecord]) -> geopandas.GeoDataFrame:
    """Records as a GeoParquet-ready frame: one row per fix, WGS-84 points."""
    fixes = [r.fix for r in records]
    return geopandas.GeoDataFrame(
        {
            "stream_id": [r.stream_id for r in records],
            "fix_at": [int(f["fix_at"]) for f in fixes],
            "lon": [float(f["lon"]) for f in fixes],
            "lat": [float(f["lat"]) for f in fixes],
            "canonical": [r.canonical.decode() for r in records],
            "raw_sha256": [r.raw_sha256 for r in records],
            "chain_hash": [r.chain_hash for r in records],
            "backfill": [r.backfill for r in records],
        },
        geometry=shapely.points([[f["lon"], f["lat"]] for f in fixes]) if fixes else [],
        crs="EPSG:4326",
    )


def records_from_frame(
    table: geopandas.GeoDataFrame, where: str
) -> tuple[list[ChainRecord], list[str]]:
    """Records back from a frame, with a problem for every row whose columns or point
    disagree with its canonical bytes (a coordinate edited in one place only)."""
    records, problems = [], []
    for index, row in enumerate(table.itertuples(index=False)):
        record = ChainRecord(
            str(row.stream_id), str(row.canonical).encode(), str(row.raw_sha256),
            str(row.chain_hash), bool(row.backfill),
        )  # fmt: skip
        fix = record.fix
        point = row.geometry
        if (
            int(row.fix_at) != int(fix["fix_at"])
            or float(row.lon) != float(fix["lon"])
            or float(row.lat) != float(fix["lat"])
            or point is None
            or (point.x, point.y) != (float(fix["lon"]), float(fix["lat"]))
        ):
            problems.append(f"{where}: row {index} (stream id {record.stream_id}) has a time or "
                            "position that differs from its chained record")  # fmt: skip
        records.append(record)
    return records, problems
