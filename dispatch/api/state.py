"""What the lifespan creates and the routers use, kept in app.state rather than globals."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from devices.ingest import IngestWorker
from dispatch.settings import Settings
from dispatch.store import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    ingest: IngestWorker | None


def app_state(request: Request) -> AppState:
    return request.app.state.yiwang  # type: ignore[no-any-return]
