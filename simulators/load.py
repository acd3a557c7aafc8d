"""Load generator: N devices reporting once a second, in a process of its own.

Device k of N sends its fix for second s at exactly s + k/N: the load is spread evenly over
the second, and anyone who sees the fix (its device and `tst`) knows when it was meant to
leave, with no clock field added to the payload. Many devices share each MQTT connection
(QoS 1, a bare client, see `RawPublisher`), so thousands of devices cost a few per cent of
a core rather than a thousand Python clients. How late the generator itself published is reported, so a benchmark can tell
its own lag from the system's.

    python -m simulators.load --port 1883 --devices 5000 --seconds 30   # prints JSON
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

PREFIX = "load"


def device_index(device: str) -> int | None:
    """k for a generated device name, None for any other device."""
    if not device.startswith(PREFIX):
        return None
    try:
        return int(device.removeprefix(PREFIX).split("/", 1)[0])
    except ValueError:
        return None


def sent_at(fix_at: int, k: int, devices: int) -> float:
    """When device k's fix for second `fix_at` was scheduled to leave."""
    return fix_at + k / devices


def clocked(second: int, rate: float, anchor: float) -> int:
    """The `tst` a device sends at wall second `second` on a center's clock running at `rate`
    from `anchor` (anchor + (t - anchor) × rate, as dispatch.settings defines it): what a center
    on an accelerated clock takes for now rather than hours ago or ahead."""
    return int(anchor + (second - anchor) * rate)


def payload(k: int, second: int, tick: int) -> bytes:
    # A grid around Jinhua, every device walking north at about 1 m/s.
    lon = 119.60 + (k % 100) * 1e-3
    lat = 29.05 + (k // 100) * 1e-3 + tick * 1e-5
    return b'{"_type":"location","lat":%.6f,"lon":%.6f,"tst":%d,"acc":5}' % (lat, lon, second)


class RawPublisher:
    """A bare MQTT 3.1.1 client over a socket: PUBLISH at QoS 1, PUBACKs counted by a reader
    thread. A few microseconds per message, where a full client library spends a hundred:
    the generator must not take the CPU the system under test needs."""

    def __init__(
        self, host: str, port: int, client_id: str, login: tuple[str, str] | None = None
    ) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # CONNECT: protocol "MQTT" level 4, clean session (+ username and password), 60 s.
        flags = 0x02 | (0xC0 if login else 0)
        body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c" + _string(client_id)
        if login:
            body += _string(login[0]) + _string(login[1])
        self.sock.sendall(b"\x10" + _length(len(body)) + body)
        connack = self.sock.recv(4)
        if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
            raise ConnectionError(
                f"{host}:{port} refused the connection (CONNACK {connack.hex()}): "
                "log in with the simulator's account"
            )
        self.acknowledged = 0
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def publish(self, topic: bytes, payload: bytes) -> None:
        self._next_id = self._next_id % 65535 + 1
        body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", self._next_id) + payload
        self.sock.sendall(b"\x32" + _length(len(body)) + body)

    def _read(self) -> None:
        # A publisher that never idles for the keep-alive gets nothing but PUBACKs (4 bytes).
        received = 0
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            received += len(chunk)
            self.acknowledged = received // 4

    def close(self) -> None:
        self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        self.sock.close()


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def run(
    host: str,
    port: int,
    root: str,
    devices: int,
    seconds: int,
    connections: int,
    start: int,
    login: tuple[str, str] | None = None,
    tst: Callable[[int], int] = int,
) -> dict[str, float]:
    clients = [RawPublisher(host, port, f"{root}-load-{n}", login) for n in range(connections)]
    topics = [f"{root}/{PREFIX}{k:05d}/{PREFIX}{k:05d}".encode() for k in range(devices)]
    lags = np.zeros(devices * seconds)
    sent = 0
    cpu_started = time.process_time()
    for tick in range(seconds):
        second = start + tick
        for k in range(devices):
            due = second + k / devices
            wait = due - time.time()
            if wait > 0.0005:
                time.sleep(wait)
            clients[k % connections].publish(topics[k], payload(k, tst(second), tick))
            lags[sent] = time.time() - due
            sent += 1
    cpu_s = time.process_time() - cpu_started
    deadline = time.monotonic() + 10
    while sum(c.acknowledged for c in clients) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    acknowledged = sum(c.acknowledged for c in clients)
    for client in clients:
        client.close()
    return {
        "sent": sent,
        "acknowledged": acknowledged,
        "lag_p50_ms": round(float(np.percentile(lags, 50)) * 1000, 2),
        "lag_p99_ms": round(float(np.percentile(lags, 99)) * 1000, 2),
        "cpu_share": round(cpu_s / seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--root", default="owntracks")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--start", type=int, help="epoch second of the first round (default: in 2 s)"
    )
    parser.add_argument(
        "--clock-rate", type=float, default=1.0, help="send tst on a center clock this fast"
    )
    parser.add_argument(
        "--clock-anchor", type=float, help="epoch second the center's clock counts from"
    )
    args = parser.parse_args(argv)
    start = args.start or math.ceil(time.time()) + 2
    # The simulator's broker account, from the environment as the center's workers take theirs
    # (never from the command line, where every user of the machine can read it).
    username = os.environ.get("YIWANG_SIMULATOR_MQTT_USERNAME")
    login = (username, os.environ.get("YIWANG_SIMULATOR_MQTT_PASSWORD", "")) if username else None
    rate, anchor = args.clock_rate, args.clock_anchor
    report = run(
        args.host, args.port, args.root, args.devices, args.seconds, args.connections, start,
        login, tst=int if anchor is None else lambda second: clocked(second, rate, anchor),
    )  # fmt: skip
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
