"""Ingest workers sharing one subscription over a real Mosquitto and Redis: a worker that
stops leaves its share to the others, one that dies is reported and retired without a loss,
and one whose client id is taken ends instead of taking it back."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from devices import mqttwire
from devices.broker import BrokerLogin
from devices.ingest import IngestWorker
from devices.subscriber import Subscriber, TakenOverError
from dispatch.api.app import create_app
from dispatch.core.track import DeviceKey, verify_chain
from dispatch.settings import Settings
from dispatch.store import Store
from tests.integration.helpers import bearer, mqtt_client, publish_all, verdicts, wait_until
from tests.integration.ingest_processes import INGEST, ingest_env, ingest_process, roll

DEVICES, PER_DEVICE = 10, 100


def fixes(root: str, now: float) -> list[tuple[str, bytes]]:
    """PER_DEVICE fixes a second apart from each of DEVICES devices, one device after the
    other: a broker's round robin splits each device's fixes between the members."""
    return [
        (
            f"{root}/u{d}/d{d}",
            json.dumps(
                {
                    "_type": "location",
                    "lat": 29.08 + step * 1e-5,
                    "lon": 119.65 + d * 1e-3,
                    "tst": int(now) - PER_DEVICE + step,
                }
            ).encode(),
        )
        for d in range(DEVICES)
        for step in range(PER_DEVICE)
    ]


def assert_every_fix_stored(store: Store, published: int) -> None:
    assert store.ingest.stats()["accepted"] == published
    for d in range(DEVICES):
        device = DeviceKey(f"u{d}/d{d}")
        links = [link for _, link, _ in store.tracks.chain_links(device)]
        assert len(links) == PER_DEVICE, device
        verify_chain(device, links)


def settled(store: Store, worker: IngestWorker) -> bool:
    """Everything `worker` received is stored, and nothing more came for half a second."""
    before = verdicts(store)
    time.sleep(0.5)
    return before == verdicts(store) == worker.stored == worker.received


def test_a_stopped_worker_leaves_its_share_to_the_others(
    broker, logins, store, prefix, start_ingest
) -> None:
    a = start_ingest(name="a")
    b = start_ingest(name="b")
    wait_until(lambda: len(roll(store).alive) == 2, 10, "both workers registered")
    started = time.monotonic()
    a.stop()
    stop_s = time.monotonic() - started
    assert not a.thread.is_alive() and not a.worker.taken_over
    assert [m.name for m in roll(store).alive] == [f"b-{prefix}"], "a deregistered"

    published = fixes(prefix, time.time())
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
    started = time.monotonic()
    publish_all(client, published)
    client.loop_stop()
    # Before leaving was graceful, the broker queued every other message for a's session.
    wait_until(lambda: verdicts(store) == len(published), 20, "every fix stored")
    print(
        f"\nstop took {stop_s:.2f} s; {len(published)} fixes stored by b alone "
        f"in {time.monotonic() - started:.2f} s (b received {b.worker.received})"
    )
    assert_every_fix_stored(store, len(published))
    assert b.worker.received == len(published)


def test_a_killed_worker_is_reported_dead_and_retiring_it_stores_its_queue(
    broker, logins, redis_service, store, prefix, database_url, start_ingest
) -> None:
    b = start_ingest(name="b")
    dead = f"a-{prefix}"
    env = ingest_env(redis_service.url, broker.port, logins, prefix, dead)
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        mqtt_port=broker.port,
        **logins.settings,
        topic_root=prefix,
        database_url=database_url,
    )
    with (
        ingest_process(env, dead, store, stderr=subprocess.DEVNULL) as worker_a,
        TestClient(create_app(settings, workers=())) as api,
    ):
        api.headers.update(bearer(database_url))
        health = api.get("/api/health").json()
        assert (health["status"], health["ingest_workers"]) == ("ok", [dead, f"b-{prefix}"])

        worker_a.kill()  # SIGKILL: no unsubscribe, no goodbye, no deregistration
        killed_at = time.monotonic()
        wait_until(
            lambda: api.get("/api/health").json()["ingest_workers_dead"] == [dead],
            10,
            "health to name the dead worker",
        )
        reported_s = time.monotonic() - killed_at
        health = api.get("/api/health").json()
        assert health["status"] == "degraded" and health["ingest_workers"] == [f"b-{prefix}"]

        published = fixes(prefix, time.time())
        client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
        publish_all(client, published)  # each acknowledged by the broker: routed by now
        client.loop_stop()
        wait_until(lambda: settled(store, b.worker), 20, "b to store its share")
        by_b = verdicts(store)
        assert 0 < by_b < len(published), "the dead session kept a share queued"

        started = time.monotonic()
        retired = subprocess.run(
            [*INGEST, "--retire", dead],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        retire_s = time.monotonic() - started
        assert retired.returncode == 0, retired.stderr
        drained = len(published) - by_b
        assert f"{drained} messages drained from its session" in retired.stdout, retired.stdout
        wait_until(lambda: verdicts(store) == len(published), 10, "nothing lost")
        assert_every_fix_stored(store, len(published))
        health = api.get("/api/health").json()
        assert (health["status"], health["ingest_workers"], health["ingest_workers_dead"]) == (
            "ok",
            [f"b-{prefix}"],
            [],
        )
        stats = store.ingest.stats()
        print(
            f"\ndead reported after {reported_s:.2f} s; b stored {by_b}, the dead session held "
            f"{drained}, retired in {retire_s:.2f} s (process included); backfill "
            f"{stats.get('backfill', 0)}; {retired.stdout.strip()}"
        )


def test_a_worker_whose_client_id_is_taken_ends_instead_of_taking_it_back(
    broker, logins, redis_service, store, prefix, start_ingest
) -> None:
    name = f"twin-{prefix}"
    env = ingest_env(redis_service.url, broker.port, logins, prefix, name)
    with ingest_process(env, name, store, stderr=subprocess.PIPE, text=True) as first:
        started = time.monotonic()
        second = start_ingest(name="twin")  # the same name, so the same client id
        try:
            _, log = first.communicate(timeout=10)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError("the worker that lost its session kept running") from exc
        ended_s = time.monotonic() - started
        assert first.returncode == 1
        # Mosquitto 2.0 closes the connection without MQTT 5's reason 0x8E: the later run's
        # registration tells the earlier one that it lost.
        assert f"ingest {name} ends" in log and "took its client id" in log, log
        # The winner keeps the session, undisturbed: it still ingests.
        assert second.worker.connected.is_set() and not second.worker.taken_over
        client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
        publish_all(client, fixes(prefix, time.time())[:20])
        client.loop_stop()
        wait_until(lambda: verdicts(store) == 20, 10, "the winner to store")
        assert second.worker.connected.is_set()
        print(f"\nthe loser ended {ended_s:.2f} s after the takeover, with exit status 1")


def test_a_broker_that_says_the_session_was_taken_over_ends_it_for_good() -> None:
    """What EMQX and later Mosquitto send the client that lost its client id: a broker on a
    loopback socket of this test's own, speaking the bytes by hand."""
    listener = socket.create_server(("127.0.0.1", 0))
    subscriber = Subscriber(
        BrokerLogin("127.0.0.1", listener.getsockname()[1], None, None), "yiwang-ingest-x"
    )

    def broker_side() -> None:
        peer, _ = listener.accept()
        with peer:
            peer.recv(1024)  # CONNECT
            peer.sendall(b"\x20\x03\x00\x00\x00")  # CONNACK, MQTT 5, no properties
            peer.recv(1024)  # SUBSCRIBE
            peer.sendall(b"\xe0\x02" + bytes([mqttwire.SESSION_TAKEN_OVER]) + b"\x00")
            peer.recv(1024)  # whatever the client says last, until it closes

    broker = threading.Thread(target=broker_side, daemon=True)
    broker.start()
    try:
        subscriber.connect([("r/#", 1)], lambda suback: None)
        with pytest.raises(TakenOverError, match="same client id"):
            for _ in range(20):
                subscriber.read(0.1)
    finally:
        subscriber.close()
        listener.close()
        broker.join(5)
