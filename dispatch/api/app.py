"""The FastAPI application: creates its clients in the lifespan and keeps them in app.state.

The same process also runs the named workers, each on a thread of its own (all of them by
default, as `yiwang serve` does); API nodes that should not ingest run without them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from devices import mqttwire
from devices.batch import BatchWriter
from devices.ingest import IngestWorker
from devices.intake import FixIntake
from dispatch.api import (
    accounts,
    alerts,
    bodies,
    devices,
    errors,
    glyphs,
    health,
    hotline,
    incidents,
    intake,
    live,
    osmand,
    pages,
    patrol,
    reports,
    security,
    sos,
    stats,
)
from dispatch.api.connections import ConnectionLimits
from dispatch.api.state import AppState
from dispatch.city import City
from dispatch.db import AccountStore, Database, upgrade
from dispatch.db.history import HistoryStore
from dispatch.delivery import OrderDelivery
from dispatch.engine import Engine
from dispatch.evidence.archiver import Archiver
from dispatch.history import HistoryWorker
from dispatch.hotline import HotlineNotifier
from dispatch.identity import Identity
from dispatch.jt808_service import Jt808Service
from dispatch.patrol_report import patrol_setup
from dispatch.patrol_watch import PatrolWatch
from dispatch.records import IncidentRecords
from dispatch.settings import Settings
from dispatch.store import ScreenFeed, Store

log = logging.getLogger(__name__)


def build_ingest(
    settings: Settings, store: Store, city: City | None, *, name: str, client_id: str | None = None
) -> IngestWorker:
    """The ingest worker `name` (with `client_id`: the session of one that is to be retired)."""
    return IngestWorker(
        BatchWriter(store.ingest, settings.ingest_config(city), clock=settings.clock()),
        broker=settings.broker_login("ingest"),
        name=name,
        client_id=client_id,
        roll=store.members,
        session_expiry_s=settings.ingest_session_expiry_s,
        protocol=mqttwire.MQTT_5 if settings.mqtt_protocol == 5 else mqttwire.MQTT_311,
        beat_s=settings.ingest_beat_s,
    )


# The hotline notifier runs where a callback is configured (YIWANG_HOTLINE_CALLBACK_URL), the
# JT/T 808 gateway where a port is (YIWANG_JT808_PORT).
WORKERS = ("ingest", "engine", "delivery", "history", "archiver", "hotline", "jt808")


@dataclass
class Workers:
    """The workers running in this process, each on its own thread."""

    ingest: IngestWorker | None = None
    engine: Engine | None = None
    delivery: OrderDelivery | None = None
    jt808: Jt808Service | None = None
    threads: list[threading.Thread] = field(default_factory=list)


def start_workers(
    settings: Settings,
    names: Collection[str],
    city: City | None,
    history: HistoryStore,
    stop: threading.Event,
) -> Workers:
    def own_store() -> Store:
        # Each worker has its own Redis connection pool: no client is shared across threads.
        return Store.from_url(settings.redis_url, settings.key_prefix, settings.durability())

    running = Workers()
    if "ingest" in names:
        running.ingest = build_ingest(
            settings, own_store(), city, name=settings.ingest_worker_name("serve")
        )
        running.threads.append(threading.Thread(target=running.ingest.run, name="ingest"))
    if "engine" in names:
        running.engine = Engine(
            own_store(),
            holder=settings.engine_id,
            policies=settings.policies(),
            lease_ms=settings.engine_lease_ms,
            city=city,
            presence_limits=(settings.stale_after_s, settings.offline_after_s),
            clock=settings.clock(),
            zone=settings.timezone,
        )
        running.threads.append(
            threading.Thread(target=running.engine.run, args=(stop,), name="engine")
        )
    if "delivery" in names:
        running.delivery = OrderDelivery(
            own_store(),
            broker=settings.broker_login("delivery"),
            root=settings.topic_root,
            client_id=f"{settings.engine_id}-delivery",
            min_expiry_s=settings.order_min_expiry_s,
        )
        running.threads.append(
            threading.Thread(target=running.delivery.run, args=(stop,), name="delivery")
        )
    if "history" in names:
        copier = HistoryWorker(
            own_store(),
            history,
            areas=city.areas if city else None,
            retention_s=settings.history_retention_s,
            clock=settings.clock(),
        )
        running.threads.append(threading.Thread(target=copier.run, args=(stop,), name="history"))
        if city is not None:
            watch = PatrolWatch(
                own_store(),
                settings.archive(),
                city,
                patrol_setup(city, settings.patrol_targets_file),
                settings.clock(),
                settings.timezone,
            )
            running.threads.append(threading.Thread(target=watch.run, args=(stop,), name="patrol"))
    if "archiver" in names:
        # Sealing is what bounds the live tracks in Redis: without it they grow by every fix.
        archiver = Archiver(
            own_store(),
            settings.archive(),
            settings.signer(),
            settings.seal_policy(),
            settings.clock(),
        )
        running.threads.append(
            threading.Thread(
                target=archiver.run, args=(stop, settings.archive_every_s), name="archiver"
            )
        )
    if "hotline" in names and settings.hotline_callback_url is not None:
        notifier_store = own_store()
        notifier = HotlineNotifier(
            notifier_store,
            IncidentRecords(notifier_store.incidents, history),
            url=settings.hotline_callback_url,
            token=settings.hotline_callback_token,
            attempts=settings.hotline_callback_attempts,
            retry_s=settings.hotline_callback_retry_s,
            zone=settings.timezone,
            clock=settings.clock(),
        )
        running.threads.append(threading.Thread(target=notifier.run, args=(stop,), name="hotline"))
    if "jt808" in names and settings.jt808_port:
        running.jt808 = Jt808Service(
            settings, own_store(), city, host=settings.jt808_host, port=settings.jt808_port
        )
        running.threads.append(
            threading.Thread(target=running.jt808.run, args=(stop,), name="jt808")
        )
    for thread in running.threads:
        thread.daemon = True
        thread.start()
    return running


def create_app(settings: Settings, *, workers: Collection[str] = WORKERS) -> FastAPI:
    """The API, with the named workers running in this process on their own threads."""
    unknown = set(workers) - set(WORKERS)
    if unknown:
        raise ValueError(f"unknown workers {sorted(unknown)}; choose from {WORKERS}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.from_url(settings.redis_url, settings.key_prefix)
        store.upgrade()
        clock = settings.clock()
        city = settings.city(datetime.fromtimestamp(clock(), ZoneInfo(settings.timezone)))
        db = Database(settings.database_url)
        upgrade(db)
        history = HistoryStore(db, zone=settings.timezone)
        stop = threading.Event()
        running = start_workers(settings, workers, city, history, stop)
        feed = ScreenFeed.from_url(settings.redis_url, store.keys)
        # Positions sent over HTTP: a writer of their own, over a connection pool of its own.
        intake_store = Store.from_url(
            settings.redis_url, settings.key_prefix, settings.durability()
        )
        fixes = FixIntake(
            BatchWriter(
                intake_store.ingest, settings.ingest_config(city), clock=clock, channel="osmand"
            )
        )
        app.state.yiwang = AppState(
            settings,
            store,
            feed,
            running.ingest,
            running.engine,
            running.delivery,
            city,
            clock,
            settings.policies(),
            db,
            Identity(AccountStore(db), store.sessions),
            IncidentRecords(store.incidents, history),
            fixes,
            ConnectionLimits(
                settings.live_max_connections, settings.live_max_connections_per_address
            ),
            running.jt808,
        )
        try:
            yield
        finally:
            stop.set()
            if running.ingest is not None:
                running.ingest.stop()
            for thread in running.threads:
                thread.join(timeout=10)
            await feed.close()
            db.close()
            intake_store.close()
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
    # Inside security: its refusals carry the headers too.
    app.add_middleware(
        bodies.BodyGuard,
        form_paths=frozenset({osmand.PATH}),
        upload_paths={reports.PATH: settings.report_max_bytes},
    )
    security.install(app)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(devices.router)
    app.include_router(osmand.router)
    app.include_router(incidents.router)
    app.include_router(sos.router)
    app.include_router(alerts.router)
    app.include_router(hotline.router)
    app.include_router(intake.router)
    app.include_router(reports.router)
    app.include_router(live.router)
    app.include_router(stats.router)
    app.include_router(pages.router)
    app.include_router(patrol.router)
    glyphs.install(app)
    pages.mount_static(app, settings.screens_dir, settings.basemap_file)
    return app
