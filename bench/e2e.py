"""Device → screen latency: from the moment a device publishes a fix to the moment a live-map
client receives it over the WebSocket, for the whole system on this machine.

Per load (1,000 and 5,000 devices × 1 Hz by default), two phases on fresh services:
- baseline: the generator and one plain MQTT subscriber on the broker, nothing of ours: the
  floor any MQTT system starts from;
- yiwang: Redis, Mosquitto, `yiwang ingest`, `yiwang engine` and `yiwang serve --api-only`
  as separate processes, with 10 live-feed clients on `/ws/live`.
Each fix's send time is known from its device and `tst` (see simulators/load.py). Where the
time goes: publish → entry in the screens' stream (its id is Redis' clock at XADD) and stream
→ client; plus the generator's own lag and each process's CPU share. Last line: JSON.
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
import urllib.request
from pathlib import Path

import msgspec
import numpy as np
import paho.mqtt.client as mqtt
import websockets

from dispatch.settings import Settings
from harness.center import as_environment, center_accounts, demo_accounts
from harness.daemons import ManagedMosquitto, ManagedRedis, free_port
from harness.postgres import ManagedPostgres
from simulators.load import device_index, sent_at

_WARMUP_S = 5
_CLIENTS = 10


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


def _baseline(broker: ManagedMosquitto, devices: int, seconds: int) -> dict[str, float]:
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
                via_stream.append(stream_at - sent)
                to_client.append(now - stream_at)
    out["total"] += total
    out["via_stream"] += via_stream
    out["to_client"] += to_client
    out["received"].append(len(seen))


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _system(tmp: Path, devices: int, seconds: int) -> dict[str, object]:
    redis_service, broker = (
        ManagedRedis(tmp / f"redis{devices}"),
        ManagedMosquitto(tmp / f"mqtt{devices}"),
    )
    postgres = ManagedPostgres(tmp / f"postgres{devices}")
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
    }
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "dispatch.cli", *command], env=env, stderr=subprocess.DEVNULL)
        for name, command in (("ingest", ["ingest"]), ("engine", ["engine"]), ("api", ["serve", "--api-only"]))
    }  # fmt: skip
    try:
        _wait_http(port)
        start = math.ceil(time.time()) + 4
        out: dict = {"total": [], "via_stream": [], "to_client": [], "received": []}
        out["ready"] = threading.Event()
        url = f"ws://127.0.0.1:{port}/ws/live?types=positions"

        async def screens() -> None:
            await asyncio.gather(
                *(_screen(url, token, start, seconds, devices, out) for _ in range(_CLIENTS))
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
        cpu_before = {n: _cpu_s(pid) for n, pid in pids.items()}
        screens_cpu = time.process_time()
        generator = _generator(broker.port, "owntracks", devices, seconds, start, accounts)
        generated = json.loads(
            generator.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1]
        )
        cpu = {n: round((_cpu_s(pid) - cpu_before[n]) / seconds, 2) for n, pid in pids.items()}
        cpu["screens"] = round((time.process_time() - screens_cpu) / seconds, 2)
        watcher.join(timeout=seconds + 30)
        gc.enable()
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
        "lost": sum(expected - r for r in out["received"]),
        "deliveries": len(out["total"]),
        "to_stream_p99_ms": _percentiles(out["via_stream"])["p99_ms"],
        "stream_to_client_p99_ms": _percentiles(out["to_client"])["p99_ms"],
        "generator": generated,
        "cpu_cores": cpu,
    }


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer on port {port}")


def main(loads: tuple[int, ...] = (1_000, 5_000), seconds: int = 30) -> int:
    results: dict[str, object] = {}
    print(
        f"e2e bench: devices × 1 Hz for {seconds} s, first {_WARMUP_S} s not counted, {_CLIENTS} live-feed clients"
    )
    with tempfile.TemporaryDirectory(prefix="yiwang-e2e-") as tmp:
        for devices in loads:
            broker = ManagedMosquitto(Path(tmp) / f"base{devices}")
            broker.start()
            try:
                base = _baseline(broker, devices, seconds)
            finally:
                broker.stop()
            ours = _system(Path(tmp), devices, seconds)
            ratio = round(ours["p99_ms"] / base["p99_ms"], 1) if base["p99_ms"] else None
            print(
                f"  {devices:>5,} devices  yiwang p50 {ours['p50_ms']} ms  p99 {ours['p99_ms']} ms  "
                f"p99.9 {ours['p999_ms']} ms  lost {ours['lost']} of {ours['deliveries'] + ours['lost']}  |  "
                f"broker alone p99 {base['p99_ms']} ms (×{ratio})"
            )
            print(
                f"         where: publish→stream p99 {ours['to_stream_p99_ms']} ms, stream→client p99 "
                f"{ours['stream_to_client_p99_ms']} ms; generator lag p99 {ours['generator']['lag_p99_ms']} ms; "
                f"CPU cores {ours['cpu_cores']}"
            )
            results[str(devices)] = {**ours, "baseline": base, "p99_vs_broker": ratio}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
