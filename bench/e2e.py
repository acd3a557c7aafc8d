"""Device → screen latency: from the moment a device publishes a fix to the moment a live-map
client receives it over the WebSocket, for the whole system on this machine.

The pipeline's capacity is measured first (a broker queue drained into Redis); the loads are
25 %, 50 %, 75 % and 120 % of it, devices × 1 Hz, each in two phases on fresh services:
- baseline: the generator and one plain MQTT subscriber on the broker, nothing of ours: the
  floor any MQTT system starts from;
- yiwang: Redis, Mosquitto, `yiwang ingest`, `yiwang engine` and `yiwang serve --api-only`
  as separate processes, with 10 live-feed clients on `/ws/live` (scaled out, several ingest
  workers on the shared subscription and several API nodes, the clients spread over them:
  `yiwang bench scale`).
Each fix's send time is known from its device and `tst` (see simulators/load.py). Where the
time goes: publish → entry in the screens' stream (its id is Redis' clock at XADD) and stream
→ client; plus the generator's own lag and each process's CPU share. "Live" latency counts
only fixes that move a device's shown position forward: an ingest that lags shows each
device's newest fix first and stores the superseded ones as backfill, which no screen shows
(they are counted as stored, not as lost). Last line: JSON.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import paho.mqtt.client as mqtt
import websockets

from bench.ingest import bench_logins, location_messages, measure_pipeline
from dispatch.settings import Settings
from dispatch.store import Store
from harness.center import as_environment, center_accounts, demo_accounts
from harness.daemons import ManagedMosquitto, ManagedRedis, free_port
from harness.postgres import ManagedPostgres
from harness.split import COMMANDS, scale_out, wait_http
from simulators.load import device_index, sent_at

_WARMUP_S = 5
_CLIENTS = 10
_DRAIN_TIMEOUT_S = 180.0
# Load points as shares of the pipeline's own capacity, measured first in the same run, so
# figures compare across machines; the last one overloads it for longer.
_LOAD_SHARES = (0.25, 0.50, 0.75, 1.20)
_CAPACITY_MESSAGES = 40_000


def _percentiles(values: list[float]) -> dict[str, float]:
    data = np.array(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(data, 50)), 1),
        "p99_ms": round(float(np.percentile(data, 99)), 1),
        "p999_ms": round(float(np.percentile(data, 99.9)), 1),
    }


def _generator(
    port: int, root: str, devices: int, seconds: int, start: int, env: dict[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulators.load", "--port", str(port), "--root", root,
         "--devices", str(devices), "--seconds", str(seconds), "--start", str(start)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip


def _accounts(broker: ManagedMosquitto, root: str, devices: int) -> dict[str, str]:
    """The center's and the load generator's accounts; every generated device registers."""
    return as_environment(
        {
            **center_accounts(broker, root, root),
            "unknown_devices": "register",
            "registrations_per_min": devices,
        }
    )


def _counted(fix_at: int, start: int, seconds: int) -> bool:
    return start + _WARMUP_S <= fix_at < start + seconds


def broker_alone(broker: ManagedMosquitto, devices: int, seconds: int) -> dict[str, float]:
    """Publish → delivery latency of a plain MQTT subscriber: the floor of any MQTT system."""
    root = f"base{devices}"
    latencies: list[float] = []
    start = math.ceil(time.time()) + 3

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        fix = msgspec.json.decode(message.payload)
        k = device_index(message.topic.split("/")[-1])
        if k is not None and _counted(fix["tst"], start, seconds):
            latencies.append(now - sent_at(fix["tst"], k, devices))

    env = _accounts(broker, root, devices)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{root}-screen")
    client.username_pw_set(
        env["YIWANG_SIMULATOR_MQTT_USERNAME"], env["YIWANG_SIMULATOR_MQTT_PASSWORD"]
    )
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(f"{root}/+/+", qos=1)
    client.loop_start()
    generator = _generator(broker.port, root, devices, seconds, start, env)
    generator.communicate(timeout=seconds + 60)
    time.sleep(2)
    client.disconnect()
    client.loop_stop()
    expected = devices * (seconds - _WARMUP_S)
    return {**_percentiles(latencies), "lost": expected - len(latencies)}


async def _screen(url: str, token: str, start: int, seconds: int, devices: int, out: dict) -> None:
    seen: set[tuple[int, int]] = set()
    newest_shown: dict[int, int] = {}
    live: list[float] = []
    total: list[float] = []
    via_stream: list[float] = []
    to_client: list[float] = []
    decoder = msgspec.json.Decoder()
    headers = {"authorization": f"Bearer {token}"}
    async with websockets.connect(url, max_size=None, additional_headers=headers) as socket:
        snapshot = decoder.decode(await socket.recv())
        assert snapshot["type"] == "snapshot"
        out["ready"].set()
        deadline = start + seconds + 5
        while time.time() < deadline:
            try:
                text = await asyncio.wait_for(socket.recv(), timeout=1.0)
            except TimeoutError:
                continue
            now = time.time()
            event = decoder.decode(text)
            if event["type"] != "positions":
                continue
            stream_at = int(event["seq"].split("-")[0]) / 1000
            for dev, _lon, _lat, fix_at, *_rest in event["body"]:
                k = device_index(dev)
                if k is None or not _counted(fix_at, start, seconds) or (k, fix_at) in seen:
                    continue
                seen.add((k, fix_at))
                sent = sent_at(fix_at, k, devices)
                total.append(now - sent)
                if fix_at > newest_shown.get(k, 0):
                    newest_shown[k] = fix_at
                    live.append(now - sent)
                via_stream.append(stream_at - sent)
                to_client.append(now - stream_at)
    out["total"] += total
    out["live"] += live
    out["via_stream"] += via_stream
    out["to_client"] += to_client
    out["received"].append(len(seen))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_center(
    tmp: Path, devices: int, seconds: int, *, ingests: int = 1, apis: int = 1
) -> dict[str, object]:
    """Publish → screen latency through the center as processes, with `ingests` ingest
    workers and `apis` API nodes (the live-feed clients spread over them), on fresh services."""
    folder = tmp / f"center{devices}-{ingests}x{apis}"
    redis_service, broker = ManagedRedis(folder / "redis"), ManagedMosquitto(folder / "mqtt")
    postgres = ManagedPostgres(folder / "postgres")
    redis_service.start()
    broker.start()
    postgres.start()
    port = free_port()
    accounts = _accounts(broker, "owntracks", devices)
    database_url = postgres.database_url("postgres")
    _, token = demo_accounts(
        Settings(redis_url=redis_service.url, database_url=database_url), "bench-officer"
    )
    env = {
        **os.environ,
        **accounts,
        "YIWANG_REDIS_URL": redis_service.url,
        "YIWANG_DATABASE_URL": database_url,
        "YIWANG_MQTT_PORT": str(broker.port),
        "YIWANG_HTTP_PORT": str(port),
        "YIWANG_TOPIC_ROOT": "owntracks",
        "YIWANG_ENGINE_ID": "e2e-engine",
        "YIWANG_INGEST_NAME": "e2e-ingest",
    }
    started = [("ingest", "ingest", {}), ("engine", "engine", {}),
               ("api", "api-node", {"YIWANG_HTTP_PORT": str(port)}),
               *scale_out(ingests, apis, "e2e-ingest")]  # fmt: skip
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "dispatch.cli", *COMMANDS[command]],
                               env={**env, **extra}, stderr=subprocess.DEVNULL)
        for name, command, extra in started
    }  # fmt: skip
    ports = [
        int(extra["YIWANG_HTTP_PORT"]) for _, command, extra in started if command == "api-node"
    ]
    try:
        for node in ports:
            wait_http(f"http://127.0.0.1:{node}")
        start = math.ceil(time.time()) + 4
        out: dict = {"total": [], "live": [], "via_stream": [], "to_client": [], "received": []}
        out["ready"] = threading.Event()
        urls = [f"ws://127.0.0.1:{node}/ws/live?types=positions" for node in ports]

        async def screens() -> None:
            await asyncio.gather(
                *(
                    _screen(urls[n % len(urls)], token, start, seconds, devices, out)
                    for n in range(_CLIENTS)
                )
            )

        # The measuring clients keep every sample: no collector pauses in the instrument.
        gc.disable()
        watcher = threading.Thread(target=asyncio.run, args=(screens(),))
        watcher.start()
        out["ready"].wait(30)
        pids = {
            **{n: p.pid for n, p in processes.items()},
            "redis": redis_service.process.pid,
            "mosquitto": broker.process.pid,
        }
        cpu_before = {n: cpu_seconds(pid) for n, pid in pids.items()}
        screens_cpu = time.process_time()
        generator = _generator(broker.port, "owntracks", devices, seconds, start, accounts)
        generated = json.loads(
            generator.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1]
        )
        cpu = {n: round((cpu_seconds(pid) - cpu_before[n]) / seconds, 2) for n, pid in pids.items()}
        cpu["screens"] = round((time.process_time() - screens_cpu) / seconds, 2)
        watcher.join(timeout=seconds + 30)
        gc.enable()
        stored = _stored(Store.from_url(redis_service.url), generated["acknowledged"])
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(10)
        broker.stop()
        postgres.remove()
        redis_service.stop()
    expected = devices * (seconds - _WARMUP_S)
    return {
        **_percentiles(out["total"]),
        "live_p99_ms": _percentiles(out["live"])["p99_ms"],
        "stored": stored,
        "not_shown": sum(expected - r for r in out["received"]),
        "deliveries": len(out["total"]),
        "to_stream_p99_ms": _percentiles(out["via_stream"])["p99_ms"],
        "stream_to_client_p99_ms": _percentiles(out["to_client"])["p99_ms"],
        "generator": generated,
        "cpu_cores": cpu,
    }


def _stored(store: Store, published: int) -> dict[str, int]:
    """Wait until the ingest has a verdict for every published fix; how many were stored,
    refused, and stored twice (a duplicate verdict means a redelivery was caught)."""
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        stats = store.ingest.stats()
        rejected = sum(v for k, v in stats.items() if k.startswith("rejected:"))
        if stats.get("accepted", 0) + rejected >= published:
            break
        time.sleep(0.2)
    return {
        "published": published,
        "accepted": stats.get("accepted", 0),
        "backfill": stats.get("backfill", 0),
        "rejected": rejected,
        "duplicates": stats.get("rejected:duplicate", 0),
    }


def _capacity(tmp: Path) -> float:
    """The ingest pipeline's fixes per second on this machine: a broker queue drained into
    Redis, as `yiwang bench ingest` measures it."""
    redis_service, broker = ManagedRedis(tmp / "cap-redis"), ManagedMosquitto(tmp / "cap-mqtt")
    redis_service.start()
    broker.start()
    try:
        store = Store.from_url(redis_service.url, "capacity")
        store.load_functions()
        login, simulator = bench_logins(broker)
        load = location_messages(_CAPACITY_MESSAGES, 2_000, time.time())
        rate, _lost, _profile = measure_pipeline(login, store, load, simulator, profile=False)
        return rate
    finally:
        broker.stop()
        redis_service.stop()


def main(seconds: int = 30, overload_seconds: int = 60) -> int:
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="yiwang-e2e-") as tmp:
        capacity = _capacity(Path(tmp))
        print(
            f"e2e bench: pipeline capacity {capacity:,.0f} fixes/s; devices × 1 Hz at "
            f"{', '.join(f'{share:.0%}' for share in _LOAD_SHARES)} of it, {seconds} s each "
            f"({overload_seconds} s above 100 %), first {_WARMUP_S} s not counted, "
            f"{_CLIENTS} live-feed clients"
        )
        results["capacity_per_s"] = round(capacity)
        for share in _LOAD_SHARES:
            devices = round(capacity * share)
            phase_s = overload_seconds if share > 1 else seconds
            broker = ManagedMosquitto(Path(tmp) / f"base{devices}")
            broker.start()
            try:
                base = broker_alone(broker, devices, phase_s)
            finally:
                broker.stop()
            ours = through_center(Path(tmp), devices, phase_s)
            ratio = round(ours["p99_ms"] / base["p99_ms"], 1) if base["p99_ms"] else None
            stored = ours["stored"]
            print(
                f"  {share:>4.0%} {devices:>6,} devices  p50 {ours['p50_ms']} ms  p99 {ours['p99_ms']} ms  "
                f"live p99 {ours['live_p99_ms']} ms  |  broker alone p99 {base['p99_ms']} ms (×{ratio})"
            )
            print(
                f"         stored {stored['accepted']:,} of {stored['published']:,} "
                f"({stored['backfill']:,} as backfill, {stored['rejected']} refused, "
                f"{stored['duplicates']} duplicates); publish→stream p99 {ours['to_stream_p99_ms']} ms, "
                f"stream→client p99 {ours['stream_to_client_p99_ms']} ms; generator lag p99 "
                f"{ours['generator']['lag_p99_ms']} ms; CPU cores {ours['cpu_cores']}"
            )
            results[f"{share:.0%}"] = {
                **ours,
                "devices": devices,
                "baseline": base,
                "p99_vs_broker": ratio,
            }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
