"""What the lifespan creates and the routers use, kept in app.state rather than globals."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from devices.ingest import IngestWorker
from devices.intake import FixIntake
from dispatch.api.connections import ConnectionLimits
from dispatch.city import City
from dispatch.clock import Clock
from dispatch.core.policy import PolicyBook
from dispatch.db import Database
from dispatch.delivery import OrderDelivery
from dispatch.engine import Engine
from dispatch.identity import Identity
from dispatch.jt808_service import Jt808Service
from dispatch.records import IncidentRecords
from dispatch.settings import Settings
from dispatch.store import ScreenFeed, Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    feed: ScreenFeed  # the WebSocket feed waits on Redis without blocking a thread
    ingest: IngestWorker | None
    engine: Engine | None
    delivery: OrderDelivery | None
    city: City | None
    clock: Clock
    policies: PolicyBook
    db: Database
    identity: Identity
    records: IncidentRecords  # incidents and their audit, from Redis and the history
    fixes: FixIntake  # positions sent over HTTP (OsmAnd), through the ingest's writer
    live_limits: ConnectionLimits  # the live feed's connections on this node
    jt808: Jt808Service | None = None  # the JT/T 808 gateway, where this process runs one


def app_state(request: Request) -> AppState:
    return request.app.state.yiwang  # type: ignore[no-any-return]
