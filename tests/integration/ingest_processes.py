"""`yiwang ingest` workers in processes of their own, as they run beside each other for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from devices.membership import Roll, roll_call
from dispatch.store import Store
from harness.center import as_environment
from tests.conftest import Logins
from tests.integration.helpers import wait_until

INGEST = [sys.executable, "-m", "dispatch.cli", "ingest"]


def roll(store: Store) -> Roll:
    return roll_call(store.members.members(), time.time())


def ingest_env(redis_url: str, broker_port: int, logins: Logins, prefix: str, name: str) -> dict:
    return {
        **os.environ,
        "YIWANG_REDIS_URL": redis_url,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_MQTT_PORT": str(broker_port),
        "YIWANG_TOPIC_ROOT": prefix,
        "YIWANG_INGEST_NAME": name,
        "YIWANG_INGEST_SESSION_EXPIRY_S": "600",
        "YIWANG_UNKNOWN_DEVICES": "register",
        "YIWANG_REGISTRATIONS_PER_MIN": "100000",
        **as_environment(logins.settings),
    }


@contextmanager
def ingest_process(env: dict, name: str, store: Store, **popen: object) -> Iterator:
    """`yiwang ingest` in a process of its own, yielded once it has registered subscribed."""
    process = subprocess.Popen(INGEST, env=env, **popen)  # type: ignore[call-overload]
    try:

        def subscribed() -> bool:
            member = roll(store).named(name)
            return member is not None and member.connected

        wait_until(subscribed, 30, f"{name} to register subscribed")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
