"""The live feed against a real server and Redis: connections beyond the bound are refused
with a reason a person can read."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
import websockets

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.settings import Settings
from harness.daemons import free_port
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
