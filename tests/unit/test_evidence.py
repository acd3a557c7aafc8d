"""Evidence packages and sealed segments: an untouched one verifies; any changed byte, or any
record deleted, reordered or substituted, fails verification and is named."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import geopandas
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.telemetry.points import TelemetryPoint
from dispatch.core.track import DeviceKey, Fix, genesis, link
from dispatch.evidence.build import build_package
from dispatch.evidence.crosscheck import crosscheck
from dispatch.evidence.formats import DeviceTrack, PackageContent
from dispatch.evidence.records import ChainRecord, frame, join_segments, records_from_frame
from dispatch.evidence.signing import Signer, load_or_create
from dispatch.evidence.verify import verify_package

T0 = 1_795_000_000
DEVICE = DeviceKey("officer005/bodycam005")


def chain(device: DeviceKey, count: int, start: str | None = None) -> list[ChainRecord]:
    head, records = start or genesis(device), []
    for n in range(count):
        canonical = Fix(
            device, 119.65 + n * 1e-4, 29.08 + n * 5e-5, T0 + 5 * n, T0 + 5 * n + 0.3
        ).canonical()
        raw = f"{n:064x}"
        head = link(head, canonical, raw)
        records.append(ChainRecord(f"{T0 * 1000 + n}-0", canonical, raw, head))
    return records


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> Signer:
    return load_or_create(tmp_path_factory.mktemp("keys") / "evidence.pem")


def content() -> PackageContent:
    incident = {
        "id": "INC-20261122-ABC123", "category": "street_vending", "priority": 3, "source": "12345",
        "title": "占道经营", "location": [119.6512, 29.0812], "reported_at": T0 + 20, "phase": "closed",
        "milestones": [{"milestone": "respond", "due_at": T0 + 80, "reached_at": T0 + 40, "late_by_s": 0.0, "by": "d1", "via": "dispatcher"}],
    }  # fmt: skip
    return PackageContent(
        incident=incident,
        audit=[{"at": f"{T0 + 20}", "kind": "reported", "detail": "{}"}],
        tracks=[DeviceTrack(DEVICE, "officer005", genesis(DEVICE), chain(DEVICE, 40))],
        clips=[
            {
                "clip_id": "CLIP-1",
                "officer": "officer005",
                "start": T0 + 30,
                "end": T0 + 90,
                "file_name": "a.mp4",
            }
        ],
        window=(T0 - 300, T0 + 500),
    )


@pytest.fixture(scope="module")
def package(signer) -> bytes:
    return build_package(content(), signer, T0 + 600, with_map=False)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def repack(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_untouched_package_verifies_and_the_key_can_be_pinned(package, signer) -> None:
    verdict = verify_package(package, trusted_key=signer.public_hex)
    assert verdict.ok, verdict.problems
    assert "officer005/bodycam005 (officer005): 40 fixes" in verdict.summary[1]
    names = set(members(package))
    assert {"tracks/officer005_bodycam005.geojson", "tracks/officer005_bodycam005.parquet",
            "tracks/officer005_bodycam005.gpx", "chains/officer005_bodycam005.jsonl",
            "report.html", "clips.json", "timeline.json", "incident.json"} <= names  # fmt: skip
    other = Signer(Ed25519PrivateKey.generate())
    assert not verify_package(package, trusted_key=other.public_hex).ok


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_byte_of_any_member_is_named(package, data) -> None:
    files = members(package)
    name = data.draw(st.sampled_from(sorted(files)))
    body = bytearray(files[name])
    at = data.draw(st.integers(0, len(body) - 1))
    body[at] ^= data.draw(st.integers(1, 255))
    verdict = verify_package(repack({**files, name: bytes(body)}))
    assert not verdict.ok
    assert any(p.startswith(name) or p.startswith("manifest") for p in verdict.problems), (
        verdict.problems
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_byte_of_the_zip_itself(package, data) -> None:
    body = bytearray(package)
    at = data.draw(st.integers(0, len(body) - 1))
    body[at] ^= data.draw(st.integers(1, 255))
    assert not verify_package(bytes(body)).ok


def test_a_member_naming_an_unknown_compression_method_is_a_problem_not_a_crash(package) -> None:
    body = bytearray(package)
    central = body.index(b"PK\x01\x02")  # the first member's central directory entry
    body[central + 10 : central + 12] = (1).to_bytes(2, "little")  # "shrunk": never supported
    verdict = verify_package(bytes(body))
    assert not verdict.ok
    assert any("cannot be read from the zip" in p for p in verdict.problems)


def rewrite_lines(text: bytes, how: str, index: int, donor: bytes) -> bytes:
    lines = text.splitlines(keepends=True)
    if how == "delete":
        del lines[index]
    elif how == "swap":
        lines[index], lines[index + 1] = lines[index + 1], lines[index]
    else:
        lines[index] = donor
    return b"".join(lines)


@pytest.mark.parametrize("how", ["delete", "swap", "substitute"])
@pytest.mark.parametrize("index", [0, 17, 38])
def test_records_deleted_reordered_or_substituted_in_a_chain_are_named(package, how, index) -> None:
    files = members(package)
    name = "chains/officer005_bodycam005.jsonl"
    donor = (
        json.dumps(chain(DeviceKey("officer006/bodycam006"), 40)[index].to_json()).encode() + b"\n"
    )
    files[name] = rewrite_lines(files[name], how, index, donor)
    problems = verify_package(repack(files)).problems
    assert f"{name}: sha256 differs from the manifest (the file was changed)" in problems
    assert any(
        p.startswith(f"{name}: record") or p.startswith(f"{name}: the chain ends") for p in problems
    ), problems


@pytest.mark.parametrize("how", ["delete", "swap", "substitute"])
def test_a_changed_track_point_is_named_even_with_a_matching_digest(package, how) -> None:
    """Someone rewrites a GeoJSON track and fixes up the manifest digest: the signature and
    the comparison with the chain both catch it, naming the point."""
    files = members(package)
    name = "tracks/officer005_bodycam005.geojson"
    track = json.loads(files[name])
    features = track["features"]
    if how == "delete":
        del features[5]
    elif how == "swap":
        features[5], features[6] = features[6], features[5]
    else:
        features[5]["geometry"]["coordinates"][0] += 0.001  # one coordinate, ~100 m
    files[name] = json.dumps(track).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    problems = verify_package(repack(files)).problems
    assert "manifest.json: the signature does not match (changed after signing)" in problems
    assert any(p.startswith(f"{name}: point 5") for p in problems), problems


def test_extra_and_missing_files_are_named(package) -> None:
    files = members(package)
    del files["clips.json"]
    files["note.txt"] = b"added later"
    problems = verify_package(repack(files)).problems
    assert "clips.json: listed in the manifest, missing from the package" in problems
    assert "note.txt: in the package but not in the manifest" in problems


def test_parquet_column_edit_without_touching_canonical_is_named(tmp_path: Path) -> None:
    records = chain(DEVICE, 10)
    table = frame(records)
    table.loc[3, "lat"] = 29.5
    _, problems = records_from_frame(table, "seg.parquet")
    assert problems == [
        "seg.parquet: row 3 (stream id 1795000000003-0) has a time or position that differs from its chained record"
    ]
    path = tmp_path / "t.parquet"
    frame(records).to_parquet(path)
    assert len(geopandas.read_parquet(path)) == 10


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_overlapping_segments_join_to_the_chain_with_each_entry_once(data) -> None:
    records = chain(DEVICE, 40)
    spans, reach = [], 0
    for _ in range(data.draw(st.integers(1, 6))):
        start = data.draw(st.integers(0, min(reach, 39)))
        end = data.draw(st.integers(start + 1, 40))
        spans.append((start, end))
        reach = max(reach, end)
    # In the archive's order; the spans leave no gap, so each starts within those before it.
    segments = [(f"{a}_{b}", records[a:b]) for a, b in sorted(spans)]
    assert join_segments(segments) == (records[:reach], [])


def test_a_copy_that_differs_or_is_not_among_the_entries_before_is_named() -> None:
    records, other = chain(DEVICE, 30), chain(DeviceKey("officer006/bodycam006"), 30)
    changed = [*records[:5], dataclasses.replace(other[5], stream_id=records[5].stream_id),
               *records[6:20]]  # fmt: skip
    inserted = [*records[:8], dataclasses.replace(other[8], stream_id=f"{T0 * 1000 + 7}-1"),
                *records[8:25]]  # fmt: skip
    joined, problems = join_segments([("a", records[:20]), ("b", changed), ("c", inserted)])
    assert joined == records[:25]
    assert problems == [
        f"b: record 5 (stream id {records[5].stream_id}) differs from its copy in a",
        f"c: record 8 (stream id {T0 * 1000 + 7}-1) is not among the entries the segments "
        "before it hold",
    ]


def test_crosscheck_compares_file_points_with_the_interpolated_track() -> None:
    fixes = [(T0 + 10 * n, 119.65 + n * 1e-3, 29.08) for n in range(10)]  # ~97 m per 10 s
    on_track = [TelemetryPoint(0, 29.08, 119.65 + k * 5e-4, at=T0 + 5 * k) for k in range(19)]
    beside = [
        TelemetryPoint(0, 29.08 + 20 / 111_320, 119.65 + k * 5e-4, at=T0 + 5 * k) for k in range(19)
    ]
    outside = [TelemetryPoint(0, 29.08, 119.65, at=T0 - 100), TelemetryPoint(0, 29.08, 119.65)]
    assert crosscheck(on_track + outside, fixes) == {
        "file_points": 21,
        "compared": 19,
        "median_m": 0.0,
        "p95_m": 0.0,
        "max_m": 0.0,
    }
    stats = crosscheck(beside, fixes)
    assert stats["compared"] == 19 and stats["median_m"] == pytest.approx(20, abs=0.1)
    gappy = [fixes[0], fixes[-1]]  # 90 s apart: nothing to interpolate between
    assert crosscheck(on_track, gappy)["compared"] == 2  # only the two exact ends
