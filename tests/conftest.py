"""Test harness: private redis-server and mosquitto on free loopback ports, unique key and
topic prefixes per test with broker accounts of their own, and the shared real-world data next
to the repository."""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from devices.batch import BatchWriter, IngestConfig
from devices.broker import BrokerLogin
from devices.ingest import IngestWorker
from devices.membership import client_id_for
from devices.quality import Limits
from devices.registry import UnknownDevicePolicy
from devices.subscriber import Subscriber
from devices.topics import uplink_filters
from dispatch.broker_accounts import BrokerAccounts
from dispatch.db import Database, upgrade
from dispatch.store import Store
from harness.center import center_accounts
from harness.daemons import ManagedMosquitto, ManagedRedis, ManagedService
from harness.postgres import ManagedPostgres

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; its absence is a failure, never a skip."""
    path = Path(os.environ.get("YIWANG_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}; set YIWANG_SHARED_DATA to its folder")
    return path


Service = TypeVar("Service", bound=ManagedService)


def _running(service: Service) -> Iterator[Service]:
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedRedis]:
    yield from _running(ManagedRedis(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedMosquitto]:
    yield from _running(ManagedMosquitto(tmp_path_factory.mktemp("mosquitto")))


_TEMPLATE = "yiwang_template"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedPostgres]:
    """A private PostgreSQL with a template database that has the schema applied."""
    service = ManagedPostgres(tmp_path_factory.mktemp("postgres"))
    service.start()
    db = Database(service.create_database(_TEMPLATE), max_size=1)
    upgrade(db)
    db.close()
    yield service
    service.remove()


@pytest.fixture
def database_url(postgres: ManagedPostgres, prefix: str) -> str:
    """A database of the test's own, copied from the template (milliseconds)."""
    return postgres.create_database(prefix, template=_TEMPLATE)


@pytest.fixture
def prefix() -> str:
    """A key prefix and MQTT topic root no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Logins:
    """Broker accounts for one test's topic root: the center's workers, the simulator (which
    may publish anything under the root, as the tests' devices do) and devices on demand."""

    broker: ManagedMosquitto
    root: str
    settings: dict[str, str]  # Settings fields that make the center's workers log in

    def worker(self, name: str) -> BrokerLogin:
        return BrokerLogin(
            "127.0.0.1",
            self.broker.port,
            self.settings[f"{name}_mqtt_username"],
            self.settings[f"{name}_mqtt_password"],
        )

    @property
    def simulator(self) -> tuple[str, str]:
        login = self.worker("simulator")
        return login.username or "", login.password or ""

    def device(self, device: str, officer: str) -> tuple[str, str]:
        """Issue a device's own credentials, confined to `{root}/{officer}/{device}`.

        Device accounts are the broker's, not the root's: one left by an earlier test that
        used the same serial is replaced.
        """
        password = secrets.token_urlsafe(12)
        with BrokerAccounts(self.broker.admin(), self.root) as accounts:
            accounts.revoke_device(device)
            accounts.issue_device(device, officer, device, password)
        return device, password


@pytest.fixture
def logins(broker: ManagedMosquitto, prefix: str) -> Logins:
    return Logins(broker, prefix, center_accounts(broker, prefix, prefix))


@pytest.fixture
def store(redis_service: ManagedRedis, prefix: str) -> Store:
    store = Store.from_url(redis_service.url, prefix)
    store.load_functions()
    return store


def ingest_config(root: str, **limits: float) -> IngestConfig:
    return IngestConfig(
        root=root,
        limits=Limits(**limits),  # type: ignore[arg-type]
        unknown_devices=UnknownDevicePolicy.REGISTER,
        # The replayed feeds register thousands of devices within seconds.
        registrations_per_min=1_000_000,
        batch_max=500,
        batch_wait_s=0.01,
    )


class RunningIngest:
    """An ingest worker on its own thread, stopped when the test ends."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)
        self.thread.start()
        if not worker.connected.wait(10):
            raise AssertionError("ingest did not connect to the test broker in 10 s")

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(10)


def session_left_behind(login: BrokerLogin, root: str, name: str) -> None:
    """The broker session of the ingest worker `name`, subscribed as the worker subscribes
    and dropped without leaving the shared subscription, as a worker that dies leaves it: the
    broker queues that session's share from now on, for the worker to drain when it starts."""
    session = Subscriber(login, client_id_for(name), session_expiry_s=600)
    subscribed = threading.Event()
    session.connect([(f, 1) for f in uplink_filters(root)], lambda _: subscribed.set())
    deadline = time.monotonic() + 10
    while not subscribed.is_set():
        assert time.monotonic() < deadline, f"the broker did not answer {name}'s SUBSCRIBE"
        session.read(0.1)
    session.close()


@pytest.fixture
def start_ingest(logins: Logins, store: Store, prefix: str) -> Iterator:
    running: list[RunningIngest] = []

    def start(
        config: IngestConfig | None = None, name: str = "ingest", **kwargs: object
    ) -> RunningIngest:
        worker = IngestWorker(
            BatchWriter(store.ingest, config or ingest_config(prefix)),
            broker=logins.worker("ingest"),
            # The broker's client ids are global: the test's prefix keeps them apart.
            name=f"{name}-{prefix}",
            roll=store.members,
            session_expiry_s=600,
            **kwargs,  # type: ignore[arg-type]
        )
        running.append(RunningIngest(worker))
        return running[-1]

    yield start
    for item in running:
        item.stop()
