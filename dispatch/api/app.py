"""The FastAPI application: creates its clients in the lifespan and keeps them in app.state.

With `with_ingest`, the same process also runs an ingest worker in a thread (the default of
`yiwang serve`); API nodes that should not ingest run without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import paho.mqtt.client as mqtt
import redis.asyncio as aioredis
from fastapi import FastAPI

from devices.ingest import BatchWriter, IngestConfig, IngestWorker
from dispatch.api import devices, health, incidents, live
from dispatch.api.state import AppState
from dispatch.engine import Engine
from dispatch.settings import Settings
from dispatch.store import Store

log = logging.getLogger(__name__)


def build_ingest(settings: Settings, store: Store) -> IngestWorker:
    config = IngestConfig(
        root=settings.topic_root,
        limits=settings.limits(),
        unknown_devices=settings.unknown_devices,
        batch_max=settings.ingest_batch_max,
        batch_wait_s=settings.ingest_batch_wait_ms / 1000.0,
    )
    return IngestWorker(
        BatchWriter(store, config),
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        client_id=settings.ingest_client_id,
        session_expiry_s=settings.ingest_session_expiry_s,
        protocol=mqtt.MQTTv5 if settings.mqtt_protocol == 5 else mqtt.MQTTv311,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
    )


def create_app(settings: Settings, *, with_ingest: bool, with_engine: bool) -> FastAPI:
    """The API; with_ingest / with_engine also run those workers in this process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.from_url(settings.redis_url, settings.key_prefix)
        store.load_functions()
        stop = threading.Event()
        threads: list[threading.Thread] = []
        worker = engine = None
        if with_ingest:
            # Each worker gets its own Redis connection pool: no client is shared across threads.
            worker = build_ingest(settings, Store.from_url(settings.redis_url, settings.key_prefix))
            threads.append(threading.Thread(target=worker.run, name="ingest", daemon=True))
        if with_engine:
            engine = Engine(
                Store.from_url(settings.redis_url, settings.key_prefix),
                holder=settings.engine_id,
                policies=settings.policies(),
                lease_ms=settings.engine_lease_ms,
            )
            threads.append(
                threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True)
            )
        for thread in threads:
            thread.start()
        live_redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        app.state.yiwang = AppState(settings, store, live_redis, worker, engine)
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.stop()
            for thread in threads:
                thread.join(timeout=10)
            await live_redis.aclose()
            store.redis.close()

    app = FastAPI(
        title="Yiwang command center",
        description="Real-time command and dispatch for integrated administrative law enforcement.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(incidents.router)
    app.include_router(live.router)
    return app
