"""Sealing is exact: on a Redis whose track streams span many stream nodes, every sealed entry
leaves the live track, the chain verifies end to end, a full track holds each fix once, and the
archiver goes on past a device it cannot seal. A seal that died between writing its segment and
trimming Redis is finished by the next one, never written again; archives in which earlier
archivers did write it again read each fix once and verify clean unless a copy differs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from devices.batch import BatchWriter, Received
from dispatch.api.app import create_app
from dispatch.cli import main as yiwang
from dispatch.core.track import DeviceKey, Fix, genesis, link
from dispatch.evidence.archive import (
    SEEN_AFTER_SEAL_S,
    Archive,
    ArchiveError,
    SealPass,
    SealPolicy,
    full_track,
    seal_due,
    verify_archive,
    verify_segment,
)
from dispatch.evidence.archiver import Archiver
from dispatch.evidence.records import ChainRecord
from dispatch.evidence.signing import Signer, canonical_json
from dispatch.settings import Settings
from dispatch.store import Store
from harness.daemons import ManagedRedis
from tests.conftest import ingest_config
from tests.integration.helpers import bearer, wait_until

# Stream nodes of 7 entries: segments of any size end inside a node, where an approximate
# trim leaves the node, sealed entries and all, in the live track.
_NODE_ENTRIES = 7
_T0 = 1_780_000_000


@pytest.fixture(scope="module")
def small_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedRedis]:
    service = ManagedRedis(tmp_path_factory.mktemp("redis-small-nodes"))
    service.start()
    Store.from_url(service.url, "setup").redis.config_set("stream-node-max-entries", _NODE_ENTRIES)
    yield service
    service.stop()


@pytest.fixture
def nodes_store(small_nodes: ManagedRedis, prefix: str) -> Store:
    store = Store.from_url(small_nodes.url, prefix)
    store.load_functions()
    return store


def store_walk(store: Store, user: str, device: str, count: int, first: int = 0) -> None:
    """`count` fixes of a walker, one a second, stored as the ingest stores them."""
    writer = BatchWriter(
        store.ingest, ingest_config("owntracks"), clock=lambda: _T0 + first + count
    )
    topic = f"owntracks/{user}/{device}"
    for start in range(first, first + count, 500):
        batch = []
        for n in range(start, min(start + 500, first + count)):
            fix = {"_type": "location", "lon": 119.65, "lat": round(29.08 + n * 1e-5, 7),
                   "tst": _T0 + n, "acc": 5}  # fmt: skip
            batch.append(Received(n + 1, 1, topic, json.dumps(fix).encode(), _T0 + n))
        writer.write(batch)


def fix_times(records) -> list[int]:
    return [r.fix["fix_at"] for r in records]


@pytest.mark.parametrize("count", [100, 1_000, 10_000])
def test_a_sealed_track_verifies_and_reads_each_fix_once(
    nodes_store: Store, small_nodes, prefix, tmp_path, count, monkeypatch, capsys
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-7")
    store_walk(store, "wang5", "BC-7", count)
    settings = Settings(data_dir=tmp_path)
    archive, signer = settings.archive(), settings.signer()
    # Segments of a third of the track, none of them ending on a node boundary.
    policy = SealPolicy(max_fixes=count // 3 + 1)
    done = seal_due(store, archive, signer, _T0 + count, policy, force=True)
    assert not done.failed
    assert len(done.sealed) == 3
    assert store.redis.xlen(store.keys.track(dev)) == 0, "every sealed entry left the live track"

    store_walk(store, "wang5", "BC-7", 5, first=count)
    assert store.redis.xlen(store.keys.track(dev)) == 5
    links, problems = verify_archive(store, archive, dev, signer.public_hex)
    assert problems == []
    assert links == count + 5
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(count + 5)]

    for name, value in (("redis_url", small_nodes.url), ("key_prefix", prefix),
                        ("data_dir", str(tmp_path))):  # fmt: skip
        monkeypatch.setenv(f"YIWANG_{name.upper()}", value)
    assert yiwang(["devices", "verify", dev]) == 0
    assert f"OK {dev}: {count + 5} links" in capsys.readouterr().out


def test_sealing_trims_the_index_of_stored_fixes_to_ten_minutes_before_the_sealed_end(
    nodes_store: Store, tmp_path
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-9")
    store_walk(store, "wang5", "BC-9", 1_500)  # 25 minutes, one fix a second
    settings = Settings(data_dir=tmp_path)
    archive, signer = settings.archive(), settings.signer()
    done = seal_due(store, archive, signer, _T0 + 1_500, SealPolicy(), force=True)
    assert len(done.sealed) == 1
    kept = store.redis.zrangebyscore(store.keys.seen(dev), "-inf", "+inf", withscores=True)
    newest = _T0 + 1_499
    assert [int(score) for _, score in kept] == list(range(newest - SEEN_AFTER_SEAL_S, newest + 1))

    # A resent copy inside the ten minutes is still caught; one of a fix long archived is not.
    writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=lambda: _T0 + 1_501)
    topic = "owntracks/wang5/BC-9"
    for n in (1_400, 10):
        fix = {"_type": "location", "lon": 119.65, "lat": round(29.08 + n * 1e-5, 7),
               "tst": _T0 + n, "acc": 5}  # fmt: skip
        writer.write([Received(n, 1, topic, json.dumps(fix).encode(), _T0 + 1_501)])
    assert store.ingest.stats().get("rejected:duplicate") == 1
    assert store.redis.xlen(store.keys.track(dev)) == 1


def _approximate_mark_sealed(store: Store, dev: DeviceKey, head: str, last_id: str) -> None:
    """What sealing did before it trimmed exactly: whole stream nodes only."""
    ms, _, seq = last_id.partition("-")
    store.redis.hset(store.keys.archive(dev), mapping={"head": head, "last_id": last_id})
    store.redis.xtrim(store.keys.track(dev), minid=f"{ms}-{int(seq) + 1}", approximate=True)


def test_a_track_trimmed_approximately_before_reads_once_and_seals_on(
    nodes_store: Store, prefix, tmp_path, monkeypatch
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-8")
    store_walk(store, "wang5", "BC-8", 100)
    settings = Settings(data_dir=tmp_path)
    archive, signer = settings.archive(), settings.signer()
    with monkeypatch.context() as patch:
        patch.setattr(store.tracks, "mark_sealed", lambda *a: _approximate_mark_sealed(store, *a))
        archive.seal(store, signer, dev, full_track(store, archive, dev)[:60])
    left = store.redis.xlen(store.keys.track(dev))
    assert 40 < left < 100, "the approximate trim left sealed entries in the live track"

    assert verify_archive(store, archive, dev) == (100, [])
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(100)]
    store_walk(store, "wang5", "BC-8", 10, first=100)
    done = seal_due(store, archive, signer, _T0, SealPolicy(max_fixes=60), force=True)
    assert not done.failed, "the archive continues its own chain"
    assert store.redis.xlen(store.keys.track(dev)) == 0
    assert verify_archive(store, archive, dev) == (110, [])
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(110)]


def test_the_archiver_goes_on_past_a_device_it_cannot_seal(
    nodes_store: Store, prefix, tmp_path
) -> None:
    store = nodes_store
    for device in ("BC-1", "BC-2", "BC-3"):
        store_walk(store, "zhao6", device, 20)
    settings = Settings(data_dir=tmp_path)
    archive = settings.archive()
    # A file where BC-2's folder belongs: its segment cannot be written.
    blocked = archive.folder(DeviceKey("zhao6/BC-2"))
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    archiver = Archiver(store, archive, settings.signer(), SealPolicy(), lambda: _T0, force=True)
    stop = threading.Event()
    thread = threading.Thread(target=archiver.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        wait_until(lambda: archiver.passes >= 3, 10, "three passes")
        assert thread.is_alive()
        assert archiver.failures >= 3, "BC-2 fails, and is counted, on every pass"
        for device in ("BC-1", "BC-3"):
            dev = DeviceKey(f"zhao6/{device}")
            assert store.redis.xlen(store.keys.track(dev)) == 0
            assert verify_archive(store, archive, dev) == (20, [])
        assert store.redis.xlen(store.keys.track(DeviceKey("zhao6/BC-2"))) == 20

        blocked.unlink()
        failures = archiver.failures
        wait_until(lambda: store.redis.xlen(store.keys.track(DeviceKey("zhao6/BC-2"))) == 0, 10)
        assert archiver.failures == failures
        assert verify_archive(store, archive, DeviceKey("zhao6/BC-2")) == (20, [])
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_pass_reports_the_device_it_could_not_seal(
    nodes_store: Store, prefix, tmp_path, caplog
) -> None:
    store = nodes_store
    store_walk(store, "zhao7", "BC-1", 10)
    store_walk(store, "zhao7", "BC-2", 10)
    settings = Settings(data_dir=tmp_path)
    archive = settings.archive()
    Path(archive.folder(DeviceKey("zhao7/BC-1"))).parent.mkdir(parents=True)
    archive.folder(DeviceKey("zhao7/BC-1")).write_text("")
    done = seal_due(store, archive, settings.signer(), _T0, SealPolicy(), force=True)
    assert list(done.failed) == ["zhao7/BC-1"]
    assert "zhao7/BC-1" in caplog.text and "cannot seal" in caplog.text
    assert [p.parent.name for p in done.sealed] == ["BC-2"]


def store_forged_track(store: Store, dev: DeviceKey, count: int, first: int = 0) -> None:
    """Fixes `first` to `first + count` of a chained track stored under any key, as an
    ingest that did not check topic levels stored them."""
    head = genesis(dev)
    for n in range(first + count):
        canonical = Fix(dev, 119.65, 29.08 + n * 1e-5, _T0 + n, _T0 + n).canonical()
        raw = hashlib.sha256(canonical).hexdigest()
        head = link(head, canonical, raw)
        if n >= first:
            store.redis.xadd(store.keys.track(dev), {"f": canonical, "r": raw, "h": head})
    store.redis.zadd(store.keys.seen_at, {dev: _T0 + first + count})


def seal_forged_track(store: Store, dev: DeviceKey, count: int, data_dir: Path, policy: SealPolicy):
    """A forged track of `count` fixes, sealed: (archive, signer, the pass)."""
    store_forged_track(store, dev, count)
    settings = Settings(data_dir=data_dir)
    archive, signer = settings.archive(), settings.signer()
    return archive, signer, seal_due(store, archive, signer, _T0, policy, force=True)


@pytest.mark.parametrize("user", ["..", "../keys", "x" * 300, "a\0b", "li4"])
def test_hostile_keys_are_sealed_inside_the_archive(
    nodes_store: Store, prefix, tmp_path, user
) -> None:
    store = nodes_store
    devs = [DeviceKey(f"{user}/BC-1"), DeviceKey(f"wang5/{user}"), DeviceKey(f"{user}/{user}")]
    for dev in devs:
        store_forged_track(store, dev, 30)
    settings = Settings(data_dir=tmp_path / "var")
    archive, signer = settings.archive(), settings.signer()
    keys_before = sorted((tmp_path / "var" / "keys").iterdir())
    done = seal_due(store, archive, signer, _T0, SealPolicy(max_fixes=12), force=True)
    assert done.failed == {}
    assert len(done.sealed) == 3 * len(devs)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    inside = [p for p in written if p.resolve().is_relative_to(archive.root.resolve())]
    assert sorted(set(written) - set(inside)) == keys_before, "nothing beside the key"
    for dev in devs:
        assert verify_archive(store, archive, dev, signer.public_hex) == (30, [])
        assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(30)]


def test_an_archive_in_the_earlier_raw_folders_still_reads(
    nodes_store: Store, prefix, tmp_path
) -> None:
    store, dev = nodes_store, DeviceKey("li si/BC 1")
    archive, signer, _ = seal_forged_track(store, dev, 40, tmp_path, SealPolicy(max_fixes=25))
    assert archive.folder(dev) == archive.root / "li%20si" / "BC%201"
    # Where an earlier archive kept this device: the raw levels.
    (archive.root / "li si").mkdir()
    archive.folder(dev).rename(archive.root / "li si" / "BC 1")
    assert verify_archive(store, archive, dev) == (40, [])
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(40)]

    # New segments go to the folder named now; the chain runs on across the two.
    store_forged_track(store, dev, 10, first=40)
    (path,) = seal_due(store, archive, signer, _T0, SealPolicy(), force=True).sealed
    assert path.parent == archive.folder(dev)
    assert len(archive.manifests(dev)) == 3
    assert verify_archive(store, archive, dev, signer.public_hex) == (50, [])
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(50)]


def test_replay_and_tracks_answer_for_hostile_keys(
    redis_service, store: Store, prefix, database_url, tmp_path
) -> None:
    hostile = [DeviceKey(f"{'x' * 300}/BC-1"), DeviceKey(f"li4/{'y' * 300}"),
               DeviceKey("../keys"), DeviceKey("li4/a\0b")]  # fmt: skip
    settings = Settings(
        redis_url=redis_service.url, key_prefix=prefix, database_url=database_url,
        data_dir=tmp_path,
    )  # fmt: skip
    for dev in hostile:
        store_forged_track(store, dev, 20)
    seal_due(store, settings.archive(), settings.signer(), _T0, SealPolicy(max_fixes=15))
    with TestClient(create_app(settings, workers=())) as client:
        client.headers.update(bearer(database_url))
        replay = client.get("/api/replay", params={"from": _T0 - 10, "to": _T0 + 60})
        assert replay.status_code == 200
        assert {dev: len(fixes) for dev, fixes in replay.json()["tracks"].items()} == {
            dev: 20 for dev in hostile
        }
        # A `..` level cannot be named in a URL path: clients resolve it away.
        for dev in (d for d in hostile if not d.startswith("../")):
            user, _, device = dev.partition("/")
            track = client.get(
                f"/api/devices/{quote(user, safe='')}/{quote(device, safe='')}/track",
                params={"from": _T0 - 10, "to": _T0 + 60},
            )
            assert track.status_code == 200, (dev, track.text)
            assert track.json()["properties"]["points"] == 20
        assert client.get(f"/api/devices/li4/{'z' * 300}/track").status_code == 200


def test_a_manifest_naming_a_file_outside_its_folder_is_refused(
    nodes_store: Store, prefix, tmp_path
) -> None:
    store, dev = nodes_store, DeviceKey("li4/BC-9")
    archive, signer, done = seal_forged_track(store, dev, 10, tmp_path, SealPolicy())
    (path,) = done.sealed
    manifest = json.loads(path.read_text())["manifest"]
    manifest["file"] = "../../../keys/evidence.pem"
    path.write_text(
        json.dumps({"manifest": manifest, "signature": signer.sign(canonical_json(manifest))})
    )
    assert verify_segment(path, signer.public_hex) == [
        f"{path.name}: the manifest names '../../../keys/evidence.pem', not a file beside it"
    ]
    with pytest.raises(ArchiveError, match="not a file beside it"):
        full_track(store, archive, dev)


class KilledError(Exception):
    """The archiver dying between writing a segment and trimming Redis."""


def _killed_before_the_trim(*_args: object) -> None:
    raise KilledError("the process died before Redis dropped the sealed entries")


def die_sealing(
    store: Store, dev: DeviceKey, count: int, data_dir: Path, policy: SealPolicy
) -> tuple[Archive, Signer, SealPass]:
    """`count` fixes of `dev`, then a pass of the archiver that dies after writing the segment
    and before Redis drops its entries: (archive, signer, the pass)."""
    user, _, device = dev.partition("/")
    store_walk(store, user, device, count)
    settings = Settings(data_dir=data_dir)
    archive, signer = settings.archive(), settings.signer()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.tracks, "mark_sealed", _killed_before_the_trim)
        died = seal_due(store, archive, signer, _T0, policy, force=True)
    return archive, signer, died


def segment_counts(archive: Archive, dev: DeviceKey) -> list[int]:
    return [manifest["count"] for _path, manifest in archive.manifests(dev)]


@pytest.mark.parametrize("max_fixes", [40, 10_000])
def test_a_seal_interrupted_before_its_trim_is_finished_not_written_again(
    nodes_store: Store, prefix, tmp_path, max_fixes
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-10")
    archive, signer, died = die_sealing(store, dev, 50, tmp_path, SealPolicy(max_fixes=50))
    assert "KilledError" in died.failed[dev]
    ((interrupted, _manifest),) = archive.manifests(dev)
    assert store.redis.xlen(store.keys.track(dev)) == 50, "written, and still live"
    assert verify_archive(store, archive, dev) == (50, [])

    # Fixes arrive before the archiver runs again, with the same segment size or a smaller one.
    store_walk(store, "wang5", "BC-10", 15, first=50)
    done = seal_due(store, archive, signer, _T0, SealPolicy(max_fixes=max_fixes), force=True)
    assert done.failed == {}
    assert segment_counts(archive, dev) == [50, 15], "no segment repeats the interrupted one"
    assert done.sealed[0] == interrupted, "the interrupted seal is finished and reported"
    assert store.redis.xlen(store.keys.track(dev)) == 0
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(65)]
    assert verify_archive(store, archive, dev, signer.public_hex) == (65, [])


def test_an_interrupted_segment_that_does_not_verify_keeps_its_entries_live(
    nodes_store: Store, prefix, tmp_path
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-11")
    archive, signer, _died = die_sealing(store, dev, 30, tmp_path, SealPolicy())
    ((path, manifest),) = archive.manifests(dev)
    segment = path.parent / manifest["file"]
    segment.write_bytes(segment.read_bytes()[:-100])

    done = seal_due(store, archive, signer, _T0, SealPolicy(), force=True)
    assert list(done.failed) == [dev]
    assert "does not verify" in done.failed[dev] and path.name in done.failed[dev]
    assert store.redis.xlen(store.keys.track(dev)) == 30, "the live track is the only sound copy"
    assert segment_counts(archive, dev) == [30]


def seal_untrimmed(
    store: Store, archive: Archive, signer: Signer, dev: DeviceKey, records: list[ChainRecord]
) -> None:
    """What a seal that died before its trim leaves: the segment written, Redis as it was."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.tracks, "mark_sealed", lambda *_args: None)
        archive.seal(store, signer, dev, records)


