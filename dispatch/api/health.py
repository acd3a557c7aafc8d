"""Liveness of the API, its Redis and PostgreSQL, its ingest, engine, order delivery and
JT/T 808 gateway.

Connected is not enough: a worker that holds its session but stops getting through its
messages is reported too (the ingest by its last progress, the engine by how long the oldest
inbox entry has waited, whichever engine leads). So is every ingest worker, wherever it runs,
that stopped beating without leaving the shared subscription: the broker keeps routing its
share of the positions to a session nobody reads (devices.membership).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from devices.membership import roll_call
from dispatch.api.state import app_state

router = APIRouter(tags=["health"])

# A worker that has not got through its messages for this long is not consuming.
STALLED_AFTER_S = 30.0


@router.get("/api/health")
def health(request: Request) -> dict[str, Any]:
    state = app_state(request)
    redis_ok = state.store.ping()
    # Without PostgreSQL nobody can log in and no token is honoured.
    database_ok = state.db.ping()
    ingest = None if state.ingest is None else state.ingest.connected.is_set()
    ingest_consuming = (
        None
        if state.ingest is None
        else ingest is True
        and state.ingest.writer.clock() - state.ingest.progress_at < STALLED_AFTER_S
    )
    ingest_backlog = None if state.ingest is None else state.ingest.backlog.held
    inbox_waiting_s = round(state.store.incidents.inbox_waiting_s(), 3) if redis_ok else None
    engine_consuming = inbox_waiting_s is not None and inbox_waiting_s < STALLED_AFTER_S
    # A standby engine is healthy too: only one engine leads at a time.
    leading = None if state.engine is None else state.engine.leading.is_set()
    # Without the broker no order reaches a device: that is not ok, whatever else runs.
    delivery = None if state.delivery is None else state.delivery.connected.is_set()
    # Terminals dial in: a gateway that is not listening loses all of them.
    jt808 = None if state.jt808 is None else state.jt808.listening.is_set()
    # Heartbeats are wall-clock times, whatever clock the center runs on.
    roll = roll_call(state.store.members.members(), time.time()) if redis_ok else None
    ingest_dead = None if roll is None else [m.name for m in roll.dead]
    healthy = (
        redis_ok
        and database_ok
        and ingest_consuming is not False
        and engine_consuming
        and delivery is not False
        and jt808 is not False
        and not ingest_dead
    )
    return {
        "status": "ok" if healthy else "degraded",
        "redis": redis_ok,
        "database": database_ok,
        "ingest_connected": ingest,
        "ingest_consuming": ingest_consuming,
        "ingest_backlog": ingest_backlog,
        "ingest_workers": None if roll is None else [m.name for m in roll.alive],
        "ingest_workers_dead": ingest_dead,
        "engine_leading": leading,
        "engine_inbox_waiting_s": inbox_waiting_s,
        "delivery_connected": delivery,
        "jt808_listening": jt808,
    }
