"""Test harness: private redis-server and mosquitto on free loopback ports, unique key and
topic prefixes per test, and the shared real-world data next to the repository."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from devices.batch import BatchWriter, IngestConfig
from devices.ingest import IngestWorker
from devices.quality import Limits
from devices.registry import UnknownDevicePolicy
from dispatch.db import Database, upgrade
from dispatch.store import Store
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


@pytest.fixture
def start_ingest(broker: ManagedMosquitto, store: Store, prefix: str) -> Iterator:
    running: list[RunningIngest] = []

    def start(config: IngestConfig | None = None, **kwargs: object) -> RunningIngest:
        worker = IngestWorker(
            BatchWriter(store.ingest, config or ingest_config(prefix)),
            host="127.0.0.1",
            port=broker.port,
            client_id=f"ingest-{prefix}",
            session_expiry_s=600,
            **kwargs,  # type: ignore[arg-type]
        )
        running.append(RunningIngest(worker))
        return running[-1]

    yield start
    for item in running:
        item.stop()
