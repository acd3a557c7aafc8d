"""Alerts: what the console must see (scoped as incidents are) and their acknowledgement.

GET  /api/alerts              the alerts a screen keeps, newest first
POST /api/alerts/{id}/ack     202 with the acknowledged alert; 404 unknown, 409 acknowledged
                              before (the detail names by whom and when), 403 outside scope
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dispatch.api.auth import refuse, require, scope_of
from dispatch.api.state import app_state
from dispatch.core.access import Permission, Principal
from dispatch.core.alerts import AlreadyAcknowledgedError, alert_record, in_scope, kept
from dispatch.store import UnknownAlertError

router = APIRouter(tags=["alerts"])

Watcher = Annotated[Principal, Depends(require(Permission.WATCH_LIVE))]
Dispatcher = Annotated[Principal, Depends(require(Permission.ACT_ON_INCIDENTS))]


@router.get("/api/alerts")
def list_alerts(request: Request, caller: Watcher) -> list[dict[str, Any]]:
    """Every alert not acknowledged and those acknowledged in the last 12 h (at most 200,
    newest first) that lie in the caller's area scope."""
    state = app_state(request)
    scope = scope_of(caller, state)
    zone = state.settings.timezone
    shown = kept(state.store.alerts.alerts(), state.clock())
    return [alert_record(a, zone) for a in shown if in_scope(a, scope)]


@router.post("/api/alerts/{alert_id}/ack", status_code=202)
def acknowledge_alert(alert_id: str, request: Request, caller: Dispatcher) -> dict[str, Any]:
    """Acknowledge an alert in the caller's scope; the screens get an `alert_ack` entry."""
    state = app_state(request)
    alerts = state.store.alerts
    found = alerts.alert(alert_id)
    if found is None:
        raise UnknownAlertError(alert_id)
    if not in_scope(found, scope_of(caller, state)):
        raise refuse(state, caller, f"alert {alert_id}", "the alert is outside your area scope")
    now = state.clock()
    zone = state.settings.timezone
    try:
        done = alerts.acknowledge(alert_id, caller.account, now=now, zone=zone)
    except AlreadyAcknowledgedError as exc:
        # The refusal is the caller's too: the audit keeps who tried after whom.
        state.identity.record(
            caller, "refused", now=now, target=f"alert {alert_id}", detail=str(exc)
        )
        raise
    state.identity.record(
        caller, "alert:ack", now=now, target=alert_id, detail=f"{done.kind} {done.incident or ''}"
    )
    return alert_record(done, zone)
