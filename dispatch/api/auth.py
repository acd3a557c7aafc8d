"""Who is calling, and whether they may: every route but the login and health asks here.

A page holds a session cookie (HttpOnly, SameSite=Strict); an integration sends
`Authorization: Bearer <token>`. A cookie-borne request that changes state, and every
WebSocket upgrade, must come from our own origin: a page elsewhere cannot ride an officer's
session (cross-site request forgery, cross-site WebSocket hijacking). Each refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, WebSocket

from dispatch.api.state import AppState, app_state
from dispatch.core.access import AreaScope, Permission, Principal

SESSION_COOKIE = "yiwang_session"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Refused(HTTPException):
    """401 (who are you?) or 403 (not you, not this, not here), with the reason."""


def address_of(connection: Request | WebSocket) -> str:
    return connection.client.host if connection.client else ""


def same_origin(connection: Request | WebSocket) -> bool:
    origin = connection.headers.get("origin")
    if origin is None:
        return False
    host = connection.headers.get("host", "")
    return urlsplit(origin).netloc == host


def identify(connection: Request | WebSocket, state: AppState) -> Principal | None:
    """The caller's principal from a bearer token or the session cookie, or None."""
    now = state.clock()
    address = address_of(connection)
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return state.identity.from_token(header[7:].strip(), address)
    token = connection.cookies.get(SESSION_COOKIE)
    if token:
        return state.identity.from_session(token, address, now=now)
    return None


def refuse(state: AppState, principal: Principal, what: str, why: str) -> Refused:
    state.identity.record(principal, "refused", now=state.clock(), target=what, detail=why)
    return Refused(403, why)


def authenticated(request: Request) -> Principal:
    """A dependency: the caller, whoever they are, once authenticated and within budget."""
    state = app_state(request)
    principal = identify(request, state)
    if principal is None:
        raise Refused(
            401,
            "log in first (POST /api/session) or send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if (
        request.method not in _SAFE_METHODS
        and principal.credential.startswith("session:")
        and not same_origin(request)
    ):
        raise refuse(state, principal, _what(request), "cross-site request refused (Origin)")
    if not state.identity.within_budget(principal, now=state.clock()):
        raise Refused(429, "too many requests; slow down", headers={"Retry-After": "60"})
    return principal


def require(permission: Permission) -> Callable[[Request], Principal]:
    """A dependency: the caller, if authenticated and allowed `permission`."""

    def dependency(request: Request) -> Principal:
        principal = authenticated(request)
        if not principal.may(permission):
            raise refuse(
                app_state(request),
                principal,
                _what(request),
                f"role {principal.role.value} may not {permission.value}",
            )
        return principal

    dependency.__name__ = f"require_{permission.value}"
    return dependency


def _what(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def scope_of(principal: Principal, state: AppState) -> AreaScope:
    city = state.city
    return AreaScope(principal.scope, city.areas if city else None, city.roster if city else None)


def requested_scope(request: Request, caller: Principal, area: str | None) -> AreaScope:
    """The caller's scope narrowed to the `area` a query asks for; 403 (audited) outside it."""
    state = app_state(request)
    try:
        return scope_of(caller, state).narrowed(area)
    except ValueError as exc:
        raise refuse(state, caller, _what(request), str(exc)) from None
