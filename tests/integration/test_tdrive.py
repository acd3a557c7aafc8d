"""Replaying the real T-Drive hour (110,654 fixes, 6,470 taxis) through Mosquitto.

The expected outcome per message comes from the pure rules (devices.quality, unit-tested on
their own) applied to the file in replay order; the pipeline under test is everything else:
MQTT delivery, batching, chain caching, the Redis function, acknowledgement and recovery.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest

from devices.messages import Location
from devices.quality import LastFix, Limits, Rejection, judge_location
from dispatch.core.track import DeviceKey, verify_chain
from dispatch.store import Store
from simulators.publisher import Publisher
from simulators.replay import location_message, read_tdrive, replay
from tests.integration.helpers import verdicts, wait_until

pytestmark = pytest.mark.data


@dataclass
class Expected:
    stored: int = 0
    backfill: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    last_live: dict[str, tuple[float, float, int]] = field(default_factory=dict)


def expected_outcome(rows, ends_at: int) -> Expected:
    """Apply the data-quality rules to the feed, in the order the replay publishes it."""
    offset = ends_at - max(r.at for r in rows)
    outcome, seen, rejected_seen = Expected(), set(), set()
    last: dict[str, LastFix] = {}
    for row in sorted(rows, key=lambda r: r.at):
        dev = f"{row.user}/{row.device}"
        message = location_message(row, row.at + offset)
        msg = Location(**{k: v for k, v in message.items() if k != "_type"})
        judged = judge_location(
            DeviceKey(dev), msg, last=last.get(dev), now=ends_at + 1, limits=Limits()
        )
        if isinstance(judged, Rejection):
            # The same message rejected again is a duplicate, as the store counts it.
            again = (dev, json.dumps(message)) in rejected_seen
            rejected_seen.add((dev, json.dumps(message)))
            outcome.rejected["duplicate" if again else judged.reason] += 1
            continue
        key = (dev, judged.fix_at, f"{judged.lon:.7f}", f"{judged.lat:.7f}")
        if key in seen:
            outcome.rejected["duplicate"] += 1
            continue
        seen.add(key)
        outcome.stored += 1
        if judged.backfill:
            outcome.backfill += 1
        else:
            last[dev] = LastFix(judged.lon, judged.lat, judged.fix_at)
            outcome.last_live[dev] = (judged.lon, judged.lat, judged.fix_at)
    return outcome


@pytest.fixture(scope="module")
def tdrive(shared_data):
    rows = list(read_tdrive(shared_data / "tdrive-beijing-1h" / "tdrive_2008-02-02_16h_shared.csv"))
    assert len(rows) == 110_654
    assert len({r.user for r in rows}) == 6_470
    return rows


def stored_keys(store: Store, devices) -> collections.Counter:
    keys = collections.Counter()
    for dev in devices:
        for _, link, _ in store.chain_links(DeviceKey(dev)):
            fix = json.loads(link.canonical)
            keys[(dev, fix["fix_at"], fix["lon"], fix["lat"])] += 1
    return keys


def test_tdrive_replay_every_fix_gets_its_verdict(
    tdrive, broker, store, prefix, start_ingest
) -> None:
    start_ingest()
    ends_at = int(time.time())
    expected = expected_outcome(tdrive, ends_at)
    with Publisher("127.0.0.1", broker.port, client_id=f"{prefix}-replay") as publisher:
        published = replay(tdrive, publisher, root=prefix, ends_at=ends_at, progress=False)
    assert published == len(publisher.ledger) == 110_654
    wait_until(lambda: verdicts(store) == published, timeout_s=120, what="all verdicts")

    stats = store.stats()
    rejected = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")}
    print(
        f"\nT-Drive: accepted {stats['accepted']} (backfill {stats.get('backfill', 0)}), rejected {rejected}"
    )
    assert stats["accepted"] + sum(rejected.values()) == published
    assert stats["accepted"] == expected.stored
    assert stats.get("backfill", 0) == expected.backfill
    assert rejected == dict(expected.rejected)
    zero_rows = sum(1 for r in tdrive if r.lon == 0 or r.lat == 0)
    assert rejected["zero_coordinate"] == zero_rows > 0

    for dev, (lon, lat, fix_at) in expected.last_live.items():
        record = store.device_record(dev)
        assert (float(record["lon"]), float(record["lat"]), int(record["fix_at"])) == (
            pytest.approx(lon, abs=1e-7),
            pytest.approx(lat, abs=1e-7),
            fix_at,
        ), dev


def test_kill_9_of_ingest_mid_replay_loses_and_doubles_nothing(
    tdrive, broker, redis_service, store, prefix, start_ingest
) -> None:
    # Create the persistent session first, so the broker queues for it from the start.
    start_ingest().stop()
    env = {
        **os.environ,
        "YIWANG_REDIS_URL": redis_service.url,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_MQTT_PORT": str(broker.port),
        "YIWANG_TOPIC_ROOT": prefix,
        "YIWANG_INGEST_CLIENT_ID": f"ingest-{prefix}",
    }
    command = [sys.executable, "-m", "dispatch.cli", "ingest"]
    ingest = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        ends_at = int(time.time())
        expected = expected_outcome(tdrive, ends_at)
        publisher = Publisher("127.0.0.1", broker.port, client_id=f"{prefix}-replay")
        replayer = threading.Thread(
            target=lambda: replay(tdrive, publisher, root=prefix, ends_at=ends_at, progress=False)
        )
        with publisher:
            replayer.start()
            wait_until(lambda: verdicts(store) > 40_000, timeout_s=120, what="40% stored")
            ingest.kill()  # SIGKILL: no flush, no goodbye
            ingest.wait()
            killed_at = verdicts(store)
            ingest = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
            replayer.join(300)
        ledger = publisher.ledger.entries
        assert len(ledger) == 110_654

        # Redelivered copies of stored fixes add "duplicate" verdicts on top of one verdict per
        # published message, so count first verdicts only.
        def first_verdicts() -> int:
            stats = store.stats()
            return (
                verdicts(store)
                - stats.get("rejected:duplicate", 0)
                + expected.rejected["duplicate"]
            )

        wait_until(lambda: first_verdicts() >= len(ledger), timeout_s=180, what="a verdict for all")
        assert first_verdicts() == len(ledger), "a message got two verdicts"
        stats = store.stats()
        print(f"\nkilled after {killed_at} verdicts; final {stats}")
        assert stats["accepted"] == expected.stored

        devices = {topic.split("/", 1)[1] for topic, _ in ledger}
        stored = stored_keys(store, devices)
        assert max(stored.values()) == 1, "a fix was stored twice"
        rejected_shas = {d["payload_sha256"] for d in store.deadletters(1_000_000)}
        for topic, payload in ledger:
            dev = topic.split("/", 1)[1]
            body = json.loads(payload)
            key = (dev, body["tst"], round(body["lon"], 7), round(body["lat"], 7))
            assert key in stored or hashlib.sha256(payload).hexdigest() in rejected_shas, key
        for dev in devices:
            links = [link for _, link, _ in store.chain_links(DeviceKey(dev))]
            verify_chain(DeviceKey(dev), links)
    finally:
        ingest.kill()
        ingest.wait()