def with_moved_fix(records: list[ChainRecord], index: int) -> list[ChainRecord]:
    """`records` with fix `index` moved north and the chain linked anew from it: a copy a
    holder of the signing key could seal, sound in itself."""
    forged, head = records[:index], records[index - 1].chain_hash
    for n, record in enumerate(records[index:]):
        fix = record.fix
        fix["lat"] += 1e-3 if n == 0 else 0
        canonical = json.dumps(fix, sort_keys=True, separators=(",", ":")).encode()
        head = link(head, canonical, record.raw_sha256)
        forged.append(dataclasses.replace(record, canonical=canonical, chain_hash=head))
    return forged


def overlapping_archive(
    store: Store, dev: DeviceKey, data_dir: Path, moved: int | None = None
) -> tuple[Archive, Signer, list[ChainRecord]]:
    """A 65-fix track as archivers before this one left it after an interrupted seal: the
    interrupted segment (fixes 0-49, with fix `moved` changed if given), the same entries
    written again (0-39) and trimmed, then 40-54; fixes 55-64 live.
    (archive, signer, the live track's records)"""
    user, _, device = dev.partition("/")
    store_walk(store, user, device, 65)
    settings = Settings(data_dir=data_dir)
    archive, signer = settings.archive(), settings.signer()
    records = full_track(store, archive, dev)
    interrupted = records if moved is None else with_moved_fix(records, moved)
    # Sealed beside the archive, then moved into it: this archive would finish the seal.
    earlier = Archive(data_dir / "earlier")
    seal_untrimmed(store, earlier, signer, dev, interrupted[:50])
    archive.seal(store, signer, dev, records[:40])
    archive.seal(store, signer, dev, records[40:55])
    for path in earlier.folder(dev).iterdir():
        path.rename(archive.folder(dev) / path.name)
    assert sorted(segment_counts(archive, dev)) == [15, 40, 50]
    return archive, signer, records


