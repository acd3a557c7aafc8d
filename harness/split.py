"""The center as separate processes — engine, ingest, history worker, archiver and API — over
project-managed Redis, Mosquitto and PostgreSQL, beside a simulated city on an accelerated
clock: what a test needs to kill -9 or stop one of them for real, and a bench to measure each
alone. Scaled out on one machine, several ingest workers share the subscription (each under a
name of its own) and several API nodes answer, each on a port of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatch.settings import Settings
from harness.center import (
    LocalCenter,
    as_environment,
    local_daemons,
    prepare_center,
    simulator_login,
)
from harness.daemons import ManagedMosquitto, ManagedRedis, free_port
from harness.postgres import ManagedPostgres
from simulators import cityfiles
from simulators.city import Behaviour, CityModel
from simulators.driver import Api, CityDriver
from simulators.incidents import DispatcherBot, DispatcherPlan, IncidentArrivals
from simulators.publisher import Publisher

# The API process also delivers orders to the officers' terminals: the city's officers act
# on them.
COMMANDS = {
    "engine": ["engine"],
    "ingest": ["ingest"],
    "history": ["history"],
    "archiver": ["archive"],
    "api": ["serve", "--workers", "delivery"],
    # Further API nodes are stateless: the first one delivers the orders.
    "api-node": ["serve", "--api-only"],
}


def scale_out(ingests: int, apis: int, ingest_name: str) -> list[tuple[str, str, dict[str, str]]]:
    """The processes beyond the first ingest worker and the first API: (name, command, its
    environment) each. Every further worker has a name of its own, so a client id and a share
    of its own (two with one name would take each other's session); every node a port."""
    workers = [
        (f"ingest-{n}", "ingest", {"YIWANG_INGEST_NAME": f"{ingest_name}-{n}"})
        for n in range(2, ingests + 1)
    ]
    nodes = [
        (f"api-{n}", "api-node", {"YIWANG_HTTP_PORT": str(free_port())}) for n in range(2, apis + 1)
    ]
    return workers + nodes


def pinned_anchor(rate: float, local_hour: int, zone: str, now: float) -> float:
    """The clock anchor that makes an accelerated clock read `local_hour`:00 (local, the next
    such hour) at `now`, so a simulated city's daily profile is the same at any hour of the day.
    The clock is anchor + (t - anchor) × rate; solved for the anchor at t = now."""
    here = datetime.fromtimestamp(now, ZoneInfo(zone))
    start = here.replace(hour=local_hour, minute=0, second=0, microsecond=0)
    if start.timestamp() <= now:
        start += timedelta(days=1)
    return (rate * now - start.timestamp()) / (rate - 1)


@dataclass
class SplitCenter:
    center: LocalCenter
    env: dict[str, str]
    redis: ManagedRedis
    broker: ManagedMosquitto
    postgres: ManagedPostgres
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_urls: dict[str, str] = field(default_factory=dict)  # API process → its base URL

    @property
    def settings(self) -> Settings:
        return self.center.settings

    def start(self, name: str, command: str | None = None, **env: str) -> None:
        """Start the process `name` running `command`'s CLI (by default the one named so)."""
        environment = {**self.env, **env}
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", *COMMANDS[command or name]],
            env=environment,
            # Their progress lines (a sealed segment, a ready banner) would drown the caller's.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if COMMANDS[command or name][0] == "serve":
            port = environment.get("YIWANG_HTTP_PORT", str(self.settings.http_port))
            self.api_urls[name] = f"http://{self.settings.http_host}:{port}"

    def terminate(self, name: str) -> None:
        """Stop `name` as an operator does (SIGTERM): an ingest worker leaves the shared
        subscription, storing and acknowledging what it holds, so its share goes to the others."""
        process = self.processes.pop(name)
        self.api_urls.pop(name, None)
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self, name: str) -> None:
        """kill -9: nothing is resigned, flushed or acknowledged."""
        process = self.processes.pop(name)
        self.api_urls.pop(name, None)
        process.kill()
        process.wait()

    def pids(self) -> dict[str, int]:
        return {
            **{name: p.pid for name, p in self.processes.items()},
            "redis": self.redis.process.pid,
            "mosquitto": self.broker.process.pid,
            "postgres": self.postgres.process.pid,
        }

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self.api_urls.clear()


@contextmanager
def split_center(
    settings: Settings, city_dir: Path, workdir: Path, *, ingests: int = 1, apis: int = 1
) -> Iterator[SplitCenter]:
    """The center with its engine, ingest, history worker, archiver and API each in its own
    process, with `ingests` ingest workers and `apis` API nodes; every API answers on leaving
    this block's first line."""
    with local_daemons(workdir) as daemons:
        update, center = prepare_center(settings, city_dir, daemons)
        given = {name: getattr(settings, name) for name in settings.model_fields_set}
        env = {**os.environ, **as_environment({**given, **update})}
        split = SplitCenter(center, env, *daemons)
        try:
            for name in ("engine", "ingest", "history", "archiver", "api"):
                split.start(name)
            ingest_name = settings.ingest_worker_name("ingest")
            for name, command, extra in scale_out(ingests, apis, ingest_name):
                split.start(name, command, **extra)
            for url in split.api_urls.values():
                wait_http(url)
            yield split
        finally:
            split.stop()


@contextmanager
def city_running(center: LocalCenter, *, per_hour: float, seed: int = 7) -> Iterator[CityDriver]:
    """The center's city, its officers on patrol, incidents arriving at `per_hour` (on the
    daily profile) and a simulated dispatcher, on a thread until the block ends."""
    settings = center.settings
    clock = settings.clock()
    city_dir = Path(str(settings.roster_file)).parent
    model = CityModel(
        cityfiles.load_sim_city(city_dir), behaviour=Behaviour(), seed=seed, now=clock()
    )
    login = simulator_login(settings)
    broker = (settings.mqtt_host, settings.mqtt_port)
    stop = threading.Event()
    with Publisher(*broker, client_id="split-city", login=login) as publisher:
        driver = CityDriver(
            model, Api(center.base_url, center.token), publisher, settings.topic_root, clock,
            broker, login=login,
            arrivals=IncidentArrivals(model.street_points(), per_hour=per_hour, seed=seed, now=clock()),
            dispatcher=DispatcherBot(DispatcherPlan(), seed),
        )  # fmt: skip
        city = threading.Thread(target=driver.run, args=(stop,), name="city", daemon=True)
        city.start()
        try:
            yield driver
        finally:
            stop.set()
            city.join(30)


def wait_http(base_url: str) -> None:
    """Wait for the API at `base_url` to answer its health check."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/api/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not answer at {base_url}")
