"""Replaying the real T-Drive hour (110,654 fixes, 6,470 taxis) through Mosquitto.

The expected outcome per message comes from the pure rules (devices.quality, unit-tested on
their own) applied to the file in replay order; the pipeline under test is everything else:
MQTT delivery, batching, chain caching, the Redis function, acknowledgement and recovery.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from dispatch.core.track import DeviceKey, verify_chain
from harness.center import as_environment
from simulators.publisher import Publisher
from simulators.replay import read_tdrive, replay, shifted
from tests.conftest import ingest_config, session_left_behind
from tests.integration.feeds import expected_outcome, stored_keys
from tests.integration.helpers import verdicts, wait_until

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def tdrive(shared_data):
    rows = list(read_tdrive(shared_data / "tdrive-beijing-1h" / "tdrive_2008-02-02_16h_shared.csv"))
    assert len(rows) == 110_654
    assert len({r.user for r in rows}) == 6_470
    return rows


def test_tdrive_replay_every_fix_gets_its_verdict(
    tdrive, broker, logins, store, prefix, start_ingest
) -> None:
    # The verdicts are compared with the feed judged in its order: a replay far faster than
    # the ingest is one long backlog, and the live lane would judge fixes out of order.
    start_ingest(replace(ingest_config(prefix), live_after_s=math.inf))
    ends_at = int(time.time())
    expected = expected_outcome(shifted(tdrive, ends_at, align=False), ends_at)
    with Publisher(
        "127.0.0.1", broker.port, client_id=f"{prefix}-replay", login=logins.simulator
    ) as publisher:
        published = replay(tdrive, publisher, root=prefix, ends_at=ends_at, progress=False)
    assert published == len(publisher.ledger) == 110_654
    wait_until(lambda: verdicts(store) == published, timeout_s=120, what="all verdicts")

    stats = store.ingest.stats()
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
        record = store.tracks.device_record(dev)
        assert (float(record["lon"]), float(record["lat"]), int(record["fix_at"])) == (
            pytest.approx(lon, abs=1e-7),
            pytest.approx(lat, abs=1e-7),
            fix_at,
        ), dev


def test_kill_9_of_ingest_mid_replay_loses_and_doubles_nothing(
    tdrive, broker, logins, redis_service, store, prefix
) -> None:
    # Create the persistent session first, so the broker queues for it from the start.
    session_left_behind(logins.worker("ingest"), prefix, f"ingest-{prefix}")
    env = {
        **os.environ,
        "YIWANG_REDIS_URL": redis_service.url,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_MQTT_PORT": str(broker.port),
        "YIWANG_TOPIC_ROOT": prefix,
        "YIWANG_INGEST_NAME": f"ingest-{prefix}",
        "YIWANG_UNKNOWN_DEVICES": "register",
        "YIWANG_REGISTRATIONS_PER_MIN": "100000",
        "YIWANG_INGEST_LIVE_AFTER_S": "inf",
        **as_environment(logins.settings),
    }
    command = [sys.executable, "-m", "dispatch.cli", "ingest"]
    ingest = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        ends_at = int(time.time())
        expected = expected_outcome(shifted(tdrive, ends_at, align=False), ends_at)
        publisher = Publisher(
            "127.0.0.1", broker.port, client_id=f"{prefix}-replay", login=logins.simulator
        )
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
            stats = store.ingest.stats()
            return (
                verdicts(store)
                - stats.get("rejected:duplicate", 0)
                + expected.rejected["duplicate"]
            )

        wait_until(lambda: first_verdicts() >= len(ledger), timeout_s=180, what="a verdict for all")
        assert first_verdicts() == len(ledger), "a message got two verdicts"
        stats = store.ingest.stats()
        print(f"\nkilled after {killed_at} verdicts; final {stats}")
        assert stats["accepted"] == expected.stored

        devices = {topic.split("/", 1)[1] for topic, _ in ledger}
        stored = stored_keys(store, devices)
        assert max(stored.values()) == 1, "a fix was stored twice"
        rejected_shas = {d["payload_sha256"] for d in store.ingest.deadletters(1_000_000)}
        for topic, payload in ledger:
            dev = topic.split("/", 1)[1]
            body = json.loads(payload)
            key = (dev, body["tst"], round(body["lon"], 7), round(body["lat"], 7))
            assert key in stored or hashlib.sha256(payload).hexdigest() in rejected_shas, key
        for dev in devices:
            links = [link for _, link, _ in store.tracks.chain_links(DeviceKey(dev))]
            verify_chain(DeviceKey(dev), links)
    finally:
        ingest.kill()
        ingest.wait()
