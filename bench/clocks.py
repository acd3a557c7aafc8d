"""Deadline lateness: how late the engine fires breaches with 10,000 open incidents.

Measured twice in one run, each on fresh keys: with the engine alone (the baseline), then
while 2,000 devices report once a second through Mosquitto and an ingest worker into the
same Redis the engine reads. Lateness = when the engine fired a breach − its deadline; every
incident has three (respond, turn out, handle), all due within a minute. The engine and the
ingest run as their own processes, as in production. Last line: JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from dispatch.store import Store
from harness.center import as_environment, center_accounts
from harness.daemons import ManagedMosquitto, ManagedRedis
from simulators.publisher import Publisher

_POLICY = {
    "respond_s": 20,
    "turn_out_s": 30,
    "handle_s": 40,
    "warn_at": 0.5,
    "ladder": [[0, "notify_squad_leader"]],
}
_BREACHES_PER_INCIDENT = 3


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dispatch.cli", command], env=env, stderr=subprocess.DEVNULL
    )


def _report(store: Store, incidents: int) -> None:
    engine_store = store.incidents
    for n in range(incidents):
        engine_store.command(
            {
                "type": "IncidentReported",
                "incident": f"B-{n:05d}",
                "category": "bench",
                "priority": 3,
                "location": [119.65 + (n % 100) * 1e-3, 29.08 + (n // 100) * 1e-3],
                "source": "12345",
            }
        )


def _lateness(store: Store, expected: int, timeout_s: float) -> np.ndarray:
    engine_store = store.incidents
    deadline = time.monotonic() + timeout_s
    with tqdm(total=expected, unit="breach", desc="breaches fired", leave=False) as bar:
        while True:
            records = [
                r for r in engine_store.audit_records(10_000_000) if r["kind"] == "escalation"
            ]
            bar.update(len(records) - bar.n)
            if len(records) >= expected or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    return np.array([float(r["at"]) - json.loads(r["detail"])["due_at"] for r in records])


def _devices(
    port: int, root: str, count: int, stop: threading.Event, login: tuple[str, str]
) -> None:
    with Publisher("127.0.0.1", port, client_id="bench-devices", login=login) as publisher:
        tick = 0
        while not stop.is_set():
            started = time.monotonic()
            now = int(time.time())
            for n in range(count):
                lat = 29.05 + (n // 50) * 1e-3 + (tick % 60) * 1e-5
                payload = {
                    "_type": "location",
                    "lat": lat,
                    "lon": 119.60 + (n % 50) * 1e-3,
                    "tst": now + tick % 2,
                }
                publisher.publish(f"{root}/officer{n}/bodycam{n}", payload)
            tick += 1
            stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def _phase(
    name: str,
    redis_url: str,
    env: dict[str, str],
    incidents: int,
    with_devices: tuple[ManagedMosquitto, int] | None,
) -> np.ndarray:
    prefix = f"bench-{name}"
    accounts = {}
    if with_devices is not None:
        broker, devices = with_devices
        accounts = as_environment(
            {
                **center_accounts(broker, prefix, prefix),
                "unknown_devices": "register",
                "registrations_per_min": devices,
            }
        )
    env = {
        **env,
        **accounts,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_TOPIC_ROOT": prefix,
        "YIWANG_ENGINE_ID": prefix,
    }
    store = Store.from_url(redis_url, prefix)
    store.load_functions()
    workers = [_spawn("engine", env)]
    stop = threading.Event()
    feed = None
    try:
        if with_devices is not None:
            login = (
                accounts["YIWANG_SIMULATOR_MQTT_USERNAME"],
                accounts["YIWANG_SIMULATOR_MQTT_PASSWORD"],
            )
            workers.append(_spawn("ingest", {**env, "YIWANG_INGEST_NAME": f"{prefix}-ingest"}))
            time.sleep(2.0)  # let the ingest subscribe before the devices start
            feed = threading.Thread(
                target=_devices, args=(broker.port, prefix, devices, stop, login), daemon=True
            )
            feed.start()
            time.sleep(3.0)
        _report(store, incidents)
        lateness = _lateness(store, incidents * _BREACHES_PER_INCIDENT, timeout_s=180.0)
        if with_devices is not None:
            stats = store.ingest.stats()
            print(f"  ingest during the phase: {stats.get('accepted', 0):,} fixes stored")
        return lateness
    finally:
        stop.set()
        if feed is not None:
            feed.join(10)
        for worker in workers:
            worker.terminate()
            worker.wait(10)


def _summary(lateness: np.ndarray) -> dict[str, float]:
    return {
        "p50_s": round(float(np.percentile(lateness, 50)), 3),
        "p99_s": round(float(np.percentile(lateness, 99)), 3),
        "max_s": round(float(lateness.max()), 3),
        "breaches": len(lateness),
    }


def main(incidents: int = 10_000, devices: int = 2_000) -> int:
    with tempfile.TemporaryDirectory(prefix="yiwang-clocks-") as tmp:
        redis_service = ManagedRedis(Path(tmp) / "redis")
        broker = ManagedMosquitto(Path(tmp) / "mosquitto")
        redis_service.start()
        broker.start()
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(yaml.safe_dump({"default": _POLICY}))
        env = {
            **os.environ,
            "YIWANG_REDIS_URL": redis_service.url,
            "YIWANG_MQTT_PORT": str(broker.port),
            "YIWANG_POLICY_FILE": str(policy),
            "YIWANG_ENGINE_LEASE_MS": "5000",
        }
        try:
            print(
                f"clocks bench: {incidents:,} open incidents, {_BREACHES_PER_INCIDENT} deadlines each"
            )
            idle = _summary(_phase("idle", redis_service.url, env, incidents, None))
            print(
                f"  engine alone                 p50 {idle['p50_s']:.3f} s  p99 {idle['p99_s']:.3f} s  max {idle['max_s']:.3f} s"
            )
            loaded = _summary(
                _phase("loaded", redis_service.url, env, incidents, (broker, devices))
            )
            print(
                f"  with {devices:,} devices at 1 Hz  p50 {loaded['p50_s']:.3f} s  p99 {loaded['p99_s']:.3f} s  max {loaded['max_s']:.3f} s"
            )
        finally:
            broker.stop()
            redis_service.stop()
    result = {
        "lateness_p50_s": loaded["p50_s"],
        "lateness_p99_s": loaded["p99_s"],
        "idle_p50_s": idle["p50_s"],
        "idle_p99_s": idle["p99_s"],
        "p99_vs_idle": round(loaded["p99_s"] / idle["p99_s"], 2) if idle["p99_s"] else None,
        "breaches": loaded["breaches"],
    }
    print(json.dumps(result))
    return 0 if loaded["breaches"] == incidents * _BREACHES_PER_INCIDENT else 1
