"""Domain errors as HTTP answers: one handler, and the table from error to status.

Routes raise what the core and the stores raise (an unknown incident, an event the timeline
refuses, an order to an officer who cannot take it, an alert unknown or acknowledged before,
a category the catalogue lacks, a point outside every area, Redis or
PostgreSQL out of reach, a value the database cannot store); the answer is
`{"detail": "<why>"}`, the body FastAPI gives an HTTPException; a refused action adds its
`code` and `params`, the same refusal for a screen to word in its user's language. A request that fails its
model's validation gets the same form, one sentence per field, and never its input echoed
back (an input JSON cannot carry, such as NaN, used to turn the refusal into a 500).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dispatch.core.alerts import AlreadyAcknowledgedError
from dispatch.core.assignment import CrewRefused
from dispatch.core.center import UnknownIncident
from dispatch.core.intake import OutsideJurisdiction
from dispatch.core.policy import UnknownCategory
from dispatch.core.timeline import TimelineError
from dispatch.db import DatabaseUnavailable, ValueNotStorable
from dispatch.evidence.collect import UnknownIncidentError
from dispatch.store import UNAVAILABLE, UnknownAlertError

log = logging.getLogger(__name__)

# The first that matches: an unknown incident is a TimelineError too.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownIncident, 404),
    (UnknownIncidentError, 404),
    (UnknownAlertError, 404),
    (AlreadyAcknowledgedError, 409),
    (TimelineError, 409),
    (CrewRefused, 409),
    (UnknownCategory, 422),
    (OutsideJurisdiction, 422),
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
    if isinstance(exc, UnknownCategory):
        return JSONResponse({"detail": str(exc), "categories": exc.known}, 422)
    if isinstance(exc, OutsideJurisdiction):
        return JSONResponse({"detail": str(exc)}, 422)
    if status == 422:
        return JSONResponse({"detail": f"a value cannot be stored: {exc}"}, 422)
    if isinstance(exc, TimelineError | CrewRefused):
        # The code and its params let a screen word the refusal in its user's language.
        return JSONResponse({"detail": str(exc), "code": exc.code, "params": exc.params}, status)
    return JSONResponse({"detail": str(exc)}, status)


_MAX_REASONS = 5


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    reasons = [f"{_where(e['loc'])}: {e['msg']}" for e in errors[:_MAX_REASONS]]
    if len(errors) > _MAX_REASONS:
        reasons.append(f"and {len(errors) - _MAX_REASONS} more")
    return JSONResponse({"detail": "; ".join(reasons)}, 422)


def _where(loc: tuple[int | str, ...]) -> str:
    """`lon`, `officers.0`, `query k`: a body's fields by name, others by where they are."""
    if not loc:
        return "request"
    kind, *path = loc
    name = ".".join(str(part) for part in path)
    if kind == "body":
        return name or "body"
    return f"{kind} {name}".strip()


def install(app: FastAPI) -> None:
    for error, _status in STATUS:
        app.add_exception_handler(error, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
