"""Domain errors as HTTP answers: one handler, and the table from error to status.

Routes raise what the core and the stores raise (an unknown incident, an event the timeline
refuses, Redis or PostgreSQL out of reach, a value the database cannot store); the answer is
`{"detail": "<why>"}`, the body FastAPI gives an HTTPException.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dispatch.core.center import UnknownIncident
from dispatch.core.timeline import TimelineError
from dispatch.db import DatabaseUnavailable, ValueNotStorable
from dispatch.evidence.collect import UnknownIncidentError
from dispatch.store import UNAVAILABLE

log = logging.getLogger(__name__)

# The first that matches: an unknown incident is a TimelineError too.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownIncident, 404),
    (UnknownIncidentError, 404),
    (TimelineError, 409),
    *((error, 422) for error in ValueNotStorable),
    *((error, 503) for error in (*UNAVAILABLE, *DatabaseUnavailable)),
)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    if request.scope["type"] != "http":
        raise exc  # a WebSocket closes as it would without the handler
    status = next(code for error, code in STATUS if isinstance(exc, error))
    if status == 503:
        # The client learns to retry; the log keeps which store failed and what it said.
        log.warning("store unavailable path=%s error=%r", request.url.path, exc)
        return JSONResponse({"detail": "the store is unavailable; try again shortly"}, 503)
    if status == 422:
        return JSONResponse({"detail": f"a value cannot be stored: {exc}"}, 422)
    return JSONResponse({"detail": str(exc)}, status)


def install(app: FastAPI) -> None:
    for error, _status in STATUS:
        app.add_exception_handler(error, domain_error)
