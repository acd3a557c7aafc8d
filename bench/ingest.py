"""Ingest throughput: receive paths side by side (bench.receivers), then the full pipeline,
all against a bare paho subscriber on the same broker with the same load.

Every consumer is measured the same way: their persistent session is created, N QoS 1
location messages for D devices are published and queued by the broker while the consumer is
away, then the consumer connects and drains the queue. Timing the drain alone keeps the
publisher's CPU out of the comparison. The pipeline counts as done when Redis holds a verdict
(stored or rejected) for every message. Last line: JSON.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import tempfile
import threading
import time
from pathlib import Path

from bench.receivers import CANDIDATES
from devices.batch import BatchWriter, IngestConfig
from devices.broker import BrokerLogin
from devices.ingest import IngestWorker
from devices.membership import client_id_for
from devices.quality import Limits
from devices.registry import UnknownDevicePolicy
from devices.subscriber import Subscriber
from devices.topics import DEFAULT_ROOT, uplink_filters
from dispatch.store import Store
from harness.center import center_accounts
from harness.daemons import ManagedMosquitto, ManagedRedis
from simulators.publisher import Publisher

_DRAIN_TIMEOUT_S = 600.0


def location_messages(count: int, devices: int, now: float) -> list[tuple[str, bytes]]:
    per_device = -(-count // devices)
    out = []
    for n in range(count):
        dev, step = n % devices, n // devices
        tst = int(now) - per_device + step
        payload = {
            "_type": "location",
            "lat": round(29.05 + dev * 1e-4 + step * 2e-5, 7),
            "lon": round(119.60 + dev * 1e-4 + step * 2e-5, 7),
            "tst": tst,
            "acc": 8,
            "vel": 5,
            "batt": 80,
            "tid": "YW",
        }
        out.append((f"{DEFAULT_ROOT}/officer{dev}/bodycam{dev}", json.dumps(payload).encode()))
    return out


def publish_acknowledged(
    broker: BrokerLogin, messages: list[tuple[str, bytes]], login: tuple[str, str]
) -> None:
    with Publisher(broker.host, broker.port, client_id="bench-publisher", login=login) as publisher:
        for topic, payload in messages:
            publisher.publish(topic, payload)
        publisher.wait_acknowledged()


def measure_receivers(
    broker: BrokerLogin, messages: list[tuple[str, bytes]], login: tuple[str, str]
) -> dict[str, float]:
    """Messages per second each receive path drains when it only acknowledges them; a
    candidate whose library is missing here is reported and left out."""
    filters = uplink_filters(DEFAULT_ROOT)
    rates = {}
    for name, drain in CANDIDATES.items():
        try:
            rates[name] = drain(
                broker,
                filters,
                len(messages),
                lambda: publish_acknowledged(broker, messages, login),
            )
        except (ImportError, OSError) as exc:
            print(f"  {name:<22} unavailable here ({exc})")
            continue
        print(f"  bare {name:<17} {rates[name]:10,.0f} msg/s")
    return rates


def session_left_behind(broker: BrokerLogin, client_id: str) -> None:
    """A worker's session, subscribed to the shared subscription and left without leaving the
    group (a stopped worker would end it): the broker queues its share there to be drained."""
    session = Subscriber(broker, client_id, session_expiry_s=3600)
    subscribed = threading.Event()
    session.connect([(f, 1) for f in uplink_filters(DEFAULT_ROOT)], lambda _: subscribed.set())
    deadline = time.monotonic() + 10
    while not subscribed.is_set() and time.monotonic() < deadline:
        session.read(0.1)
    session.close()


def measure_pipeline(
    broker: BrokerLogin,
    store: Store,
    messages: list[tuple[str, bytes]],
    login: tuple[str, str],
    profile: bool,
) -> tuple[float, int, str]:
    """Messages per second from broker queue to verdicts in Redis; also lost count and profile."""
    config = IngestConfig(
        root=DEFAULT_ROOT,
        limits=Limits(),
        unknown_devices=UnknownDevicePolicy.REGISTER,
        registrations_per_min=len(messages),
    )

    session_left_behind(broker, client_id_for("bench"))
    publish_acknowledged(broker, messages, login)

    def verdicts() -> int:
        stats = store.ingest.stats()
        return sum(v for k, v in stats.items() if k == "accepted" or k.startswith("rejected:"))

    worker = IngestWorker(
        BatchWriter(store.ingest, config),
        broker=broker,
        name="bench",
        roll=store.members,
        session_expiry_s=3600,
    )
    profiler = cProfile.Profile() if profile else None
    done = threading.Event()

    def run() -> None:
        if profiler:
            profiler.enable()
        worker.run()
        if profiler:
            profiler.disable()
        done.set()

    started = time.perf_counter()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = started + _DRAIN_TIMEOUT_S
    while verdicts() < len(messages) and time.perf_counter() < deadline:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    worker.stop()
    done.wait(10)
    lost = len(messages) - verdicts()
    text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        text = out.getvalue()
    return (len(messages) - lost) / elapsed, lost, text


def bench_logins(broker: ManagedMosquitto) -> tuple[BrokerLogin, tuple[str, str]]:
    """The ingest's broker login and the publishing simulator's account, made for the run."""
    accounts = center_accounts(broker, DEFAULT_ROOT, "bench")
    ingest = BrokerLogin(
        "127.0.0.1",
        broker.port,
        accounts["ingest_mqtt_username"],
        accounts["ingest_mqtt_password"],
    )
    return ingest, (accounts["simulator_mqtt_username"], accounts["simulator_mqtt_password"])


def main(messages: int = 100_000, devices: int = 2_000, profile: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-") as tmp:
        redis_service = ManagedRedis(Path(tmp) / "redis")
        broker = ManagedMosquitto(Path(tmp) / "mosquitto")
        redis_service.start()
        broker.start()
        try:
            store = Store.from_url(redis_service.url, "bench")
            store.load_functions()
            load = location_messages(messages, devices, time.time())
            print(f"ingest bench: {messages} QoS 1 locations from {devices} devices")
            ingest, simulator = bench_logins(broker)
            rates = measure_receivers(ingest, load, simulator)
            bare = rates["paho"]
            pipeline, lost, profile_text = measure_pipeline(ingest, store, load, simulator, profile)
            print(f"  full ingest pipeline   {pipeline:10,.0f} msg/s  (lost {lost})")
            print(f"  µs per fix             {1e6 / pipeline:10.1f}")
            print(f"  receive: ours / paho   {rates['wire'] / bare:10.2f}")
            print(f"  pipeline / bare paho   {pipeline / bare:10.2f}")
            if profile_text:
                print(profile_text)
        finally:
            broker.stop()
            redis_service.stop()
    result = {
        "pipeline_per_s": round(pipeline),
        "bare_paho_per_s": round(bare),
        "ratio": round(pipeline / bare, 3),
        "lost": lost,
        "us_per_fix": round(1e6 / pipeline, 1),
        "receive_ratio": round(rates["wire"] / bare, 3),
        **{f"{name}_per_s": round(rate) for name, rate in rates.items()},
    }
    print(json.dumps(result))
    return 0 if lost == 0 else 1
