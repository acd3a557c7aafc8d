"""Logging in and out, who am I, and the admin API for accounts, tokens and the access audit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import Field

from dispatch.api.auth import (
    SESSION_COOKIE,
    address_of,
    authenticated,
    identify,
    require,
    same_origin,
)
from dispatch.api.bodies import RequestBody
from dispatch.api.state import app_state
from dispatch.api.times import LATEST_EPOCH_S, local_iso
from dispatch.core.access import Permission, Principal, Role, validate_scope
from dispatch.db.accounts import AccountError
from dispatch.identity import LoginRefusedError

router = APIRouter(tags=["accounts"])

Caller = Annotated[Principal, Depends(authenticated)]
Admin = Annotated[Principal, Depends(require(Permission.MANAGE_ACCOUNTS))]
Auditor = Annotated[Principal, Depends(require(Permission.READ_AUDIT))]


class Credentials(RequestBody):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class NewAccount(RequestBody):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    role: Role
    password: str = Field(min_length=10, max_length=256)
    scope: str | None = Field(
        None, max_length=64, description="an area id; empty for the whole center"
    )
    officer: str | None = Field(
        None, max_length=64, description="officer accounts: the roster officer id"
    )
    display_name: str = Field("", max_length=100)


class AccountChange(RequestBody):
    role: Role | None = None
    scope: str | None = Field(
        None, max_length=64, description="an area id, or * for the whole center"
    )
    display_name: str | None = Field(None, max_length=100)
    disabled: bool | None = None


class NewPassword(RequestBody):
    password: str = Field(min_length=10, max_length=256)


class NewToken(RequestBody):
    account: str = Field(min_length=1, max_length=64)
    label: str = Field("", max_length=100)


def _me(principal: Principal) -> dict[str, Any]:
    return {
        "account": principal.account,
        "role": principal.role.value,
        "scope": principal.scope,
        "officer": principal.officer,
        "permissions": sorted(p.value for p in Permission if principal.may(p)),
    }


def _scope_or_422(request: Request, scope: str | None) -> str | None:
    state = app_state(request)
    try:
        return validate_scope(scope, state.city.areas if state.city else None)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/api/session")
def log_in(credentials: Credentials, request: Request, response: Response) -> dict[str, Any]:
    """Log in: sets the session cookie the pages use (HttpOnly, SameSite=Strict)."""
    state = app_state(request)
    if request.headers.get("origin") is not None and not same_origin(request):
        raise HTTPException(403, "cross-site login refused (Origin)")
    try:
        token, principal = state.identity.login(
            credentials.name, credentials.password, address_of(request), now=state.clock()
        )
    except LoginRefusedError as exc:
        if exc.retry_after_s:
            raise HTTPException(
                429, str(exc), headers={"Retry-After": f"{exc.retry_after_s:.0f}"}
            ) from None
        raise HTTPException(401, str(exc)) from None
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.identity.policy.session_absolute_s),
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies,
        path="/",
    )
    return _me(principal)


@router.delete("/api/session", status_code=204)
def log_out(request: Request, response: Response) -> None:
    """Log out: the session ends on the server and the cookie is cleared."""
    state = app_state(request)
    principal = identify(request, state)
    if principal is not None:
        state.identity.logout(principal, now=state.clock())
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/api/me")
def me(principal: Caller) -> dict[str, Any]:
    """The caller's account, role, scope and permissions (what the pages show and allow)."""
    return _me(principal)


@router.get("/api/admin/accounts")
def list_accounts(request: Request, _: Admin) -> list[dict[str, Any]]:
    return [a.public() for a in app_state(request).identity.accounts.list()]


@router.post("/api/admin/accounts", status_code=201)
def add_account(new: NewAccount, request: Request, admin: Admin) -> dict[str, Any]:
    state = app_state(request)
    try:
        account = state.identity.add(
            new.name, new.role, new.password, scope=_scope_or_422(request, new.scope),
            officer=new.officer, display_name=new.display_name, by=admin.account,
            now=state.clock(),
        )  # fmt: skip
    except AccountError as exc:
        raise HTTPException(409, str(exc)) from None
    return account.public()


@router.patch("/api/admin/accounts/{name}")
def change_account(
    name: str, change: AccountChange, request: Request, admin: Admin
) -> dict[str, Any]:
    """Change an account's role, scope or name, or disable it (its sessions end at once)."""
    state = app_state(request)
    changes: dict[str, Any] = change.model_dump(exclude_none=True)
    if "scope" in changes:
        changes["scope"] = _scope_or_422(request, changes["scope"])
    try:
        return state.identity.change(name, by=admin.account, now=state.clock(), **changes).public()
    except AccountError as exc:
        raise HTTPException(404 if "no account" in str(exc) else 422, str(exc)) from None


@router.put("/api/admin/accounts/{name}/password", status_code=204)
def set_password(name: str, new: NewPassword, request: Request, admin: Admin) -> None:
    state = app_state(request)
    try:
        state.identity.set_password(name, new.password, by=admin.account, now=state.clock())
    except AccountError as exc:
        raise HTTPException(404 if "no account" in str(exc) else 422, str(exc)) from None


@router.get("/api/admin/tokens")
def list_tokens(request: Request, _: Admin) -> list[dict[str, Any]]:
    zone = app_state(request).settings.timezone
    return [
        {
            "id": t.id,
            "account": t.account,
            "label": t.label,
            "created": local_iso(t.created_at, zone),
            "revoked": t.revoked,
        }
        for t in app_state(request).identity.accounts.tokens()
    ]


@router.post("/api/admin/tokens", status_code=201)
def issue_token(new: NewToken, request: Request, admin: Admin) -> dict[str, str]:
    """A bearer token for an integration; the secret is shown once, here."""
    state = app_state(request)
    try:
        token, secret = state.identity.accounts.issue_token(new.account, new.label)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from None
    state.identity.record(
        admin, "token_issued", now=state.clock(), target=new.account, detail=token.id
    )
    return {"id": token.id, "account": token.account, "token": secret}


@router.delete("/api/admin/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, request: Request, admin: Admin) -> None:
    state = app_state(request)
    try:
        token = state.identity.accounts.revoke_token(token_id)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from None
    state.identity.record(
        admin, "token_revoked", now=state.clock(), target=token.account, detail=token.id
    )


@router.get("/api/audit/access")
def access_audit(
    request: Request,
    _: Auditor,
    actor: str | None = Query(None, max_length=200),
    target: str | None = Query(None, max_length=200),
    since: float | None = Query(None, ge=0, le=LATEST_EPOCH_S, allow_inf_nan=False),
    until: float | None = Query(None, ge=0, le=LATEST_EPOCH_S, allow_inf_nan=False),
    limit: int = Query(500, ge=1, le=5000),
) -> list[dict[str, Any]]:
    """Logins, failures, logouts, refusals and account changes: newest first, filtered by
    actor, target (an account, an incident, a path) and time (epoch seconds)."""
    state = app_state(request)
    records = state.identity.accounts.audit_records(
        account=actor, target=target, since=since, until=until, limit=limit
    )
    for record in records:
        record["time"] = local_iso(record["at"], state.settings.timezone)
    return records