def test_overlapping_segments_read_each_fix_once_and_verify_clean(
    nodes_store: Store, prefix, tmp_path
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-12")
    archive, signer, _records = overlapping_archive(store, dev, tmp_path)
    assert store.redis.xlen(store.keys.track(dev)) == 10
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(65)]
    in_window = full_track(store, archive, dev, since=_T0 + 52, until=_T0 + 53)
    assert fix_times(in_window) == [_T0 + n for n in range(40, 65)], "one segment, then live"
    assert verify_archive(store, archive, dev, signer.public_hex) == (65, [])

    done = seal_due(store, archive, signer, _T0, SealPolicy(), force=True)
    assert (done.failed, len(done.sealed)) == ({}, 1)
    assert segment_counts(archive, dev) == [40, 50, 15, 10]
    assert store.redis.xlen(store.keys.track(dev)) == 0
    assert verify_archive(store, archive, dev, signer.public_hex) == (65, [])
    assert fix_times(full_track(store, archive, dev)) == [_T0 + n for n in range(65)]


def test_a_copy_that_differs_inside_an_overlap_is_reported(
    nodes_store: Store, prefix, tmp_path
) -> None:
    store, dev = nodes_store, DeviceKey("wang5/BC-13")
    archive, signer, records = overlapping_archive(store, dev, tmp_path, moved=20)
    by_count = {
        manifest["count"]: (path, manifest["file"]) for path, manifest in archive.manifests(dev)
    }
    (_, again), (forged_manifest, forged), (_, after) = by_count[40], by_count[50], by_count[15]
    assert verify_segment(forged_manifest, signer.public_hex) == [], "sound in itself"

    count, problems = verify_archive(store, archive, dev, signer.public_hex)
    assert count == 65
    # The forgery differs from the moved fix on (its chain hashes), where either copy overlaps it.
    assert problems == [
        f"{forged}: record 20 (stream id {records[20].stream_id}) differs from its copy in {again}",
        f"{after}: record 0 (stream id {records[40].stream_id}) differs from its copy in {forged}",
    ]
    assert len(full_track(store, archive, dev)) == 65


