"""The FastAPI application: creates its clients in the lifespan and keeps them in app.state.

With `with_ingest`, the same process also runs an ingest worker in a thread (the default of
`yiwang serve`); API nodes that should not ingest run without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from fastapi import FastAPI

from devices.batch import BatchWriter, IngestConfig
from devices.ingest import IngestWorker
from dispatch.api import accounts, devices, errors, health, incidents, live, pages, security
from dispatch.api.state import AppState
from dispatch.db import AccountStore, Database, upgrade
from dispatch.delivery import OrderDelivery
from dispatch.engine import Engine
from dispatch.identity import Identity
from dispatch.settings import Settings
from dispatch.store import ScreenFeed, Store

log = logging.getLogger(__name__)


def build_ingest(settings: Settings, store: Store) -> IngestWorker:
    config = IngestConfig(
        root=settings.topic_root,
        limits=settings.limits(),
        unknown_devices=settings.unknown_devices,
        registrations_per_min=settings.registrations_per_min,
        batch_max=settings.ingest_batch_max,
        batch_wait_s=settings.ingest_batch_wait_ms / 1000.0,
    )
    return IngestWorker(
        BatchWriter(store.ingest, config, clock=settings.clock()),
        broker=settings.broker_login("ingest"),
        client_id=settings.ingest_client_id,
        session_expiry_s=settings.ingest_session_expiry_s,
        protocol=mqtt.MQTTv5 if settings.mqtt_protocol == 5 else mqtt.MQTTv311,
    )


WORKERS = ("ingest", "engine", "delivery")


def create_app(settings: Settings, *, workers: Collection[str] = WORKERS) -> FastAPI:
    """The API, with the named workers running in this process on their own threads."""
    unknown = set(workers) - set(WORKERS)
    if unknown:
        raise ValueError(f"unknown workers {sorted(unknown)}; choose from {WORKERS}")

    def own_store() -> Store:
        # Each worker has its own Redis connection pool: no client is shared across threads.
        return Store.from_url(settings.redis_url, settings.key_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = own_store()
        store.load_functions()
        clock = settings.clock()
        city = settings.city(datetime.fromtimestamp(clock(), ZoneInfo(settings.timezone)))
        stop = threading.Event()
        threads: list[threading.Thread] = []
        ingest = engine = delivery = None
        if "ingest" in workers:
            ingest = build_ingest(settings, own_store())
            threads.append(threading.Thread(target=ingest.run, name="ingest", daemon=True))
        if "engine" in workers:
            engine = Engine(
                own_store(),
                holder=settings.engine_id,
                policies=settings.policies(),
                lease_ms=settings.engine_lease_ms,
                city=city,
                presence_limits=(settings.stale_after_s, settings.offline_after_s),
                clock=settings.clock(),
            )
            threads.append(
                threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True)
            )
        if "delivery" in workers:
            delivery = OrderDelivery(
                own_store(),
                broker=settings.broker_login("delivery"),
                root=settings.topic_root,
                client_id=f"{settings.engine_id}-delivery",
            )
            threads.append(
                threading.Thread(target=delivery.run, args=(stop,), name="delivery", daemon=True)
            )
        for thread in threads:
            thread.start()
        feed = ScreenFeed.from_url(settings.redis_url, store.keys)
        db = Database(settings.database_url)
        upgrade(db)
        identity = Identity(AccountStore(db), store.sessions)
        app.state.yiwang = AppState(
            settings,
            store,
            feed,
            ingest,
            engine,
            delivery,
            city,
            clock,
            settings.policies(),
            db,
            identity,
        )
        try:
            yield
        finally:
            stop.set()
            if ingest is not None:
                ingest.stop()
            for thread in threads:
                thread.join(timeout=10)
            await feed.close()
            db.close()
            store.close()

    app = FastAPI(
        title="Yiwang command center",
        description="Real-time command and dispatch for integrated administrative law enforcement.",
        lifespan=lifespan,
        # The stock documentation pages load their scripts from a CDN; command centers run
        # offline. The schema itself is served at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    security.install(app)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(devices.router)
    app.include_router(incidents.router)
    app.include_router(live.router)
    app.include_router(pages.router)
    pages.mount_static(app, settings.basemap_file)
    return app
