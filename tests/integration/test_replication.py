"""Writes that count as stored only once a replica holds them (Redis WAIT), over a real
primary and replica: a fix the ingest acknowledges and a step the engine settles survive the
primary's death, and a replica that stops answering turns into an error, never a false "stored"."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from devices.batch import BatchWriter, Received
from dispatch.core.step import EngineStep
from dispatch.store import Durability, NotReplicated, Store, connect
from harness.daemons import ManagedRedis
from harness.sentinel import wait_in_sync
from tests.conftest import ingest_config

DEVICE = "u1/d1"
# Long enough for a replica on a busy machine to confirm; a frozen one costs each test this.
WAIT_MS = 1_500


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[tuple[ManagedRedis, ManagedRedis]]:
    primary = ManagedRedis(tmp_path / "primary")
    replica = ManagedRedis(tmp_path / "replica", replica_of=primary.port)
    primary.start()
    replica.start()
    try:
        wait_in_sync(primary.port)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


@contextmanager
def stopped(service: ManagedRedis) -> Iterator[None]:
    """The process frozen (SIGSTOP): alive to the primary's socket, answering nothing."""
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(service.process.pid, signal.SIGCONT)


def store_on(primary: ManagedRedis) -> Store:
    store = Store(connect(primary.url), "replicated", Durability(1, timeout_ms=WAIT_MS))
    store.upgrade()
    return store


def fix(tst: int) -> Received:
    payload = {"_type": "location", "lon": 119.65, "lat": 29.08 + (tst % 60) * 1e-5, "tst": tst}
    return Received(tst, 1, f"owntracks/{DEVICE}", json.dumps(payload).encode(), time.time())


def stored_fix_at(client: redis.Redis, store: Store) -> str | None:
    value = client.hget(store.keys.device(DEVICE), "fix_at")
    return None if value is None else str(value)


def test_an_acknowledged_batch_is_on_the_replica_and_one_it_cannot_confirm_raises(
    pair: tuple[ManagedRedis, ManagedRedis],
) -> None:
    primary, replica = pair
    store = store_on(primary)
    replica_client = redis.Redis(port=replica.port, decode_responses=True)
    now = int(time.time())
    writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=time.time)

    writer.write([fix(now - 10)])
    # Returned means acknowledged: the replica already holds it, without waiting for it.
    assert stored_fix_at(replica_client, store) == str(now - 10)

    with stopped(replica):
        started = time.monotonic()
        with pytest.raises(NotReplicated, match="0 of 1 Redis replicas"):
            writer.write([fix(now - 5)])
        waited_s = time.monotonic() - started
    # On the primary, so a resend is caught as a copy once the replica is back.
    assert stored_fix_at(store.redis, store) == str(now - 5)
    assert WAIT_MS / 1000 - 0.05 < waited_s < WAIT_MS / 1000 + 5.0
    # The writer still works after the failed confirmation: the connection was not poisoned.
    writer.forget()
    writer.write([fix(now - 1)])
    assert stored_fix_at(replica_client, store) == str(now - 1)


def test_an_engine_step_the_replica_cannot_confirm_raises_and_a_confirmed_one_is_there(
    pair: tuple[ManagedRedis, ManagedRedis],
) -> None:
    primary, replica = pair
    store = store_on(primary)
    replica_client = redis.Redis(port=replica.port, decode_responses=True)
    assert store.incidents.try_lead("engine-a", 8_000)

    assert store.incidents.apply(EngineStep(deadlines={"I-1": 100.0}), "engine-a", zone="UTC")
    assert replica_client.zscore(store.keys.deadlines, "I-1") == 100.0

    with stopped(replica), pytest.raises(NotReplicated):
        store.incidents.apply(EngineStep(deadlines={"I-2": 200.0}), "engine-a", zone="UTC")
    assert store.redis.zscore(store.keys.deadlines, "I-2") == 200.0

    # An engine that lost Redis for a moment takes its own lease back; another cannot.
    assert store.incidents.try_lead("engine-a", 8_000)
    assert not store.incidents.try_lead("engine-b", 8_000)
