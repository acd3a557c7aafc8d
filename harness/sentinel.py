"""Redis in high availability on loopback: a primary, a replica and three sentinels, each a
`redis-server` process of ours, so a test can kill the primary and watch the fail-over.

The same shape as the compose file's redis-a, redis-b and sentinel-1..3.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from harness.daemons import ManagedRedis, ManagedService

SERVICE = "yiwang"  # the name the sentinels monitor the primary under
# Quick enough for a test to see a fail-over in seconds; production keeps Redis' defaults.
_DOWN_AFTER_MS = 1_000
_FAILOVER_TIMEOUT_MS = 10_000


class ManagedSentinel(ManagedService):
    name = "sentinel"
    binary = "redis-server"
    package = "redis-server"

    def __init__(self, workdir: Path, primary_port: int) -> None:
        super().__init__(workdir)
        self.primary_port = primary_port

    def config(self) -> str:
        # Sentinel rewrites this file as it learns the group; a fresh start forgets that.
        return (
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {_DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {_FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )

    def command(self, conf: Path) -> list[str]:
        return [str(conf), "--sentinel"]

    def ready(self, sock: socket.socket) -> bool:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")

    def primary_port_now(self) -> int | None:
        """The primary's port this sentinel names now; None if it does not answer."""
        try:
            with _client(self.port) as client:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
        except redis.RedisError:
            return None
        return int(address[1]) if address else None

    def knows_replicas(self) -> bool:
        try:
            with _client(self.port) as client:
                return bool(client.sentinel_slaves(SERVICE))
        except redis.RedisError:
            return False


class SentinelRedis:
    """One primary, one replica, three sentinels (quorum 2)."""

    def __init__(self, workdir: Path) -> None:
        first = ManagedRedis(workdir / "redis-a")
        self.nodes = [first, ManagedRedis(workdir / "redis-b", replica_of=first.port)]
        self.sentinels = [ManagedSentinel(workdir / f"sentinel-{n}", first.port) for n in (1, 2, 3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        wait_in_sync(self.nodes[0].port)
        for sentinel in self.sentinels:
            sentinel.start()
        _wait(
            lambda: all(s.knows_replicas() for s in self.sentinels),
            20.0,
            "the sentinels to see the replica",
        )

    def stop(self) -> None:
        for service in [*self.sentinels, *self.nodes]:
            service.stop()

    def primary(self) -> ManagedRedis:
        """The node the sentinels name primary now."""
        port = self._agreed_primary_port()
        return next(node for node in self.nodes if node.port == port)

    def wait_failover(self, old: ManagedRedis, timeout_s: float = 30.0) -> ManagedRedis:
        """Wait until every sentinel names another node primary and it takes writes."""
        _wait(
            lambda: (
                self._agreed_primary_port() not in (None, old.port)
                and _is_primary(self._agreed_primary_port() or 0)
            ),
            timeout_s,
            "the sentinels to promote the replica",
        )
        return self.primary()

    def rejoin(self, old: ManagedRedis) -> None:
        """Start a dead former primary again as a replica of the current one, in sync."""
        current = self.primary()
        old.replica_of = current.port
        old.start()
        wait_in_sync(current.port)

    def _agreed_primary_port(self) -> int | None:
        ports = {sentinel.primary_port_now() for sentinel in self.sentinels}
        return ports.pop() if len(ports) == 1 else None


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_in_sync(primary_port: int, timeout_s: float = 30.0) -> None:
    """Wait until every replica of the primary on `primary_port` is online and holds all of
    its writes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = _replication(primary_port)
        replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        if replicas and all(
            r["state"] == "online" and r["offset"] == info["master_repl_offset"] for r in replicas
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"replicas of 127.0.0.1:{primary_port} not in sync in {timeout_s:.0f} s")


def _is_primary(port: int) -> bool:
    return _replication(port).get("role") == "master"


def _replication(port: int) -> dict[str, Any]:
    """INFO replication of the node on `port`; empty when it does not answer."""
    try:
        with _client(port) as client:
            return dict(client.info("replication"))
    except redis.RedisError:
        return {}


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=1.0, decode_responses=True)
