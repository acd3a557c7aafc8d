"""Intake over real Redis and PostgreSQL with the two-area city: the category catalogue,
the place type-ahead, what a report records, and what intake refuses (outside jurisdiction,
an unknown category, a repeated ticket, an ending without a reason)."""

from __future__ import annotations

import json
import threading

import pytest

from dispatch.core.access import Role
from tests.integration.helpers import bearer, wait_until
from tests.integration.test_access import EAST, running_center

pytestmark = pytest.mark.timeout(180)


# Beside the areas file, where the city looks for its places: one in each district.
PLACES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": name, "kind": "poi"},
            "geometry": {"type": "Point", "coordinates": [lon, 29.08]},
        }
        for name, lon in (("东市街菜场", 119.6502), ("西市街菜场", 119.642))
    ],
}


@pytest.fixture
def center(tmp_path, redis_service, prefix, database_url):
    (tmp_path / "places.geojson").write_text(json.dumps(PLACES, ensure_ascii=False))
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        client.headers.update(bearer(database_url))
        yield client


def opened(client, **fields) -> dict:
    body = {"category": "street_vending", "lon": EAST[0], "lat": EAST[1], **fields}
    reply = client.post("/api/incidents", json=body)
    assert reply.status_code == 202, reply.text
    incident = reply.json()["incident"]
    wait_until(lambda: client.get(f"/api/incidents/{incident}").status_code == 200, 10, incident)
    return client.get(f"/api/incidents/{incident}").json()


def test_the_catalogue_names_each_category_in_both_languages(center) -> None:
    listed = {c["key"]: c for c in center.get("/api/categories").json()}
    assert listed["street_vending"] == {
        "key": "street_vending",
        "zh": "占道经营",
        "en": "Street vending",
        "priority": 3,
        "citizen": True,
    }
    assert listed["sos"]["citizen"] is False and listed["sos"]["priority"] == 1


def test_a_report_records_its_area_team_caller_and_the_actions_it_allows(center) -> None:
    incident = opened(
        center,
        description=" 早市摊贩占道 ",
        caller_name="王先生",
        caller_phone="13800000000",
        address="人民路 12 号",
    )
    assert incident["id"].startswith("INC-") and len(incident["id"]) == 19
    assert (incident["area"], incident["area_name"], incident["team"]) == (
        "east",
        "east",
        "team-east",
    )
    assert (incident["description"], incident["caller_name"]) == ("早市摊贩占道", "王先生")
    assert (incident["caller_phone"], incident["address"]) == ("13800000000", "人民路 12 号")
    assert incident["actions"] == ["acknowledge", "assign", "cancel", "merge"]
    listed = center.get("/api/incidents").json()
    assert [i["actions"] for i in listed if i["id"] == incident["id"]] == [incident["actions"]]
    with center.websocket_connect("/ws/live") as ws:
        snapshot = ws.receive_json()
        shown = [i for i in snapshot["incidents"] if i["id"] == incident["id"]]
        assert [i["actions"] for i in shown] == [incident["actions"]]
        center.post(f"/api/incidents/{incident['id']}/acknowledge", json={})
        while (entry := ws.receive_json())["type"] != "incident":
            pass
    assert entry["body"]["phase"] == "acknowledged"
    assert entry["body"]["actions"] == ["assign", "cancel", "merge"]


def test_intake_refuses_a_point_outside_jurisdiction_and_an_unknown_category(center) -> None:
    outside = center.post(
        "/api/incidents", json={"category": "street_vending", "lon": 120.5, "lat": 30.0}
    )
    assert outside.status_code == 422 and "outside jurisdiction" in outside.json()["detail"]
    unknown = center.post(
        "/api/incidents", json={"category": "jaywalking", "lon": EAST[0], "lat": EAST[1]}
    )
    assert unknown.status_code == 422
    assert "street_vending" in unknown.json()["detail"]


def test_the_same_ticket_twice_opens_one_incident_even_at_once(center) -> None:
    body = {"category": "street_vending", "lon": EAST[0], "lat": EAST[1], "ticket": "GD-0001"}
    replies: list = []

    def send() -> None:
        replies.append(center.post("/api/incidents", json=body))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 200, 200, 202], [r.text for r in replies]
    first = next(r.json()["incident"] for r in replies if r.status_code == 202)
    assert all(
        r.json() == {"incident": first, "duplicate": True} for r in replies if r.status_code == 200
    )
    wait_until(lambda: center.get(f"/api/incidents/{first}").status_code == 200, 10, first)
    assert center.get(f"/api/incidents/{first}").json()["ticket"] == "GD-0001"


def test_cancel_and_close_need_a_reason_which_the_audit_keeps(center) -> None:
    incident = opened(center)["id"]
    for blank in ({}, {"reason": "   "}):
        refused = center.post(f"/api/incidents/{incident}/cancel", json=blank)
        assert refused.status_code == 422 and "reason" in refused.json()["detail"]
    refused = center.post(f"/api/incidents/{incident}/close", json={"reason": ""})
    assert refused.status_code == 422
    assert (
        center.post(f"/api/incidents/{incident}/cancel", json={"reason": "误报"}).status_code == 202
    )
    wait_until(lambda: center.get(f"/api/incidents/{incident}").json()["phase"] == "cancelled", 10)
    assert center.get(f"/api/incidents/{incident}").json()["actions"] == []
    audit = center.get(f"/api/incidents/{incident}/audit").json()
    assert any(r.get("event") == "IncidentCancelled" and "误报" in r["detail"] for r in audit)


def test_places_are_searched_by_name_within_the_callers_scope(center, database_url) -> None:
    found = center.get("/api/places", params={"q": "市街", "limit": 5}).json()
    assert [(p["name"], p["area"]) for p in found] == [
        ("东市街菜场", "east"),
        ("西市街菜场", "west"),
    ]
    assert found[0] == {
        "name": "东市街菜场",
        "kind": "poi",
        "lon": 119.6502,
        "lat": 29.08,
        "area": "east",
        "area_name": "east",
        "address": "",
    }
    assert len(center.get("/api/places", params={"q": "菜场", "limit": 1}).json()) == 1
    west = bearer(database_url, Role.DISPATCHER, name="west-dispatcher", scope="west")
    assert [
        p["name"] for p in center.get("/api/places", params={"q": "菜场"}, headers=west).json()
    ] == ["西市街菜场"]
    blank = center.get("/api/places", params={"q": "  "})
    assert blank.status_code == 422 and "blank" in blank.json()["detail"]
    # A report near a place, naming no address, is addressed by it.
    assert opened(center, lon=119.6503, lat=29.0801)["address"] == "东市街菜场附近"
