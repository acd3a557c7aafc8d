"""Liveness of the API, its Redis and PostgreSQL, its ingest, engine and order delivery."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dispatch.api.state import app_state

router = APIRouter(tags=["health"])


@router.get("/api/health")
def health(request: Request) -> dict[str, Any]:
    state = app_state(request)
    redis_ok = state.store.ping()
    # Without PostgreSQL nobody can log in and no token is honoured.
    database_ok = state.db.ping()
    ingest = None if state.ingest is None else state.ingest.connected.is_set()
    # A standby engine is healthy too: only one engine leads at a time.
    leading = None if state.engine is None else state.engine.leading.is_set()
    # Without the broker no order reaches a device: that is not ok, whatever else runs.
    delivery = None if state.delivery is None else state.delivery.connected.is_set()
    healthy = redis_ok and database_ok and ingest is not False and delivery is not False
    return {
        "status": "ok" if healthy else "degraded",
        "redis": redis_ok,
        "database": database_ok,
        "ingest_connected": ingest,
        "engine_leading": leading,
        "delivery_connected": delivery,
    }
