"""Alerts with a real Redis and engine: raised by a step, on the snapshot, acknowledged once,
seen acknowledged after a reload, scoped by place, replayed as they were; raised once by id and
bounded in the store."""

from __future__ import annotations

import time

import pytest

from dispatch.core.access import Role
from dispatch.core.alerts import (
    KEEP_ACKNOWLEDGED_S,
    AlertKind,
    AlreadyAcknowledgedError,
    new_alert,
)
from dispatch.store import Store
from dispatch.store.alerts import ALERTS_CAP, raise_alerts
from tests.integration.helpers import bearer, wait_until
from tests.integration.test_access import audit_of
from tests.integration.test_live import make_client, new_incident

ZONE = "Asia/Shanghai"


def _alerts_of(client, incident: str, **headers) -> dict[str, dict]:
    shown = client.get("/api/alerts", headers=headers or None).json()
    return {a["kind"]: a for a in shown if a["incident"] == incident}


def test_an_alert_raised_by_the_engine_is_acknowledged_once_and_stays_so(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with make_client(redis_service, prefix, tmp_path, database_url) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 10, "engine")
        started = time.time()
        incident = new_incident(client, "alerted")
        # The policy warns 1.5 s after the report (respond_s 3, warn_at 0.5).
        wait_until(lambda: "warning" in _alerts_of(client, incident), 10, "the warning")
        alerts = _alerts_of(client, incident)
        assert {"new_incident", "warning"} <= set(alerts)
        warning = alerts["warning"]
        assert warning["id"].startswith("ALR-") and warning["acknowledged_by"] is None
        assert warning["raised_time"].endswith("+08:00") and warning["level"] == 0
        with client.websocket_connect("/ws/live") as ws:
            snapshot = ws.receive_json()
            assert warning["id"] in {a["id"] for a in snapshot["alerts"]}
            acked = client.post(f"/api/alerts/{warning['id']}/ack")
            assert acked.status_code == 202, acked.text
            assert acked.json()["acknowledged_by"] == "d7"
            seen = ws.receive_json()
            while seen["type"] != "alert_ack":
                seen = ws.receive_json()
            assert seen["body"]["id"] == warning["id"] and seen["body"]["acknowledged_by"] == "d7"
        again = client.post(f"/api/alerts/{warning['id']}/ack")
        assert again.status_code == 409
        assert "already acknowledged by d7 at" in again.json()["detail"]
        assert client.post("/api/alerts/ALR-nope/ack").status_code == 404
        audited = {(r["action"], r["target"]) for r in audit_of(database_url, "d7")}
        assert {("alert:ack", warning["id"]), ("refused", f"alert {warning['id']}")} <= audited
        with client.websocket_connect("/ws/live") as ws:  # a reload
            reloaded = {a["id"]: a for a in ws.receive_json()["alerts"]}
        assert reloaded[warning["id"]]["acknowledged_by"] == "d7"
        assert reloaded[warning["id"]]["acknowledged_time"].endswith("+08:00")
        store = client.app.state.yiwang.store
        raised = [
            e
            for e in store.recent_events(1000)
            if e["type"] == "alert" and warning["id"] in e["body"]
        ]
        assert len(raised) == 1  # once, however often the engine stepped since

        # A dispatcher of the west cell does not see the east cell's alerts, nor acknowledge.
        west = bearer(database_url, Role.DISPATCHER, name="west-d", scope="west")
        assert _alerts_of(client, incident, **west) == {}
        with client.websocket_connect("/ws/live", headers=west) as ws:
            assert ws.receive_json()["alerts"] == []
        other = alerts["new_incident"]["id"]
        assert client.post(f"/api/alerts/{other}/ack", headers=west).status_code == 403

        # Replay: the warning raised in the window, acknowledged only once its end passes it.
        ack_at = acked.json()["acknowledged_at"]
        window = {"from": f"{started - 5:.3f}", "to": f"{ack_at - 0.001:.3f}"}
        before = {a["id"]: a for a in client.get("/api/replay", params=window).json()["alerts"]}
        assert before[warning["id"]]["acknowledged_by"] is None
        window["to"] = f"{time.time() + 1:.3f}"
        after = {a["id"]: a for a in client.get("/api/replay", params=window).json()["alerts"]}
        assert after[warning["id"]]["acknowledged_by"] == "d7"
        window["from"] = f"{warning['raised_at'] + 0.001:.3f}"
        later = client.get("/api/replay", params=window).json()["alerts"]
        assert warning["id"] not in {a["id"] for a in later}


def test_the_store_raises_an_id_once_and_stays_bounded(redis_service, prefix) -> None:
    store = Store.from_url(redis_service.url, prefix)
    store.load_functions()
    t0 = 1_795_000_000.0

    def alert(n: int, at: float):
        return new_alert(AlertKind.SENSOR_SILENT, occurrence=f"s{n}", message="m", raised_at=at)

    first = alert(0, t0)
    assert store.alerts.raise_alert(first, ZONE) is True
    assert store.alerts.raise_alert(first, ZONE) is False
    assert sum(e["type"] == "alert" for e in store.recent_events()) == 1
    stale = store.redis.hget(store.keys.alerts, first.id)
    store.alerts.acknowledge(first.id, "zhang", now=t0 + 1, zone=ZONE)
    with pytest.raises(AlreadyAcknowledgedError, match="by zhang"):
        store.alerts.acknowledge(first.id, "li", now=t0 + 2, zone=ZONE)
    # A write decided on a stale reading is refused, and the record as it is comes back.
    args = (first.id, stale, "{}", f"{t0 + 2}")
    keys = (store.keys.alerts, store.keys.alerts_by_ack, store.keys.events)
    assert "zhang" in store.redis.fcall("ack_alert", 3, *keys, *args)
    # Raised 12 h after the acknowledgement, another alert drops the acknowledged one.
    later = alert(1, t0 + 1 + KEEP_ACKNOWLEDGED_S + 1)
    store.alerts.raise_alert(later, ZONE)
    assert store.alerts.alert(first.id) is None and store.alerts.alert(later.id) is not None
    pipe = store.redis.pipeline(transaction=False)
    base = t0 + 2 * KEEP_ACKNOWLEDGED_S
    raise_alerts(pipe, store.keys, [alert(n, base + n) for n in range(2, ALERTS_CAP + 12)], ZONE)
    pipe.execute()
    assert store.redis.hlen(store.keys.alerts) == ALERTS_CAP
    assert store.redis.zcard(store.keys.alerts_by_raise) == ALERTS_CAP
    assert store.alerts.alert(later.id) is None  # the oldest went first
    store.close()
