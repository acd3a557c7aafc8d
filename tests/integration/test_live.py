"""Incidents through the API, run by the engine, seen on the live feed — which resumes after a
disconnect with nothing lost and nothing repeated."""

from __future__ import annotations

import time

import pytest
import yaml
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.settings import Settings
from dispatch.store import Store
from tests.integration.helpers import bearer, store_fix, wait_until
from tests.integration.test_terminal_flow import city_files


def make_client(redis_service, prefix, tmp_path, database_url) -> TestClient:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump({"default": {"respond_s": 3, "turn_out_s": 6, "warn_at": 0.5}})
    )
    areas, roster = city_files(tmp_path)
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        policy_file=policy,
        areas_file=areas,
        roster_file=roster,
        engine_id=f"engine-{prefix}",
        engine_lease_ms=3000,
        database_url=database_url,
    )
    # Team east's officers heard from: orders go only to officers online.
    store = Store.from_url(redis_service.url, prefix)
    store.load_functions()
    for officer, device in (("zhang3", "BC-1"), ("li4", "BC-2")):
        store_fix(store, officer, device, (119.651, 29.081), received_at=time.time())
    store.close()
    client = TestClient(create_app(settings, workers=("engine",)))
    client.headers.update(bearer(database_url, Role.DISPATCHER, name="d7"))
    return client


def new_incident(client: TestClient, title: str) -> str:
    reply = client.post(
        "/api/incidents",
        json={
            "category": "street_vending",
            "priority": 2,
            "lon": 119.65,
            "lat": 29.08,
            "title": title,
        },
    )
    assert reply.status_code == 202, reply.text
    incident = reply.json()["incident"]
    wait_until(
        lambda: client.get(f"/api/incidents/{incident}").status_code == 200, 10, "the engine"
    )
    return incident


def test_dispatcher_actions_with_immediate_refusals(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with make_client(redis_service, prefix, tmp_path, database_url) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 10, "engine")
        incident = new_incident(client, "占道经营 / street vending")
        assert client.post(f"/api/incidents/{incident}/acknowledge", json={}).status_code == 202
        wait_until(
            lambda: client.get(f"/api/incidents/{incident}").json()["phase"] == "acknowledged", 10
        )
        order = client.post(
            f"/api/incidents/{incident}/assign", json={"officers": ["zhang3", "li4"]}
        )
        assert order.status_code == 202 and order.json()["order"].startswith("O-")
        wait_until(
            lambda: client.get(f"/api/incidents/{incident}").json()["phase"] == "dispatched", 10
        )
        refused = client.post(f"/api/incidents/{incident}/resolve", json={})
        assert refused.status_code == 409 and "dispatched" in refused.json()["detail"]
        view = client.get(f"/api/incidents/{incident}").json()
        assert view["order"]["officers"] == ["zhang3", "li4"] and view["reported_time"].endswith(
            "+08:00"
        )
        respond = view["milestones"][0]
        assert respond["milestone"] == "respond" and respond["by"] == "d7"
        wait_until(
            lambda: any(
                r["kind"] == "warning"
                for r in client.get(f"/api/incidents/{incident}/audit").json()
            ),
            10,
        )
        kinds = [r["kind"] for r in client.get(f"/api/incidents/{incident}/audit").json()]
        assert kinds[:2] == ["event", "event"] and "milestone" in kinds
        assert client.post("/api/incidents/nope/cancel", json={"reason": "误报"}).status_code == 404
        order = view["order"]["id"]
        li4 = bearer(database_url, Role.OFFICER, name="li4")
        for status in ("accepted", "enroute"):  # from the officer page
            reply = client.post(f"/api/orders/{order}/ack", json={"status": status}, headers=li4)
            assert reply.status_code == 202
        wait_until(
            lambda: client.get(f"/api/incidents/{incident}").json()["phase"] == "en_route", 10
        )
        assert client.get(f"/api/incidents/{incident}").json()["order"]["accepted_by"] == "li4"
        duplicate = new_incident(client, "same vendor, second caller")
        merged = client.post(f"/api/incidents/{duplicate}/merge", json={"into": incident})
        assert merged.status_code == 202
        wait_until(
            lambda: client.get(f"/api/incidents/{duplicate}").json()["phase"] == "merged", 10
        )
        assert [i["id"] for i in client.get("/api/incidents").json()] == [incident]
        assert (
            client.get("/openapi.json").status_code == 200
            and client.get("/docs").status_code == 404
        )


def test_live_feed_resumes_after_a_disconnect_without_loss_or_repeats(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with make_client(redis_service, prefix, tmp_path, database_url) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 10, "engine")
        first = new_incident(client, "first")
        with client.websocket_connect("/ws/live") as ws:
            snapshot = ws.receive_json()
            assert snapshot["type"] == "snapshot"
            assert [i["id"] for i in snapshot["incidents"]] == [first]
            second = new_incident(client, "second")
            seen = ws.receive_json()
            while not (seen["type"] == "incident" and seen["body"]["id"] == second):
                seen = ws.receive_json()
            last_seq = seen["seq"]
        # Away for five seconds while incidents arrive and the clock runs.
        for n in range(3):
            new_incident(client, f"missed {n}")
        time.sleep(5)
        store = client.app.state.yiwang.store
        missed = [
            entry_id
            for entry_id, _ in store.redis.xrange(store.keys.events, min=f"({last_seq}", max="+")
        ]
        assert len(missed) >= 6  # three new incidents plus warnings and breaches
        with client.websocket_connect(f"/ws/live?since={last_seq}") as ws:
            received = [ws.receive_json() for _ in missed]
        assert [m["seq"] for m in received] == missed
        assert len({m["seq"] for m in received}) == len(received)
        assert {"incident", "warning", "escalation"} <= {m["type"] for m in received}


def test_the_officer_page_sees_only_its_officers_work(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with make_client(redis_service, prefix, tmp_path, database_url) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 10, "engine")
        theirs, other = new_incident(client, "theirs"), new_incident(client, "someone else's")
        client.post(f"/api/incidents/{theirs}/assign", json={"officers": ["li4"]})
        wait_until(
            lambda: client.get(f"/api/incidents/{theirs}").json()["phase"] == "dispatched", 10
        )
        li4 = bearer(database_url, Role.OFFICER, name="li4")
        with client.websocket_connect("/ws/live?officer=zhang3", headers=li4) as ws:
            snapshot = ws.receive_json()
            assert [i["id"] for i in snapshot["incidents"]] == [theirs]
            client.post(f"/api/incidents/{other}/acknowledge", json={})
            client.post(f"/api/incidents/{theirs}/reassign", json={"reason": "closer unit"})
            update = ws.receive_json()
            assert theirs in (update["body"].get("id"), update["body"].get("incident"))
        with client.websocket_connect("/ws/live?area=nowhere") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert "unknown area 'nowhere'" in closed.value.reason
        # Without credentials the upgrade itself is refused.
        anonymous = TestClient(client.app)
        with pytest.raises(WebSocketDisconnect) as closed, anonymous.websocket_connect("/ws/live"):
            pass
        assert closed.value.code == 1008
