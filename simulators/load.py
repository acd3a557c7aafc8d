"""Load generator: N devices reporting once a second, in a process of its own.

Device k of N sends its fix for second s at exactly s + k/N: the load is spread evenly over
the second, and anyone who sees the fix (its device and `tst`) knows when it was meant to
leave, with no clock field added to the payload. Many devices share each MQTT connection
(QoS 1, a bare client, see `RawPublisher`), so thousands of devices cost a few per cent of
a core rather than a thousand Python clients. How late the generator itself published is reported, so a benchmark can tell
its own lag from the system's.

With `--resend` the devices behave as trackers that must not lose a fix (`ResendingPublisher`):
each connection keeps a persistent session, keeps every fix until the broker PUBACKs it,
connects again when the broker goes and sends the unacknowledged fixes again; the report
adds how many fixes of each device the broker acknowledged.

    python -m simulators.load --port 1883 --devices 5000 --seconds 30   # prints JSON
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import struct
import sys
import threading
import time
from collections import deque
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


def publish_rounds(
    publish: Callable[[int, bytes, bytes], None],
    root: str,
    devices: int,
    seconds: int,
    start: int,
    tst: Callable[[int], int] = int,
) -> np.ndarray:
    """Hand `publish(k, topic, payload)` each device's fix of each second when it is due
    (its `tst` the second as `tst` maps it); how late each was handed over, in seconds."""
    topics = [f"{root}/{PREFIX}{k:05d}/{PREFIX}{k:05d}".encode() for k in range(devices)]
    lags = np.zeros(devices * seconds)
    sent = 0
    for tick in range(seconds):
        second = start + tick
        for k in range(devices):
            due = second + k / devices
            wait = due - time.time()
            if wait > 0.0005:
                time.sleep(wait)
            publish(k, topics[k], payload(k, tst(second), tick))
            lags[sent] = time.time() - due
            sent += 1
    return lags


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
    cpu_started = time.process_time()
    lags = publish_rounds(
        lambda k, topic, body: clients[k % connections].publish(topic, body),
        root,
        devices,
        seconds,
        start,
        tst,
    )
    cpu_s = time.process_time() - cpu_started
    sent = len(lags)
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


# The fixes one connection may have sent and not yet had acknowledged; more wait their turn.
INFLIGHT_MAX = 1000
# How often a device tries its broker again while it is away: loopback, a few connections.
RECONNECT_EVERY_S = 0.1


class ResendingPublisher:
    """Devices multiplexed over one MQTT 3.1.1 connection that lose nothing they were not
    told the broker has: a persistent session (clean session off), every fix kept until its
    PUBACK, at most `inflight_max` unacknowledged on the wire and the rest queued behind
    them. When the broker goes, fixes queue; on the next connect the unacknowledged ones are
    sent again (DUP set, same packet ids) ahead of the queue. `acked[k]` counts device k's
    fixes the broker acknowledged, each once, however often it was sent.

    Only `publish`, `pump` and `close` send, from one thread; a reader thread per connection
    takes the PUBACKs, and the PUBACKs of a connection that has been replaced are ignored (its
    fixes are sent again and acknowledged on the new one).
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        acked: list[int],
        login: tuple[str, str] | None = None,
        *,
        inflight_max: int = INFLIGHT_MAX,
    ) -> None:
        self.address = (host, port)
        self.client_id = client_id
        self.login = login
        self.acked = acked
        self.inflight_max = inflight_max
        self.reconnects = 0
        self._lock = threading.Lock()
        # packet id -> (device, PUBLISH packet), in the order first sent
        self._inflight: dict[int, tuple[int, bytes]] = {}
        self._queued: deque[tuple[int, bytes, bytes]] = deque()  # (device, topic, payload)
        self._next_id = 0
        self._sock: socket.socket | None = None
        self._generation = 0
        self._retry_at = 0.0
        if not self._connect():
            raise ConnectionError(f"{host}:{port} did not take the connection {client_id}")

    @property
    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._inflight) + len(self._queued)

    def publish(self, device: int, topic: bytes, payload: bytes) -> None:
        self._queued.append((device, topic, payload))
        self.pump()

    def pump(self) -> None:
        """Connect again if the broker went and it is time to try, then send what the
        in-flight window has room for."""
        if self._sock is None:
            if time.monotonic() < self._retry_at:
                return
            if not self._connect():
                self._retry_at = time.monotonic() + RECONNECT_EVERY_S
                return
        sock, generation = self._sock, self._generation
        assert sock is not None
        packets = []
        with self._lock:
            while self._queued and len(self._inflight) < self.inflight_max:
                device, topic, payload = self._queued.popleft()
                packet_id = self._free_packet_id()
                body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", packet_id)
                packet = b"\x32" + _length(len(body) + len(payload)) + body + payload
                self._inflight[packet_id] = (device, packet)
                packets.append(packet)
        if packets:
            self._send(sock, generation, b"".join(packets))

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT: the broker keeps the session
            sock.close()

    def _free_packet_id(self) -> int:
        while True:
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._inflight:
                return self._next_id

    def _connect(self) -> bool:
        """Log in with the session kept and send every unacknowledged fix again."""
        try:
            sock = socket.create_connection(self.address, timeout=1.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            flags = 0xC0 if self.login else 0  # clean session off
            body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c" + _string(self.client_id)
            if self.login:
                body += _string(self.login[0]) + _string(self.login[1])
            sock.sendall(b"\x10" + _length(len(body)) + body)
            connack = _read_exactly(sock, 4)
        except OSError:
            return False
        if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
            sock.close()
            raise ConnectionError(
                f"{self.address} refused {self.client_id} (CONNACK {connack.hex()}): "
                "log in with the simulator's account"
            )
        sock.settimeout(None)
        with self._lock:
            self._generation += 1
            generation = self._generation
            # The DUP flag (0x08) on each first byte: the broker may have had it before.
            again = b"".join(b"\x3a" + packet[1:] for _, packet in self._inflight.values())
        if generation > 1:
            self.reconnects += 1
        self._sock = sock
        threading.Thread(target=self._read, args=(sock, generation), daemon=True).start()
        if again:
            self._send(sock, generation, again)
        return True

    def _send(self, sock: socket.socket, generation: int, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            self._lost(sock, generation)

    def _lost(self, sock: socket.socket, generation: int) -> None:
        with self._lock:
            if generation == self._generation and self._sock is sock:
                self._sock = None
                self._retry_at = 0.0
        sock.close()

    def _read(self, sock: socket.socket, generation: int) -> None:
        # Nothing but PUBACKs comes to a publisher without subscriptions: 0x40 0x02 id id.
        pending = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._lost(sock, generation)
                return
            pending += chunk
            whole = len(pending) - len(pending) % 4
            with self._lock:
                if generation != self._generation:
                    return
                for offset in range(0, whole, 4):
                    packet_id = int.from_bytes(pending[offset + 2 : offset + 4], "big")
                    sent = self._inflight.pop(packet_id, None)
                    if sent is not None:
                        self.acked[sent[0]] += 1
            pending = pending[whole:]


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("the broker closed the connection at login")
        data += chunk
    return data


def run_resending(
    host: str,
    port: int,
    root: str,
    devices: int,
    seconds: int,
    connections: int,
    start: int,
    login: tuple[str, str] | None = None,
    tst: Callable[[int], int] = int,
    *,
    drain_s: float = 30.0,
) -> dict[str, object]:
    """`run` with devices that send each fix until it is acknowledged (`ResendingPublisher`);
    waits up to `drain_s` after the last round for every fix's PUBACK."""
    acked = [0] * devices
    clients = [
        ResendingPublisher(host, port, f"{root}-load-{n}", acked, login) for n in range(connections)
    ]
    lags = publish_rounds(
        lambda k, topic, body: clients[k % connections].publish(k, topic, body),
        root,
        devices,
        seconds,
        start,
        tst,
    )
    deadline = time.monotonic() + drain_s
    while any(c.unacknowledged for c in clients) and time.monotonic() < deadline:
        for client in clients:
            client.pump()
        time.sleep(0.01)
    for client in clients:
        client.close()
    return {
        "sent": len(lags),
        "acknowledged": sum(acked),
        "unacknowledged": sum(c.unacknowledged for c in clients),
        "reconnects": sum(c.reconnects for c in clients),
        "lag_p50_ms": round(float(np.percentile(lags, 50)) * 1000, 2),
        "lag_max_ms": round(float(lags.max()) * 1000, 2),
        "acked_by_device": acked,
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
    parser.add_argument(
        "--resend",
        action="store_true",
        help="persistent sessions; every fix sent again until acknowledged (ResendingPublisher)",
    )
    args = parser.parse_args(argv)
    start = args.start or math.ceil(time.time()) + 2
    # The simulator's broker account, from the environment as the center's workers take theirs
    # (never from the command line, where every user of the machine can read it).
    username = os.environ.get("YIWANG_SIMULATOR_MQTT_USERNAME")
    login = (username, os.environ.get("YIWANG_SIMULATOR_MQTT_PASSWORD", "")) if username else None
    rate, anchor = args.clock_rate, args.clock_anchor
    publish = run_resending if args.resend else run
    report = publish(
        args.host, args.port, args.root, args.devices, args.seconds, args.connections, start,
        login, tst=int if anchor is None else lambda second: clocked(second, rate, anchor),
    )  # fmt: skip
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
