"""What a request body may be, decided before any route reads it.

`BodyGuard` (ASGI middleware) holds every request to `max_bytes` (413), and a request that
sends a body to POST, PUT or PATCH to JSON: the JSON content type (415), valid UTF-8, the
RFC 8259 grammar (no NaN or Infinity), numbers a float can hold (no 1e400), and shallow
nesting (400). The paths given as `form_paths` (a device protocol that posts its parameters,
OsmAnd) also take a UTF-8 form body (`application/x-www-form-urlencoded`). The paths given as
`upload_paths` (citizens' photos) take a `multipart/form-data` body only, up to their own
larger limit; a declared length beyond it is refused before a byte of the body is read, and a
body sent without one is read only until it passes the limit. Python's JSON reader takes NaN, Infinity and 1e400 (as inf) without a word, and
no field of ours means any of them. `RequestBody` is the base of the route models: no non-finite
float, no string longer than `MAX_TEXT`, from a quoted "NaN" either.

Refusals answer `{"detail": "<why>"}` like every other refusal of the API, and are counted
by kind (`BodyGuard.refused`) and logged once a minute per kind with the count so far.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 8  # the deepest body of the API is an object holding a list of strings
MAX_TEXT = 2000
_WITH_BODY = {"POST", "PUT", "PATCH"}
_LOG_EVERY_S = 60.0


class RequestBody(BaseModel):
    """A JSON request body: finite numbers and bounded strings only."""

    model_config = ConfigDict(allow_inf_nan=False, str_max_length=MAX_TEXT)


class BodyRefused(Exception):  # noqa: N818 - reads as what happened
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind
        self.reason = reason


class BodyGuard:
    """ASGI middleware: reads the body within its bound, checks it, and passes it on."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        form_paths: frozenset[str] = frozenset(),
        upload_paths: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.form_paths = form_paths
        self.upload_paths = dict(upload_paths or {})
        self.refused: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload_bytes = self.upload_paths.get(scope["path"])
        try:
            if upload_bytes is not None and scope["method"] in _WITH_BODY:
                check_multipart(_content_type(scope))
            body = await self._read(scope, receive, upload_bytes or self.max_bytes)
            if body and scope["method"] in _WITH_BODY and upload_bytes is None:
                content_type = _content_type(scope)
                if scope["path"] in self.form_paths and _is_form(content_type):
                    check_form(body)
                else:
                    check_json(body, content_type)
        except BodyRefused as refusal:
            self._count(scope, refusal)
            await JSONResponse({"detail": refusal.reason}, refusal.status)(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # the disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive, max_bytes: int) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BodyRefused(400, "length", f"content-length {declared[:40]!r} is no number")
            if int(declared) > max_bytes:
                raise _too_large(max_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left; the route will find out as it would have
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _count(self, scope: Scope, refusal: BodyRefused) -> None:
        self.refused[refusal.kind] += 1
        now = time.monotonic()
        if now - self._logged_at.get(refusal.kind, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._logged_at[refusal.kind] = now
            log.info(
                "body refused kind=%s count=%d path=%s reason=%s",
                refusal.kind, self.refused[refusal.kind], scope.get("path"), refusal.reason,
            )  # fmt: skip


def check_json(body: bytes, content_type: str) -> None:
    """Raise BodyRefused unless `body` is JSON the routes can take as it stands."""
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        raise BodyRefused(
            415, "content_type",
            f"send the body as JSON (content-type: application/json), not {media_type[:60]!r}",
        )  # fmt: skip
    charset = parameters.strip().lower().removeprefix("charset=").strip('"')
    if parameters.strip() and charset not in ("utf-8", "utf8"):
        raise BodyRefused(415, "content_type", f"send JSON as UTF-8, not {parameters[:60]!r}")
    text = _utf8(body)
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise BodyRefused(400, "json", f"the body is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        raise _too_deep() from None
    if _depth(value) > MAX_DEPTH:
        raise _too_deep()


def check_multipart(content_type: str) -> None:
    """Raise BodyRefused unless the body is declared `multipart/form-data` (a file upload)."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise BodyRefused(
            415, "content_type",
            f"send the report as multipart/form-data (a form with the photo), not {media_type[:60]!r}",
        )  # fmt: skip


def check_form(body: bytes) -> None:
    """Raise BodyRefused unless `body` is text a form parser can read (UTF-8)."""
    _utf8(body)


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(400, "utf8", f"the body is not UTF-8 (byte {exc.start})") from None


def _is_form(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def _constant(name: str) -> Any:
    raise BodyRefused(400, "number", f"{name} is not a JSON number; send a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyRefused(400, "number", f"the number {text[:40]} is out of range")
    return value


def _int(text: str) -> int:
    # int() refuses more than 4300 digits with a ValueError; the models bound the rest.
    try:
        return int(text)
    except ValueError:
        raise BodyRefused(400, "number", f"the integer {text[:40]}… is out of range") from None


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, depth + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_large(max_bytes: int) -> BodyRefused:
    return BodyRefused(413, "too_large", f"the body is larger than the limit of {max_bytes} bytes")


def _too_deep() -> BodyRefused:
    return BodyRefused(400, "depth", f"the body nests deeper than {MAX_DEPTH} levels")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _content_type(scope: Scope) -> str:
    return _header(scope, b"content-type") or ""