def test_the_track_endpoint_answers_each_fix_once_from_an_overlapping_archive(
    redis_service, store: Store, prefix, database_url, tmp_path
) -> None:
    _archive, _signer, records = overlapping_archive(store, DeviceKey("wang5/BC-14"), tmp_path)
    settings = Settings(
        redis_url=redis_service.url, key_prefix=prefix, database_url=database_url,
        data_dir=tmp_path,
    )  # fmt: skip
    with TestClient(create_app(settings, workers=())) as client:
        client.headers.update(bearer(database_url))
        track = client.get(
            "/api/devices/wang5/BC-14/track", params={"from": _T0 - 10, "to": _T0 + 100}
        )
    assert track.status_code == 200, track.text
    assert track.json()["properties"]["points"] == 65
    _line, *points = track.json()["features"]
    assert [p["properties"]["chain_hash"] for p in points] == [r.chain_hash for r in records]


def test_the_servers_archiver_seals_live_tracks(
    redis_service, store: Store, prefix, database_url, tmp_path
) -> None:
    dev = DeviceKey("wang5/BC-8")
    store_walk(store, "wang5", "BC-8", 50)
    settings = Settings(
        redis_url=redis_service.url, key_prefix=prefix, database_url=database_url,
        data_dir=tmp_path, archive_max_fixes=20, archive_every_s=0.2,
    )  # fmt: skip
    archive = settings.archive()
    with TestClient(create_app(settings, workers=("archiver",))):
        wait_until(lambda: len(archive.manifests(dev)) >= 1, what="a segment sealed by the server")
        wait_until(lambda: store.redis.xlen(store.keys.track(dev)) < 50, what="the track trimmed")
    assert verify_archive(store, archive, dev, settings.signer().public_hex) == (50, [])
