"""Waiting on real daemons: poll a condition with a deadline instead of sleeping blindly."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn

from devices.batch import BatchWriter, Received
from dispatch.core.access import Role
from dispatch.db import AccountStore, Database
from dispatch.identity import hash_password
from dispatch.store import Store
from tests.conftest import ingest_config


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what or condition}")


def verdicts(store: Store) -> int:
    """Messages that received a verdict: accepted plus rejected for any reason."""
    return sum(
        v for k, v in store.ingest.stats().items() if k == "accepted" or k.startswith("rejected:")
    )


def mqtt_client(
    port: int, client_id: str, protocol: mqtt.MQTTProtocolVersion, login: tuple[str, str]
) -> mqtt.Client:
    """A connected client logged in as `login` (the broker refuses anonymous clients)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.username_pw_set(*login)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    return client


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published()


def bearer(
    database_url: str,
    role: Role = Role.ADMIN,
    *,
    name: str | None = None,
    scope: str | None = None,
    officer: str | None = None,
) -> dict[str, str]:
    """Headers with a bearer token of a new account of `role` (and `scope`)."""
    db = Database(database_url, max_size=1)
    try:
        accounts = AccountStore(db)
        name = name or f"{role.value}-{scope or 'all'}"
        if role is Role.OFFICER:
            officer = officer or name
        accounts.add(
            name, role, hash_password("a long test password"), scope=scope, officer=officer
        )
        _, secret = accounts.issue_token(name, "test")
    finally:
        db.close()
    return {"authorization": f"Bearer {secret}"}


def store_fix(
    store: Store, officer: str, device: str, point: tuple[float, float], *, received_at: float
) -> None:
    """One fix of `officer`'s `device`, stored as the ingest stores it when received at
    `received_at` (long ago: the device is offline now)."""
    writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=lambda: received_at)
    fix = {"_type": "location", "lon": point[0], "lat": point[1], "tst": int(received_at)}
    topic = f"owntracks/{officer}/{device}"
    writer.write([Received(1, 1, topic, json.dumps({**fix, "acc": 5}).encode(), received_at)])


@contextlib.contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    """`app` served by uvicorn on a loopback `port` in a thread, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
