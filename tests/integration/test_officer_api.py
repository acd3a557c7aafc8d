"""The officer page's server side through the real app (real Redis and PostgreSQL, a leading
engine): an order lists where the officer is, the way there and the answers that apply now;
an answer the timeline would drop is refused at once with the reason; an SOS from the page
opens the incident a device's SOS opens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.settings import Settings
from dispatch.store import Store
from gis.coords import LonLat, haversine_m
from tests.integration.helpers import bearer, store_fix, wait_until
from tests.integration.test_terminal_flow import city_files

pytestmark = pytest.mark.timeout(120)

PREFIX = "officerpage"
EAST = (119.650, 29.080)  # the incident, in city_files' "east" cell (team east's)
ZHANG3_AT = (119.652, 29.082)  # where zhang3's body camera last put him


class Center(NamedTuple):
    client: TestClient
    store: Store
    admin: dict[str, str]
    zhang3: dict[str, str]
    wang5: dict[str, str]  # an officer the center has never had a fix from


@pytest.fixture(scope="module")
def center(redis_service, postgres, tmp_path_factory) -> Iterator[Center]:
    workdir = tmp_path_factory.mktemp("officerpage")
    areas, roster = city_files(workdir)
    database_url = postgres.create_database(PREFIX, template="yiwang_template")
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix=PREFIX,
        database_url=database_url,
        areas_file=areas,
        roster_file=roster,
        data_dir=workdir / "var",
        engine_id=f"engine-{PREFIX}",
        engine_lease_ms=3000,
    )
    store = Store.from_url(redis_service.url, PREFIX)
    store.load_functions()
    store_fix(store, "zhang3", "BC-1", ZHANG3_AT, received_at=time.time())
    with TestClient(create_app(settings, workers=("engine",))) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "the engine")
        yield Center(
            client,
            store,
            bearer(database_url, name="officerpage-admin"),
            bearer(database_url, Role.OFFICER, name="officerpage-zhang3", officer="zhang3"),
            bearer(database_url, Role.OFFICER, name="officerpage-wang5", officer="wang5"),
        )
    store.close()


def ordered_to_zhang3(center: Center) -> dict[str, Any]:
    """A new incident at EAST, ordered to zhang3, as his page lists it."""
    client = center.client
    body = {"category": "street_vending", "lon": EAST[0], "lat": EAST[1], "title": "占道经营"}
    incident = client.post("/api/incidents", json=body, headers=center.admin).json()["incident"]
    wait_until(
        lambda: client.get(f"/api/incidents/{incident}", headers=center.admin).status_code == 200,
        10,
        f"the engine to open {incident}",
    )
    assigned = client.post(
        f"/api/incidents/{incident}/assign", json={"officers": ["zhang3"]}, headers=center.admin
    )
    assert assigned.status_code == 202, assigned.text
    return mine(center, incident, lambda entry: entry["phase"] == "dispatched")


def mine(center: Center, incident: str, ready: Any = lambda entry: True) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def listed() -> bool:
        entries = center.client.get("/api/orders/mine", headers=center.zhang3).json()
        found.update(next((e for e in entries if e["id"] == incident and ready(e)), {}))
        return bool(found)

    wait_until(listed, 10, f"{incident} on zhang3's page")
    return found


def test_an_order_says_where_the_officer_is_the_way_there_and_what_may_be_answered(
    center: Center,
) -> None:
    entry = ordered_to_zhang3(center)
    fix_at = entry["me"].pop("fix_at")
    assert entry["me"] == {"lon": ZHANG3_AT[0], "lat": ZHANG3_AT[1]}
    assert abs(fix_at - time.time()) < 60
    # No street graph in this city: the straight line, timed with the fallback's detour.
    assert entry["route"] == [list(ZHANG3_AT), list(EAST)]
    straight = haversine_m(LonLat(*ZHANG3_AT), LonLat(*EAST))
    assert entry["distance_m"] == round(straight)
    assert entry["eta_s"] > straight / (30 / 3.6)
    assert entry["answers"] == ["accepted", "rejected", "enroute", "arrived"]


def test_an_answer_the_timeline_would_drop_is_refused_at_once_with_the_reason(
    center: Center,
) -> None:
    entry = ordered_to_zhang3(center)
    order = entry["order"]["id"]
    before = len(center.store.incidents.inbox_entries(10_000))
    done = center.client.post(
        f"/api/orders/{order}/ack", json={"status": "done"}, headers=center.zhang3
    )
    assert done.status_code == 409, done.text
    detail = done.json()["detail"]
    assert "'done' cannot be answered now" in detail and "dispatched" in detail, detail
    assert len(center.store.incidents.inbox_entries(10_000)) == before  # nothing queued
    accepted = center.client.post(
        f"/api/orders/{order}/ack", json={"status": "accepted"}, headers=center.zhang3
    )
    assert accepted.status_code == 202, accepted.text
    # Once the engine took it, accepting again is no longer offered; setting out still is.
    after = mine(center, entry["id"], lambda e: e["order"]["accepted_by"] == "zhang3")
    assert after["answers"] == ["rejected", "enroute", "arrived"]


def sos_incident(center: Center, incident: str) -> dict[str, Any]:
    opened: dict[str, Any] = {}

    def seen() -> bool:
        answer = center.client.get(f"/api/incidents/{incident}", headers=center.admin)
        opened.update(answer.json() if answer.status_code == 200 else {})
        return bool(opened)

    wait_until(seen, 10, f"the engine to open {incident}")
    return opened


def test_an_sos_from_the_page_opens_the_incident_a_device_sos_opens(center: Center) -> None:
    here = (119.6485, 29.0795)
    raised = center.client.post(
        "/api/sos", json={"lon": here[0], "lat": here[1], "acc": 8}, headers=center.zhang3
    )
    assert raised.status_code == 202, raised.text
    incident = raised.json()["incident"]
    assert incident.startswith("SOS-")
    opened = sos_incident(center, incident)
    assert (opened["category"], opened["priority"], opened["source"]) == ("sos", 1, "sos")
    assert opened["location"] == list(here)
    assert "zhang3" in opened["title"]
    # Without the phone's position: at his newest fix, and the title says so.
    blind = center.client.post("/api/sos", json={}, headers=center.zhang3)
    assert blind.status_code == 202, blind.text
    placed = sos_incident(center, blind.json()["incident"])
    assert placed["location"] == list(ZHANG3_AT)
    assert "last known position" in placed["title"]


def test_an_sos_nobody_could_place_is_refused_so_the_officer_calls_in(center: Center) -> None:
    refused = center.client.post("/api/sos", json={}, headers=center.wang5)
    assert refused.status_code == 409, refused.text
    assert "no fix of wang5 is known" in refused.json()["detail"]
    assert center.client.post("/api/sos", json={}, headers=center.admin).status_code == 403
