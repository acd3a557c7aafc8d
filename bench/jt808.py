"""JT/T 808 throughput: locations through the gateway against the MQTT ingest, same run, same
Redis, same batch writer behind both.

The MQTT path is measured as `bench.ingest` measures it (the broker's queue drained by the
ingest worker). The gateway runs as `yiwang jt808` in a process of its own; D terminals,
authenticated beforehand, send their N reports pipelined over raw sockets from this process,
and the clock runs from the first report sent to the last general response received. Every
response must say success and every report must have its verdict in Redis. Last line: JSON.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.ingest import bench_logins, location_messages, measure_pipeline
from devices.jt808.messages import (
    STATUS_LOCATED,
    Authentication,
    LocationReport,
    PlatformResponse,
    Result,
    encode_message,
)
from devices.jt808.stream import Decoded, StreamDecoder
from devices.jt808.terminals import Terminal
from devices.registry import make_binding
from devices.topics import DEFAULT_ROOT
from dispatch.store import Store
from harness.daemons import ManagedMosquitto, ManagedRedis, free_port

_PREFIX = "benchjt808"
_START_TIMEOUT_S = 30.0
_DRAIN_TIMEOUT_S = 300.0
_BEIJING = timedelta(hours=8)


def _phone(n: int) -> str:
    return f"0139{n:08d}"


def _reports(count: int, devices: int, now: float) -> dict[str, bytes]:
    """Each terminal's reports as one byte string of frames, a second apart, moving slowly."""
    per_device = -(-count // devices)
    frames: dict[str, list[bytes]] = {_phone(d): [] for d in range(devices)}
    for n in range(count):
        dev, step = n % devices, n // devices
        local = datetime.fromtimestamp(int(now) - per_device + step, UTC) + _BEIJING
        report = LocationReport(
            alarm=0,
            status=STATUS_LOCATED,
            lon=round(119.60 + dev * 1e-4 + step * 2e-5, 6),
            lat=round(29.05 + dev * 1e-4 + step * 2e-5, 6),
            altitude_m=40,
            speed_kmh=5.0,
            course_deg=90,
            local_time=local.replace(tzinfo=None),
        )
        phone = _phone(dev)
        frames[phone].append(encode_message(report, phone=phone, serial=(step + 2) & 0xFFFF))
    return {phone: b"".join(items) for phone, items in frames.items()}


def _prepare_terminals(store: Store, devices: int) -> None:
    """Bind and register every terminal, as `yiwang devices bind` and a registration would."""
    store.registry.bind(
        [make_binding(device=_phone(d), officer=f"officer{d}", team="t1") for d in range(devices)]
    )
    for d in range(devices):
        store.terminals.save(Terminal(_phone(d), auth_code=f"code{d}"))


def _start_gateway(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "YIWANG_REDIS_URL": redis_url,
        "YIWANG_KEY_PREFIX": _PREFIX,
        "YIWANG_JT808_HOST": "127.0.0.1",
        "YIWANG_JT808_PORT": str(port),
        "YIWANG_TOPIC_ROOT": DEFAULT_ROOT,
    }
    gateway = subprocess.Popen(
        [sys.executable, "-m", "dispatch.cli", "jt808"], env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return gateway
        except OSError:
            time.sleep(0.1)
    gateway.kill()
    raise RuntimeError(f"yiwang jt808 did not listen on port {port} in {_START_TIMEOUT_S:.0f} s")


class _Connection:
    def __init__(self, port: int, phone: str, code: str, frames: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(encode_message(Authentication(code), phone=phone, serial=1))
        self.decoder = StreamDecoder()
        answer = self._read_one()
        if answer.result is not Result.SUCCESS:
            raise RuntimeError(f"terminal {phone} was not authenticated: {answer}")
        self.sock.setblocking(False)
        self.outgoing = memoryview(frames)
        self.expected = frames.count(b"\x7e") // 2
        self.answered = 0
        self.failed = 0

    def _read_one(self) -> PlatformResponse:
        while True:
            for item in self.decoder.feed(self.sock.recv(4096)):
                if isinstance(item, Decoded) and isinstance(item.message, PlatformResponse):
                    return item.message

    def write(self) -> None:
        sent = self.sock.send(self.outgoing[:65536])
        self.outgoing = self.outgoing[sent:]

    def read(self) -> None:
        for item in self.decoder.feed(self.sock.recv(65536)):
            if isinstance(item, Decoded) and isinstance(item.message, PlatformResponse):
                self.answered += 1
                self.failed += item.message.result is not Result.SUCCESS

    @property
    def done(self) -> bool:
        return self.answered >= self.expected


def measure_gateway(port: int, reports: dict[str, bytes]) -> tuple[float, int, int]:
    """Reports per second from the first sent to the last answered; answers and failures."""
    codes = {_phone(d): f"code{d}" for d in range(len(reports))}
    connections = [_Connection(port, p, codes[p], frames) for p, frames in reports.items()]
    selector = selectors.DefaultSelector()
    for connection in connections:
        selector.register(connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
    started = time.perf_counter()
    deadline = started + _DRAIN_TIMEOUT_S
    waiting = len(connections)
    while waiting and time.perf_counter() < deadline:
        for key, events in selector.select(timeout=1.0):
            connection = key.data
            if events & selectors.EVENT_WRITE:
                connection.write()
                if not connection.outgoing:
                    selector.modify(connection.sock, selectors.EVENT_READ, connection)
            if events & selectors.EVENT_READ:
                connection.read()
                if connection.done:
                    selector.unregister(connection.sock)
                    waiting -= 1
    elapsed = time.perf_counter() - started
    answered = sum(c.answered for c in connections)
    failed = sum(c.failed for c in connections)
    for connection in connections:
        connection.sock.close()
    return answered / elapsed, answered, failed


def _verdicts(store: Store) -> int:
    stats = store.ingest.stats()
    return sum(v for k, v in stats.items() if k == "accepted" or k.startswith("rejected:"))


def main(messages: int = 100_000, devices: int = 2_000, profile: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-") as tmp:
        redis_service = ManagedRedis(Path(tmp) / "redis")
        broker = ManagedMosquitto(Path(tmp) / "mosquitto")
        redis_service.start()
        broker.start()
        gateway = None
        try:
            now = time.time()
            print(f"jt808 bench: {messages} locations from {devices} devices, each path")
            mqtt_store = Store.from_url(redis_service.url, "bench")
            mqtt_store.load_functions()
            ingest, simulator = bench_logins(broker)
            load = location_messages(messages, devices, now)
            mqtt_per_s, mqtt_lost, profile_text = measure_pipeline(
                ingest, mqtt_store, load, simulator, profile
            )
            print(f"  MQTT ingest pipeline   {mqtt_per_s:10,.0f} msg/s  (lost {mqtt_lost})")

            store = Store.from_url(redis_service.url, _PREFIX)
            store.load_functions()
            _prepare_terminals(store, devices)
            port = free_port()
            gateway = _start_gateway(redis_service.url, port)
            gateway_per_s, answered, failed = measure_gateway(
                port, _reports(messages, devices, now)
            )
            gateway_lost = messages - min(answered - failed, _verdicts(store))
            print(
                f"  JT/T 808 gateway       {gateway_per_s:10,.0f} msg/s  (lost {gateway_lost}, "
                f"{failed} answered as failed)"
            )
            print(f"  ratio                  {gateway_per_s / mqtt_per_s:10.2f}")
            if profile_text:
                print(profile_text)
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait(10)
            broker.stop()
            redis_service.stop()
    result = {
        "gateway_per_s": round(gateway_per_s),
        "mqtt_per_s": round(mqtt_per_s),
        "ratio": round(gateway_per_s / mqtt_per_s, 3),
        "lost": gateway_lost + mqtt_lost,
    }
    print(json.dumps(result))
    return 0 if result["lost"] == 0 else 1
