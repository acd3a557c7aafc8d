"""Redis fails over under load: the primary is killed with kill -9 while 2,000 devices report
once a second and 300 incidents run on their clocks. Every process reaches Redis through the
sentinels and the ingest and the engine wait for the replica, so the promoted replica holds
everything that was acknowledged: every fix is stored exactly once, every deadline fires
exactly once, and the API and a watching screen come back within seconds."""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as open_screen

from dispatch.core.access import Role
from dispatch.core.track import DeviceKey
from dispatch.store import Store, connect
from harness.center import as_environment
from harness.daemons import ManagedMosquitto, free_port
from harness.sentinel import SentinelRedis
from simulators import load
from tests.conftest import Logins
from tests.integration.engines import alerts, report
from tests.integration.helpers import bearer, wait_until

DEVICES, SECONDS, INCIDENTS = 2_000, 40, 300
KILL_AT_S = 12  # into the load
# Each incident warns and breaches on every clock while the load runs and just after: six
# alerts each, some before the kill and some after.
POLICY = {
    "respond_s": 20,
    "turn_out_s": 30,
    "handle_s": 45,
    "warn_at": 0.5,
    "accept_within_s": 600,
    "ladder": [[0, "notify_squad_leader"]],
}


@pytest.fixture()
def redis_group(tmp_path: Path) -> Iterator[SentinelRedis]:
    group = SentinelRedis(tmp_path / "redis")
    group.start()
    try:
        yield group
    finally:
        group.stop()


class ApiWatch(threading.Thread):
    """Asks the API for the open incidents ten times a second; keeps when it answered."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.request = urllib.request.Request(f"{base_url}/api/incidents?limit=1", headers=headers)
        self.answered: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            if _answers(self.request):
                self.answered.append(time.monotonic())

    def longest_gap_s(self) -> float:
        return max(b - a for a, b in zip(self.answered, self.answered[1:], strict=False))


class ScreenWatch(threading.Thread):
    """A screen on the live feed that reconnects from its last sequence whenever it is
    closed, as the console does."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.heard: list[float] = []  # when each message arrived
        self.newest_fix_at = 0
        self.closed: collections.Counter[str] = collections.Counter()  # by reason
        self.stop = threading.Event()

    def run(self) -> None:
        since: str | None = None
        while not self.stop.is_set():
            url = self.url + (f"?since={since}" if since else "")
            try:
                with open_screen(url, additional_headers=self.headers, max_size=None) as screen:
                    while not self.stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            since = self._take(json.loads(screen.recv(timeout=0.5))) or since
            except ConnectionClosed as exc:
                self.closed[exc.rcvd.reason.split(";")[0] if exc.rcvd else "no close frame"] += 1
                self.stop.wait(0.2)
            except OSError as exc:
                self.closed[type(exc).__name__] += 1
                self.stop.wait(0.2)

    def _take(self, message: dict) -> str | None:
        self.heard.append(time.monotonic())
        if message["type"] == "positions":
            self.newest_fix_at = max(self.newest_fix_at, *(row[3] for row in message["body"]))
        return message.get("seq")

    def longest_silence_s(self) -> float:
        return max(b - a for a, b in zip(self.heard, self.heard[1:], strict=False))


def stored_seconds(store: Store, k: int) -> list[int]:
    name = f"{load.PREFIX}{k:05d}"
    links = store.tracks.chain_links(DeviceKey(f"{name}/{name}"))
    return [json.loads(link.canonical)["fix_at"] for _, link, _ in links]


