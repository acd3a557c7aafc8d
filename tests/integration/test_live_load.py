"""The live feed against a real server and Redis: connections beyond the bound are refused
with a reason a person can read, and a storm of screens never holds up one watching."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest
import websockets

from devices.batch import BatchWriter, Received
from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.settings import Settings
from dispatch.store import Store
from harness.daemons import free_port
from tests.conftest import ingest_config
from tests.integration.helpers import bearer, serving
from tests.integration.test_terminal_flow import city_files

BOUND_S = 2.0  # generous: a screen's snapshot arrives long before this


def live_settings(
    redis_service, prefix: str, tmp_path: Path, database_url: str, **limits
) -> Settings:
    areas, roster = city_files(tmp_path)
    return Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        areas_file=areas,
        roster_file=roster,
        database_url=database_url,
        http_port=free_port(),
        data_dir=tmp_path / "var",
        **limits,
    )


def test_connections_beyond_the_bound_are_refused_with_the_reason(
    redis_service, prefix, tmp_path, database_url
) -> None:
    settings = live_settings(
        redis_service, prefix, tmp_path, database_url, live_max_connections_per_address=2
    )
    headers = bearer(database_url, Role.DISPATCHER, name="many")
    with serving(create_app(settings, workers=()), settings.http_port):
        url = f"ws://127.0.0.1:{settings.http_port}/ws/live"

        async def run() -> None:
            kept = [await websockets.connect(url, additional_headers=headers) for _ in range(2)]
            for ws in kept:
                assert json.loads(await ws.recv())["type"] == "snapshot"
            refused = await websockets.connect(url, additional_headers=headers)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await refused.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert "too many live feed connections from 127.0.0.1" in closed.value.rcvd.reason
            # A screen that leaves makes room.
            await kept.pop().close()
            again = await websockets.connect(url, additional_headers=headers)
            async with asyncio.timeout(BOUND_S * 5):
                while True:
                    with contextlib.suppress(websockets.ConnectionClosed):
                        if json.loads(await again.recv())["type"] == "snapshot":
                            break
                        continue
                    again = await websockets.connect(url, additional_headers=headers)
            for ws in (*kept, again):
                await ws.close()

        asyncio.run(run())


def _seed_devices(store: Store, count: int, at: float) -> None:
    """`count` officers' devices with one stored fix each, as the ingest stores them."""
    writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=lambda: at)
    for start in range(0, count, 500):
        batch = []
        for n in range(start, min(start + 500, count)):
            fix = {"_type": "location", "lon": 119.6 + n * 1e-5, "lat": 29.08, "tst": int(at)}
            topic = f"owntracks/storm{n:05d}/BC-{n:05d}"
            batch.append(Received(n + 1, 1, topic, json.dumps(fix).encode(), at))
        writer.write(batch)


def test_a_storm_of_snapshots_and_a_stalled_screen_do_not_hold_up_a_watching_one(
    redis_service, store: Store, prefix, tmp_path, database_url
) -> None:
    _seed_devices(store, 4_000, time.time())
    settings = live_settings(
        redis_service, prefix, tmp_path, database_url, live_max_connections_per_address=60
    )
    headers = bearer(database_url, Role.DISPATCHER, name="storm")
    lags_ms: list[float] = []
    with serving(create_app(settings, workers=()), settings.http_port):
        url = f"ws://127.0.0.1:{settings.http_port}/ws/live"

        async def feed(stop: asyncio.Event) -> None:
            # A positions update every 100 ms, as the ingest writes them.
            while not stop.is_set():
                await asyncio.to_thread(
                    store.redis.xadd,
                    store.keys.events,
                    {
                        "type": "positions",
                        "body": json.dumps([["storm00000/BC-00000", 119.6, 29.08, 1]]),
                    },
                )
                await asyncio.sleep(0.1)

        async def watch(screen, stop: asyncio.Event) -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        message = json.loads(await screen.recv())
                        if message["type"] == "positions":
                            sent_ms = int(message["seq"].split("-")[0])
                            lags_ms.append(time.time() * 1000 - sent_ms)

        async def snapshot_once() -> int:
            async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
                return len(json.loads(await ws.recv())["devices"])

        async def run() -> list[int]:
            watcher = await websockets.connect(url, additional_headers=headers, max_size=None)
            assert json.loads(await watcher.recv())["type"] == "snapshot"
            # A screen that connects and then reads nothing more: its socket fills and stays full.
            stalled = await websockets.connect(url, additional_headers=headers, max_size=None)
            stalled.transport.pause_reading()
            stop = asyncio.Event()
            tasks = [asyncio.create_task(feed(stop)), asyncio.create_task(watch(watcher, stop))]
            await asyncio.sleep(1.0)
            sizes = await asyncio.gather(*(snapshot_once() for _ in range(50)))
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*tasks)
            stalled.transport.abort()
            await watcher.close()
            return sizes

        sizes = asyncio.run(run())
    assert sizes == [4_000] * 50  # every one of the storm got the whole city
    assert len(lags_ms) >= 25, "the watching screen stopped getting updates"
    ordered = sorted(lags_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    assert p99 <= 1_000, f"the watching screen's updates p99 {p99:.0f} ms during the storm"
