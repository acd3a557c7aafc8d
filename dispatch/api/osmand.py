"""OsmAnd / Traccar Client over HTTP: `GET|POST /api/osmand`, one position per request.

A device is a binding of the registry (its `id` is the binding's key: a terminal serial or
`user/device`) that holds an HTTP key (`yiwang devices issue-http-key`), sent as `key=` in the
URL the device is given. The request is read into the OwnTracks location the device would
publish over MQTT (`devices.osmand`) and stored through the ingest's batch writer
(`devices.intake`), so it is judged, chained and stored as every MQTT fix is; the answer comes
once Redis holds it:

- 200 stored, and for a fix already stored too, so that a client resending a request whose
  answer it missed empties its queue;
- 401 without a key, 403 with a key that is not the device's (or for a device unknown);
- 400 for a request that names no device or is no JSON, 422 with the reason for one that holds
  no usable position or that the judge refuses (range, plausibility, service area, age).

Every outcome is counted under `osmand` in /api/ingest/stats; a request refused after its key
was checked is kept in the dead letters with its reason, as MQTT rejections are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from devices import osmand
from devices.messages import Location, PayloadError, decode_json
from devices.quality import Reason, Rejection
from devices.registry import Binding
from dispatch.api.state import AppState, app_state

PATH = "/api/osmand"
CHANNEL = "osmand"
_KEY = "key"

router = APIRouter(tags=["devices"])

Reader = Callable[[float, tzinfo], Location]


async def _body(request: Request) -> bytes:
    return await request.body()


@router.get(PATH)
@router.post(PATH)
def receive_position(
    request: Request,
    body: bytes = Depends(_body),
    key: str | None = Query(None, max_length=128, description="the device's HTTP key"),
) -> JSONResponse:
    """One position in the OsmAnd protocol: parameters in the query or a form body, or
    Traccar Client's JSON. Answered once the position is stored (see the module)."""
    state = app_state(request)
    now = state.fixes.received_at()
    if not key:
        return _answer(
            state, 401, "no_key",
            "send the device's key in the URL (…/api/osmand?key=KEY); an admin issues it with "
            "`yiwang devices issue-http-key DEVICE`",
        )  # fmt: skip
    try:
        device_id, read, raw = _request_of(request, body)
    except (PayloadError, osmand.OsmAndError) as exc:
        return _answer(state, 400, exc.reason, str(exc))
    binding = _device_or_none(state, device_id, key)
    if binding is None:
        return _answer(
            state, 403, "wrong_key",
            f"device {device_id!r} holds no HTTP key matching the one sent; an admin issues "
            f"one with `yiwang devices issue-http-key {device_id}`",
        )  # fmt: skip
    try:
        location = read(now, ZoneInfo(state.settings.timezone))
    except osmand.OsmAndError as exc:
        state.fixes.refuse(binding, raw.encode(), now, Rejection(exc.reason, str(exc)))
        return _answer(state, 422, exc.reason, str(exc))
    verdict = state.fixes.store(binding, osmand.payload(location, raw), now)
    if verdict is None or verdict.reason is Reason.DUPLICATE:
        outcome = "accepted" if verdict is None else "duplicate"
        state.store.ingest.count_channel(CHANNEL, outcome)
        duplicate = verdict is not None
        return JSONResponse({"device": binding.key, "stored": True, "duplicate": duplicate})
    return _answer(state, 422, verdict.reason, verdict.detail)


def _request_of(request: Request, body: bytes) -> tuple[str, Reader, str]:
    """The device a request names, how to read its position, and its text without the key
    (PayloadError or OsmAndError for a request that is neither form)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        doc = decode_json(body)
        if not isinstance(doc, dict):
            raise osmand.OsmAndError(Reason.BAD_FIELD, "the JSON body is not an object")
        return (
            osmand.json_device_id(doc),
            lambda now, zone: osmand.read_json(doc, now=now, zone=zone),
            body.decode(),
        )
    params = dict(parse_qsl(body.decode("utf-8", "replace"))) if body else {}
    params.update(request.query_params.items())
    params.pop(_KEY, None)
    return (
        osmand.query_device_id(params),
        lambda now, zone: osmand.read_query(params, now=now, zone=zone),
        urlencode(params),
    )


def _device_or_none(state: AppState, device_id: str, key: str) -> Binding | None:
    """The device's binding, if it holds an HTTP key and `key` is that key."""
    registry = state.store.registry
    digest = registry.http_key_digest(device_id)
    if digest is None or not osmand.key_matches(key, digest):
        return None
    return registry.binding(device_id)


def _answer(state: AppState, status: int, reason: str, detail: str) -> JSONResponse:
    """A refusal, counted under its reason: `rejected:` what was sent, `refused:` who sent it."""
    kind = "refused" if status in (401, 403) else "rejected"
    state.store.ingest.count_channel(CHANNEL, f"{kind}:{reason}")
    body: dict[str, Any] = {"detail": f"{reason}: {detail}", "reason": reason}
    return JSONResponse(body, status)