def test_a_killed_primary_loses_no_acknowledged_fix_and_fires_no_deadline_twice(
    redis_group: SentinelRedis,
    broker: ManagedMosquitto,
    logins: Logins,
    database_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({"default": POLICY}))
    http_port = free_port()
    env = {
        **os.environ,
        **as_environment(
            {
                "redis_url": redis_group.url,
                "redis_wait_replicas": 1,
                "redis_wait_timeout_ms": 1_000,
                "key_prefix": prefix,
                "topic_root": prefix,
                "mqtt_host": "127.0.0.1",
                "mqtt_port": broker.port,
                **logins.settings,
                "unknown_devices": "register",
                "registrations_per_min": 1_000_000,
                "database_url": database_url,
                "http_port": http_port,
                "policy_file": policy_file,
                "engine_lease_ms": 3_000,
                "data_dir": tmp_path / "var",
            }
        ),
    }
    store = Store(connect(redis_group.url), prefix)
    store.upgrade()
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, *command: str, **extra: str) -> None:
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", *command],
            env={**env, **extra},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{name}.log").open("wb"),
        )

    def leader() -> str | None:
        for name, process in processes.items():
            assert process.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
        return store.redis.get(store.keys.engine_lease)

    headers = bearer(database_url, Role.DISPATCHER, name="watcher")
    api = ApiWatch(f"http://127.0.0.1:{http_port}", headers)
    screen = ScreenWatch(f"ws://127.0.0.1:{http_port}/ws/live", headers)
    try:
        start("ingest", "ingest", YIWANG_INGEST_NAME="failover")
        start("engine-a", "engine", YIWANG_ENGINE_ID="engine-a")
        start("api", "serve", "--api-only")
        wait_until(lambda: leader() == "engine-a", 60, "engine-a to lead")
        start("engine-b", "engine", YIWANG_ENGINE_ID="engine-b")
        wait_until(lambda: _answers(api.request), 60, "the API")
        for n in range(INCIDENTS):
            report(store.incidents, f"INC-{n:03d}")
        api.start()
        screen.start()

        first_second = math.ceil(time.time()) + 2
        generator = subprocess.Popen(
            [
                *(sys.executable, "-m", "simulators.load", "--port", str(broker.port)),
                *("--root", prefix, "--devices", str(DEVICES), "--seconds", str(SECONDS)),
                *("--start", str(first_second)),
            ],
            env={
                **os.environ,
                "YIWANG_SIMULATOR_MQTT_USERNAME": logins.simulator[0],
                "YIWANG_SIMULATOR_MQTT_PASSWORD": logins.simulator[1],
            },
            stdout=subprocess.PIPE,
        )
        time.sleep(max(0.0, first_second + KILL_AT_S - time.time()))
        old = redis_group.primary()
        old.kill()
        killed_at = time.monotonic()
        redis_group.wait_failover(old)
        failover_s = time.monotonic() - killed_at
        redis_group.rejoin(old)
        rejoined_s = time.monotonic() - killed_at

        out, _ = generator.communicate(timeout=SECONDS + 60)
        generated = json.loads(out)
        assert generated["acknowledged"] == generated["sent"] == DEVICES * SECONDS

        every_second = list(range(first_second, first_second + SECONDS))
        wait_until(
            lambda: all(len(stored_seconds(store, k)) >= SECONDS for k in range(DEVICES)),
            60,
            "every fix stored",
        )
        wait_until(lambda: len(alerts(store.incidents)) >= 6 * INCIDENTS, 60, "every alert")
        time.sleep(1.0)  # nothing more may come
        stats = store.ingest.stats()
        fired = collections.Counter(
            (a["incident"], a["milestone"], a.get("level", 0)) for a in alerts(store.incidents)
        )
        screen_caught_up = screen.newest_fix_at
    finally:
        api.stop.set()
        screen.stop.set()
        for process in processes.values():
            process.kill()
            process.wait()

    wrong = [k for k in range(DEVICES) if stored_seconds(store, k) != every_second]
    print(
        f"\nfail-over {failover_s:.1f} s, old primary back as replica {rejoined_s:.1f} s; "
        f"API longest gap {api.longest_gap_s():.1f} s; screen closed {dict(screen.closed)}, "
        f"longest silence {screen.longest_silence_s():.1f} s; stored "
        f"{stats.get('accepted', 0)} of {DEVICES * SECONDS}, duplicates caught "
        f"{stats.get('rejected:duplicate', 0)}; alerts {len(fired)}, most per key "
        f"{max(fired.values())}"
    )
    assert not wrong, f"{len(wrong)} devices' stored seconds differ, e.g. load{wrong[0]:05d}"
    assert stats["accepted"] == DEVICES * SECONDS
    assert len(fired) == 6 * INCIDENTS and max(fired.values()) == 1
    assert api.longest_gap_s() < 10.0
    assert screen.longest_silence_s() < 15.0
    assert screen_caught_up == every_second[-1]


def _answers(request: urllib.request.Request) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
