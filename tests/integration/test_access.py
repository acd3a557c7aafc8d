"""Who may call what, and see where, over real Redis and PostgreSQL: every route of the schema
called anonymously and as each role against a table owned by this test, area scopes on the
routes and on the live feed, login throttling under a password-guessing loop, cookie sessions
and their Origin check, accounts disabled while their feed is open, the actor in the incident
audit, and the Content-Security-Policy on every answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from starlette.websockets import WebSocketDisconnect

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.db import AccountStore, Database
from dispatch.settings import Settings
from tests.integration.helpers import bearer, mqtt_client, publish_all, store_fix, wait_until
from tests.integration.test_terminal_flow import city_files

# A test that waits on a socket fails here instead of hanging the run.
pytestmark = pytest.mark.timeout(180)

PASSWORD = "a long test password"  # what tests.integration.helpers.bearer gives every account
OWN_ORIGIN = {"origin": "http://testserver"}
FOREIGN_ORIGIN = {"origin": "http://evil.example"}
SESSION_COOKIE = "yiwang_session"

# city_files: "west" is 119.640–119.645, "east" 119.645–119.655 (lat 29.07–29.09).
EAST = (119.650, 29.080)
WEST = (119.642, 29.080)
# Officer → (device, lon, lat): zhang3 and li4 are team-east's, wang5 is team-west's.
FIXES = {
    "zhang3": ("BC-1", 119.651, 29.081),
    "li4": ("BC-2", 119.652, 29.079),
    "wang5": ("BC-3", 119.642, 29.081),
}
EAST_OFFICERS = {"zhang3", "li4"}


# The center under test ------------------------------------------------------------------


@contextmanager
def running_center(
    tmp_path, redis_service, prefix: str, database_url: str, logins=None
) -> Iterator[TestClient]:
    """The app with the two-area city and a leading engine; with broker `logins`, ingest too.

    The client sends no credentials by itself: each call says who makes it.
    """
    areas, roster = city_files(tmp_path)
    mqtt_settings: dict[str, Any] = (
        {
            "mqtt_port": logins.broker.port,
            **logins.settings,
            "topic_root": prefix,
            "ingest_name": f"ingest-{prefix}",
            "unknown_devices": "register",  # the city's devices turn up on first sight
        }
        if logins is not None
        else {}
    )
    settings = Settings(
        areas_file=areas,
        roster_file=roster,
        redis_url=redis_service.url,
        key_prefix=prefix,
        engine_id=f"engine-{prefix}",
        engine_lease_ms=3000,
        database_url=database_url,
        data_dir=tmp_path / "var",
        **mqtt_settings,
    )
    workers = ("engine", "ingest") if logins is not None else ("engine",)
    with TestClient(create_app(settings, workers=workers)) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "the engine")
        if logins is not None:
            wait_until(lambda: client.get("/api/health").json()["ingest_connected"], 15, "ingest")
        yield client


def role_accounts(database_url: str) -> dict[str, dict[str, str]]:
    """Bearer headers of one whole-center account per role, named `<role>-1`."""
    return {role.value: bearer(database_url, role, name=f"{role.value}-1") for role in Role}


def report(client: TestClient, headers: dict[str, str], point: tuple[float, float], title: str):
    reply = client.post(
        "/api/incidents",
        json={"category": "street_vending", "lon": point[0], "lat": point[1], "title": title},
        headers=headers,
    )
    assert reply.status_code == 202, reply.text
    incident = reply.json()["incident"]
    wait_until(
        lambda: client.get(f"/api/incidents/{incident}", headers=headers).status_code == 200,
        10,
        f"the engine to open {incident}",
    )
    return incident


def populate_both_districts(
    client: TestClient, logins, prefix: str, admin: dict[str, str]
) -> tuple[str, str]:
    """Every officer's device heard from, and one incident in each district: (east, west)."""
    publish_fixes(logins, prefix, ["zhang3", "li4", "wang5"])
    wait_until(lambda: len(client.get("/api/devices", headers=admin).json()) == 3, 10, "3 devices")
    return report(client, admin, EAST, "east"), report(client, admin, WEST, "west")


def phase_of(client: TestClient, headers: dict[str, str], incident: str) -> str:
    return client.get(f"/api/incidents/{incident}", headers=headers).json()["phase"]


def assign(client: TestClient, headers: dict[str, str], incident: str, officer: str) -> str:
    reply = client.post(
        f"/api/incidents/{incident}/assign", json={"officers": [officer]}, headers=headers
    )
    assert reply.status_code == 202, reply.text
    wait_until(lambda: phase_of(client, headers, incident) == "dispatched", 10, "the order")
    return reply.json()["order"]


def publish_fixes(logins, prefix: str, officers: list[str]) -> None:
    now = int(time.time())
    client_id = f"{prefix}-fixes-{now}-{len(officers)}"
    publisher = mqtt_client(logins.broker.port, client_id, mqtt.MQTTv311, logins.simulator)
    try:
        messages = []
        for officer in officers:
            device, lon, lat = FIXES[officer]
            fix = {"_type": "location", "lon": lon, "lat": lat, "tst": now, "acc": 5}
            messages.append((f"{prefix}/{officer}/{device}", json.dumps(fix).encode()))
        publish_all(publisher, messages)
    finally:
        publisher.loop_stop()
        publisher.disconnect()


def receive_until(ws, done, limit: int = 500) -> list[dict[str, Any]]:
    """Messages from the feed up to and including the first for which `done` holds."""
    seen = []
    for _ in range(limit):
        seen.append(ws.receive_json())
        if done(seen[-1]):
            return seen
    raise AssertionError(f"no expected message among {limit}: {seen[-5:]}")


def audit_of(database_url: str, account: str) -> list[dict[str, Any]]:
    db = Database(database_url, max_size=1)
    try:
        return AccountStore(db).audit_records(account=account, limit=100_000)
    finally:
        db.close()


# The role × endpoint matrix -------------------------------------------------------------

CALLERS = ("anonymous", *(role.value for role in Role))
PASSES = "passes the gate"  # any answer but 401/403 (and no server error)


def gate(*allowed: str) -> dict[str, int | str]:
    """Anonymous callers get 401, the roles named pass, every other role gets 403."""
    return {
        "anonymous": 401,
        **{role.value: PASSES if role.value in allowed else 403 for role in Role},
    }


PUBLIC = dict.fromkeys(CALLERS, PASSES)
ANY_ACCOUNT = gate(*(role.value for role in Role))
ADMIN = gate("admin")
WATCHERS = gate("admin", "commander", "dispatcher")  # the live map and its devices
ACTORS = gate("admin", "commander", "dispatcher")  # report and act on incidents
READERS = gate("admin", "commander", "dispatcher", "auditor")  # incidents and tracks
AUDITORS = gate("admin", "commander", "auditor")  # the access audit and evidence
OFFICERS = gate("officer")
HOTLINE = gate("admin", "integration")  # the 12345/8890 hotline's work orders
# Devices' own channel: accounts have no say, only a device's key opens it.
DEVICE_KEY = dict.fromkeys(CALLERS, 401)
INCIDENT_ACTIONS = ("acknowledge", "assign", "reassign", "cancel", "resolve", "close", "merge")

EXPECTED: dict[tuple[str, str], dict[str, int | str]] = {
    ("GET", "/api/health"): PUBLIC,
    ("POST", "/api/session"): PUBLIC,
    ("DELETE", "/api/session"): PUBLIC,
    ("GET", "/api/me"): ANY_ACCOUNT,
    ("GET", "/api/admin/accounts"): ADMIN,
    ("POST", "/api/admin/accounts"): ADMIN,
    ("PATCH", "/api/admin/accounts/{name}"): ADMIN,
    ("PUT", "/api/admin/accounts/{name}/password"): ADMIN,
    ("GET", "/api/admin/tokens"): ADMIN,
    ("POST", "/api/admin/tokens"): ADMIN,
    ("DELETE", "/api/admin/tokens/{token_id}"): ADMIN,
    ("GET", "/api/audit/access"): AUDITORS,
    ("GET", "/api/devices"): WATCHERS,
    ("GET", "/api/devices/{user}/{device}"): WATCHERS,
    ("GET", "/api/devices/{user}/{device}/track"): READERS,
    ("GET", "/api/ingest/stats"): ADMIN,
    ("GET", "/api/ingest/deadletters"): ADMIN,
    ("GET", "/api/osmand"): DEVICE_KEY,
    ("POST", "/api/osmand"): DEVICE_KEY,
    ("POST", "/api/incidents"): ACTORS,
    ("GET", "/api/incidents"): READERS,
    ("GET", "/api/incidents/{incident_id}"): READERS,
    ("GET", "/api/incidents/{incident_id}/audit"): READERS,
    **{("POST", f"/api/incidents/{{incident_id}}/{name}"): ACTORS for name in INCIDENT_ACTIONS},
    ("POST", "/api/hotline/orders"): HOTLINE,
    ("GET", "/api/categories"): ANY_ACCOUNT,
    ("GET", "/api/places"): ACTORS,
    # Citizens' reports (随手拍): a public channel, its photos read like the incident.
    ("POST", "/api/reports"): PUBLIC,
    ("GET", "/api/reports/categories"): PUBLIC,
    ("GET", "/api/incidents/{incident_id}/photos"): READERS,
    ("GET", "/api/incidents/{incident_id}/photos/{sha256}"): READERS,
    ("GET", "/api/orders/mine"): OFFICERS,
    ("POST", "/api/orders/{order_id}/ack"): OFFICERS,
    ("POST", "/api/sos"): OFFICERS,
    ("GET", "/api/incidents/{incident_id}/evidence"): AUDITORS,
    ("GET", "/api/incidents/{incident_id}/recommendations"): ACTORS,
    ("GET", "/api/city"): ANY_ACCOUNT,
    ("GET", "/api/roster"): ANY_ACCOUNT,
    ("GET", "/api/policies"): ANY_ACCOUNT,
    ("GET", "/api/clock"): ANY_ACCOUNT,
    ("GET", "/api/route"): ANY_ACCOUNT,
    ("GET", "/api/replay"): READERS,
    ("GET", "/api/alerts"): WATCHERS,
    ("POST", "/api/alerts/{alert_id}/ack"): ACTORS,
    ("GET", "/api/patrol"): AUDITORS,
    ("GET", "/api/stats/summary"): AUDITORS,
    ("GET", "/api/stats/breakdown"): AUDITORS,
}


def schema_routes(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def outcome(response: Response) -> int | str:
    if response.status_code in (401, 403):
        return response.status_code
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    return PASSES


class Sweep:
    """Calls every route of the schema, with plausible path values, queries and bodies."""

    def __init__(self, client: TestClient, incident: str, other_incident: str) -> None:
        self.client = client
        self.values = {
            "incident_id": incident,
            "name": "nobody",  # admin changes answer 404: no real account is touched
            "token_id": "tok_nope",
            "user": "zhang3",
            "device": "BC-1",
            "order_id": "O-nope",  # an officer's answer to an unknown order is a 404
            "sha256": "0" * 64,  # no photo of the incident: a 404 for those who may read it
            "alert_id": "ALR-nope",  # an unknown alert: a 404 for those who may acknowledge
        }
        now = time.time()
        self.queries = {
            "/api/route": {"from": "119.642,29.08", "to": "119.65,29.08"},
            "/api/replay": {"from": str(int(now - 600)), "to": str(int(now))},
            "/api/audit/access": {"limit": "5"},
            "/api/stats/breakdown": {"by": "team"},
            "/api/places": {"q": "路"},
        }
        self.bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/session"): {"name": "dispatcher-1", "password": PASSWORD},
            ("POST", "/api/admin/accounts"): {
                "name": "made-by-the-matrix",
                "role": "dispatcher",
                "password": PASSWORD,
            },
            ("PATCH", "/api/admin/accounts/{name}"): {"display_name": "renamed"},
            ("PUT", "/api/admin/accounts/{name}/password"): {"password": PASSWORD},
            ("POST", "/api/admin/tokens"): {"account": "nobody", "label": "matrix"},
            ("POST", "/api/incidents"): {
                "category": "street_vending",
                "lon": EAST[0],
                "lat": EAST[1],
            },
            ("POST", "/api/incidents/{incident_id}/assign"): {"officers": ["zhang3"]},
            ("POST", "/api/incidents/{incident_id}/merge"): {"into": other_incident},
            ("POST", "/api/orders/{order_id}/ack"): {"status": "accepted"},
            ("POST", "/api/hotline/orders"): {
                "ticket_id": "matrix-1",
                "category": "street_vending",
                "lon": EAST[0],
                "lat": EAST[1],
                "crs": "wgs84",
            },
        }

    def call(self, method: str, path: str, headers: dict[str, str]) -> Response:
        url = path.format(**self.values)
        body = self.bodies.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)
        response = self.client.request(
            method, url, params=self.queries.get(path), json=body, headers=headers
        )
        # A login sets the cookie in the client's jar: the next anonymous call must not carry it.
        self.client.cookies.clear()
        return response

    def every_route(
        self, routes: list[tuple[str, str]], accounts: dict[str, dict[str, str]]
    ) -> Iterator[tuple[str, str, str, Response]]:
        for method, path in routes:
            for caller in CALLERS:
                headers = accounts.get(caller, {})
                yield method, path, caller, self.call(method, path, headers)


def test_every_route_refuses_exactly_the_callers_the_table_refuses(
    redis_service, prefix, tmp_path, database_url
) -> None:
    accounts = role_accounts(database_url)
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        routes = schema_routes(client)
        unlisted = [f"{m} {p}" for m, p in routes if (m, p) not in EXPECTED]
        assert unlisted == [], f"routes without an entry in EXPECTED: {unlisted}"
        stale = [f"{m} {p}" for m, p in EXPECTED if (m, p) not in routes]
        assert stale == [], f"EXPECTED names routes the schema lacks: {stale}"

        incident = report(client, accounts["admin"], EAST, "the matrix's incident")
        other = report(client, accounts["admin"], EAST, "the one it may merge into")
        wrong = []
        for method, path, caller, response in Sweep(client, incident, other).every_route(
            routes, accounts
        ):
            if outcome(response) != EXPECTED[(method, path)][caller]:
                wrong.append(
                    f"{method} {path} as {caller}: expected {EXPECTED[(method, path)][caller]},"
                    f" got {response.status_code} {response.text[:120]}"
                )
        assert wrong == [], "\n".join(wrong)
        # The sweep reached the handlers: the admin's new account exists.
        names = [
            a["name"] for a in client.get("/api/admin/accounts", headers=accounts["admin"]).json()
        ]
        assert "made-by-the-matrix" in names

        # Refusals of a role are audited with the role and what was asked.
        refused = [r for r in audit_of(database_url, "auditor-1") if r["action"] == "refused"]
        assert any(r["target"] == "POST /api/incidents" for r in refused)
        assert all(r["role"] == "auditor" for r in refused)


def test_an_anonymous_answer_asks_for_a_bearer_token(
    redis_service, prefix, tmp_path, database_url
) -> None:
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        refused = client.get("/api/incidents")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "log in" in refused.json()["detail"]
        forged = client.get("/api/incidents", headers={"authorization": "Bearer yw_forged"})
        assert forged.status_code == 401


# Area scopes on the routes ------------------------------------------------------------------


def test_a_west_dispatcher_neither_sees_nor_touches_the_east(
    logins, redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    everywhere = bearer(database_url, Role.DISPATCHER, name="d-all")
    west = bearer(database_url, Role.DISPATCHER, name="d-west", scope="west")
    with running_center(tmp_path, redis_service, prefix, database_url, logins) as client:
        east_incident, west_incident = populate_both_districts(client, logins, prefix, admin)

        # A whole-center dispatcher sees both: the data is there to be hidden.
        assert {i["id"] for i in client.get("/api/incidents", headers=everywhere).json()} == {
            east_incident,
            west_incident,
        }
        assert [i["id"] for i in client.get("/api/incidents", headers=west).json()] == [
            west_incident
        ]
        assert [d["user"] for d in client.get("/api/devices", headers=west).json()] == ["wang5"]

        assert client.get(f"/api/incidents/{west_incident}", headers=west).status_code == 200
        for path in ("", "/audit", "/recommendations"):
            refused = client.get(f"/api/incidents/{east_incident}{path}", headers=west)
            assert refused.status_code == 403, (path, refused.text)
            assert "outside your area scope" in refused.json()["detail"]
        bodies = {
            "assign": {"officers": ["wang5"]},
            "merge": {"into": west_incident},
            "cancel": {"reason": "误报"},
            "close": {"reason": "处置完毕"},
        }
        for action in INCIDENT_ACTIONS:
            refused = client.post(
                f"/api/incidents/{east_incident}/{action}",
                json=bodies.get(action, {}),
                headers=west,
            )
            assert refused.status_code == 403, (action, refused.text)
        # Inside the scope, but reaching out of it: merging into the east, ordering zhang3.
        into_east = client.post(
            f"/api/incidents/{west_incident}/merge", json={"into": east_incident}, headers=west
        )
        assert into_east.status_code == 403
        order_east = client.post(
            f"/api/incidents/{west_incident}/assign", json={"officers": ["zhang3"]}, headers=west
        )
        assert order_east.status_code == 403 and "zhang3" in order_east.json()["detail"]
        east_report = client.post(
            "/api/incidents",
            json={"category": "street_vending", "lon": EAST[0], "lat": EAST[1]},
            headers=west,
        )
        assert east_report.status_code == 403

        for officer in EAST_OFFICERS:
            device = FIXES[officer][0]
            for path in (
                f"/api/devices/{officer}/{device}",
                f"/api/devices/{officer}/{device}/track",
            ):
                assert client.get(path, headers=west).status_code == 403, path
        track = client.get("/api/devices/wang5/BC-3/track", headers=west)
        assert track.status_code == 200 and track.json()["properties"]["points"] == 1

        now = int(time.time())
        replay = client.get(
            "/api/replay", params={"from": now - 600, "to": now + 60}, headers=west
        ).json()
        assert list(replay["tracks"]) == ["wang5/BC-3"]
        assert [i["id"] for i in replay["incidents"]] == [west_incident]
        assert phase_of(client, admin, east_incident) == "reported"  # nothing was done to it

    refusals = [r for r in audit_of(database_url, "d-west") if r["action"] == "refused"]
    assert {r["target"] for r in refusals} >= {
        f"incident {east_incident}",
        "track of zhang3/BC-1",
        "device li4/BC-2",
    }


# Area scopes on the live feed ----------------------------------------------------------------


def test_the_live_feed_refuses_anonymous_and_cross_site_callers(
    redis_service, prefix, tmp_path, database_url
) -> None:
    bearer(database_url, Role.DISPATCHER, name="d-page")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/live"):
            pass
        assert closed.value.code == 1008
        login = client.post(
            "/api/session", json={"name": "d-page", "password": PASSWORD}, headers=OWN_ORIGIN
        )
        assert login.status_code == 200
        # A page elsewhere riding the cookie (cross-site WebSocket hijacking), or no Origin.
        for headers in (FOREIGN_ORIGIN, {}):
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                client.websocket_connect("/ws/live", headers=headers),
            ):
                pass
            assert closed.value.code == 1008, headers
        with client.websocket_connect("/ws/live", headers=OWN_ORIGIN) as ws:
            assert ws.receive_json()["type"] == "snapshot"


def test_a_west_screen_receives_nothing_of_the_east(
    logins, redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    west = bearer(database_url, Role.DISPATCHER, name="d-west", scope="west")
    with running_center(tmp_path, redis_service, prefix, database_url, logins) as client:
        east_incident, west_incident = populate_both_districts(client, logins, prefix, admin)

        with client.websocket_connect("/ws/live", headers=admin) as ws:
            whole = ws.receive_json()
        assert {i["id"] for i in whole["incidents"]} == {east_incident, west_incident}
        assert len(whole["devices"]) == 3

        with client.websocket_connect("/ws/live", headers=west) as ws:
            snapshot = ws.receive_json()
            assert [i["id"] for i in snapshot["incidents"]] == [west_incident]
            assert [row[0] for row in snapshot["devices"]] == ["wang5/BC-3"]
            # Deltas: the east moves first, the west last; the screen sees only the west.
            publish_fixes(logins, prefix, ["zhang3", "li4"])
            later_east = report(client, admin, EAST, "east, later")
            publish_fixes(logins, prefix, ["wang5"])
            later_west = report(client, admin, WEST, "west, later")
            seen = receive_until(
                ws, lambda m: m["type"] == "incident" and m["body"]["id"] == later_west
            )
        incidents = {m["body"]["id"] for m in seen if m["type"] == "incident"}
        assert incidents == {later_west}
        devices = {row[0] for m in seen if m["type"] == "positions" for row in m["body"]}
        assert devices <= {"wang5/BC-3"}
        assert all(m["type"] in ("incident", "positions") for m in seen), seen
        assert later_east not in json.dumps(seen) and east_incident not in json.dumps(seen)

        # A west account may narrow to the west, never widen to the east.
        with client.websocket_connect("/ws/live?area=west", headers=west) as ws:
            narrowed = ws.receive_json()
        assert {i["id"] for i in narrowed["incidents"]} == {west_incident, later_west}
        with (
            client.websocket_connect("/ws/live?area=east", headers=west) as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
        assert closed.value.code == 1008
        assert "outside your area scope" in closed.value.reason


def test_an_officer_feed_holds_only_their_own_orders_and_devices(
    logins, redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    zhang3 = bearer(database_url, Role.OFFICER, name="zhang3")
    with running_center(tmp_path, redis_service, prefix, database_url, logins) as client:
        publish_fixes(logins, prefix, ["zhang3", "li4", "wang5"])
        wait_until(
            lambda: len(client.get("/api/devices", headers=admin).json()) == 3, 10, "3 devices"
        )
        own = report(client, admin, EAST, "for zhang3")
        teammate = report(client, admin, EAST, "for li4, same team")
        unassigned = report(client, admin, WEST, "nobody's yet")
        own_order = assign(client, admin, own, "zhang3")
        assign(client, admin, teammate, "li4")

        with client.websocket_connect("/ws/live", headers=zhang3) as ws:
            snapshot = ws.receive_json()
            assert [i["id"] for i in snapshot["incidents"]] == [own]
            assert [row[0] for row in snapshot["devices"]] == ["zhang3/BC-1"]
            publish_fixes(logins, prefix, ["li4", "wang5", "zhang3"])
            later = report(client, admin, EAST, "reported while zhang3 watches")
            client.post(f"/api/incidents/{teammate}/reassign", json={}, headers=admin)
            accepted = client.post(
                f"/api/orders/{own_order}/ack", json={"status": "accepted"}, headers=zhang3
            )
            assert accepted.status_code == 202, accepted.text
            # Everything before zhang3's own update (the last change made) is checked below.
            seen = receive_until(
                ws,
                lambda m: (
                    m["type"] == "incident"
                    and m["body"]["id"] == own
                    and m["body"]["order"]["accepted_by"] == "zhang3"
                ),
            )
        incidents = {m["body"]["id"] for m in seen if m["type"] == "incident"}
        assert incidents == {own}
        devices = {row[0] for m in seen if m["type"] == "positions" for row in m["body"]}
        assert devices <= {"zhang3/BC-1"}
        text = json.dumps(seen)
        assert all(other not in text for other in (teammate, unassigned, later, "li4/", "wang5/"))

        # The officer's REST view agrees: only the order addressed to them.
        assert [i["id"] for i in client.get("/api/orders/mine", headers=zhang3).json()] == [own]


def test_an_officer_cannot_answer_an_order_addressed_to_someone_else(
    redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    zhang3 = bearer(database_url, Role.OFFICER, name="zhang3")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        theirs = report(client, admin, WEST, "wang5's")
        store_fix(client.app.state.yiwang.store, "wang5", "BC-3", WEST, received_at=time.time())
        order = assign(client, admin, theirs, "wang5")
        refused = client.post(
            f"/api/orders/{order}/ack", json={"status": "accepted"}, headers=zhang3
        )
        assert refused.status_code == 403
        assert refused.json()["detail"] == "this order is addressed to someone else"
        assert phase_of(client, admin, theirs) == "dispatched"
        inbox = client.app.state.yiwang.store.incidents.inbox_entries()
        assert not any(e["kind"] == "ack" for e in inbox)  # nothing reached the engine

    refusals = [r for r in audit_of(database_url, "zhang3") if r["action"] == "refused"]
    assert [(r["role"], r["target"]) for r in refusals] == [("officer", f"order {order}")]


# Password guessing ------------------------------------------------------------------------


def test_a_thousand_wrong_passwords_lock_the_account_and_are_all_audited(
    redis_service, prefix, tmp_path, database_url
) -> None:
    bearer(database_url, Role.DISPATCHER, name="target")
    auditor = bearer(database_url, Role.AUDITOR, name="auditor-1")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        answers = [
            client.post("/api/session", json={"name": "target", "password": f"guess {n:04d}"})
            for n in range(1000)
        ]
        assert [a.status_code for a in answers[:5]] == [401] * 5
        assert {a.status_code for a in answers[5:]} == {429}
        retry_after = {int(a.headers["retry-after"]) for a in answers[5:]}
        assert all(0 < s <= 15 * 60 for s in retry_after), retry_after
        assert all("wrong account name or password" in a.text for a in answers[:5])
        assert SESSION_COOKIE not in client.cookies

        records = audit_of(database_url, "target")
        actions = [r["action"] for r in records]
        assert actions.count("login_failed") == 5 and actions.count("login_locked") == 995
        assert actions.count("login_failed") + actions.count("login_locked") == 1000
        over_api = client.get(
            "/api/audit/access", params={"actor": "target", "limit": 5000}, headers=auditor
        )
        assert over_api.status_code == 200
        assert len([r for r in over_api.json() if r["action"].startswith("login_")]) == 1000

        # The right password does not help while locked.
        locked = client.post("/api/session", json={"name": "target", "password": PASSWORD})
        assert locked.status_code == 429 and "retry-after" in locked.headers

        # The lockout ends when its key does: shorten it to 300 ms instead of waiting 15 min.
        store = client.app.state.yiwang.store
        lockout = store.keys.lockout("acct:target")
        assert 0 < store.redis.pttl(lockout) <= 15 * 60 * 1000
        store.redis.pexpire(lockout, 300)
        started = time.monotonic()
        wait_until(
            lambda: (
                client.post(
                    "/api/session", json={"name": "target", "password": PASSWORD}
                ).status_code
                == 200
            ),
            3,
            "the lockout to end",
        )
        assert time.monotonic() - started < 3
        assert client.get("/api/me").json()["account"] == "target"
    assert audit_of(database_url, "target")[0]["action"] == "login"


def test_one_address_trying_many_accounts_is_locked_out_even_for_a_real_one(
    redis_service, prefix, tmp_path, database_url
) -> None:
    bearer(database_url, Role.DISPATCHER, name="real")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        for n in range(30):  # the address limit; each account only fails once
            guess = client.post("/api/session", json={"name": f"user{n}", "password": "x"})
            assert guess.status_code == 401, (n, guess.text)
        refused = client.post("/api/session", json={"name": "real", "password": PASSWORD})
        assert refused.status_code == 429
    assert [r["detail"] for r in audit_of(database_url, "real")] == ["addr"]


# Sessions ----------------------------------------------------------------------------------


def test_a_cookie_session_works_from_our_origin_only_and_ends_at_logout(
    redis_service, prefix, tmp_path, database_url
) -> None:
    bearer(database_url, Role.DISPATCHER, name="d-page")
    incident = {"category": "street_vending", "lon": EAST[0], "lat": EAST[1]}
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        credentials = {"name": "d-page", "password": PASSWORD}
        cross_site = client.post("/api/session", json=credentials, headers=FOREIGN_ORIGIN)
        assert cross_site.status_code == 403 and SESSION_COOKIE not in client.cookies

        login = client.post("/api/session", json=credentials, headers=OWN_ORIGIN)
        assert login.status_code == 200
        assert login.json()["account"] == "d-page" and login.json()["role"] == "dispatcher"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert client.get("/api/me").json()["account"] == "d-page"
        assert client.get("/api/incidents").status_code == 200  # reads need no Origin

        for headers in (FOREIGN_ORIGIN, {}):
            refused = client.post("/api/incidents", json=incident, headers=headers)
            assert refused.status_code == 403, headers
            assert "cross-site" in refused.json()["detail"]
        accepted = client.post("/api/incidents", json=incident, headers=OWN_ORIGIN)
        assert accepted.status_code == 202, accepted.text

        token = client.cookies[SESSION_COOKIE]
        assert client.delete("/api/session", headers=OWN_ORIGIN).status_code == 204
        assert SESSION_COOKIE not in client.cookies
        client.cookies.set(SESSION_COOKIE, token)  # a copy of the cookie kept somewhere
        assert client.get("/api/me").status_code == 401
        after = client.post("/api/incidents", json=incident, headers=OWN_ORIGIN)
        assert after.status_code == 401
    actions = [r["action"] for r in reversed(audit_of(database_url, "d-page"))]
    assert actions == ["login", "refused", "refused", "incident:IncidentReported", "logout"]


def test_disabling_an_account_ends_its_open_feeds_and_refuses_its_token(
    redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    token = bearer(database_url, Role.DISPATCHER, name="d-leaving")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        login = client.post(
            "/api/session", json={"name": "d-leaving", "password": PASSWORD}, headers=OWN_ORIGIN
        )
        assert login.status_code == 200
        with (
            client.websocket_connect("/ws/live", headers=OWN_ORIGIN) as by_cookie,
            client.websocket_connect("/ws/live", headers=token) as by_token,
        ):
            assert by_cookie.receive_json()["type"] == by_token.receive_json()["type"] == "snapshot"
            changed = client.patch(
                "/api/admin/accounts/d-leaving", json={"disabled": True}, headers=admin
            )
            assert changed.status_code == 200 and changed.json()["disabled"] is True
            disabled_at = time.monotonic()
            for ws in (by_cookie, by_token):
                with pytest.raises(WebSocketDisconnect) as closed:
                    receive_until(ws, lambda m: False)
                assert closed.value.code == 1008
                assert "log in again" in closed.value.reason
            assert time.monotonic() - disabled_at < 5
        assert client.get("/api/me").status_code == 401  # the cookie
        assert client.get("/api/me", headers=token).status_code == 401
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/ws/live", headers=token),
        ):
            pass
        assert closed.value.code == 1008
        again = client.post("/api/session", json={"name": "d-leaving", "password": PASSWORD})
        assert again.status_code == 401
    changes = [r for r in audit_of(database_url, "admin-1") if r["action"] == "account_changed"]
    assert [(r["target"], r["detail"]) for r in changes] == [
        ("d-leaving", "disabled=True; 1 sessions ended")
    ]


@contextmanager
def reporting_east_incidents(client: TestClient, headers: dict[str, str]) -> Iterator[None]:
    """East incidents reported every 0.3 s on another thread (for at most 10 s), so that a
    feed that stays open has something to leak and never blocks the test."""
    stop = threading.Event()
    reporter = TestClient(client.app)  # its own connection: the test's client is busy reading

    def run() -> None:
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            reporter.post(
                "/api/incidents",
                json={"category": "street_vending", "lon": EAST[0], "lat": EAST[1]},
                headers=headers,
            )
            stop.wait(0.3)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.parametrize("credential", ["cookie", "token"])
def test_moving_an_account_to_another_scope_ends_its_open_feed(
    credential, redis_service, prefix, tmp_path, database_url
) -> None:
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    token = bearer(database_url, Role.DISPATCHER, name="d-moved")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        if credential == "cookie":
            login = client.post(
                "/api/session", json={"name": "d-moved", "password": PASSWORD}, headers=OWN_ORIGIN
            )
            assert login.status_code == 200
        headers = OWN_ORIGIN if credential == "cookie" else token
        with client.websocket_connect("/ws/live", headers=headers) as ws:
            assert ws.receive_json()["type"] == "snapshot"
            moved = client.patch(
                "/api/admin/accounts/d-moved", json={"scope": "west"}, headers=admin
            )
            assert moved.status_code == 200 and moved.json()["scope"] == "west"
            moved_at = time.monotonic()
            code, late_east = None, []
            with reporting_east_incidents(client, admin):
                try:
                    while time.monotonic() - moved_at < 6:
                        message = ws.receive_json()
                        # The server rechecks every 2 s: what comes after 3.5 s is a leak.
                        if message["type"] == "incident" and time.monotonic() - moved_at > 3.5:
                            late_east.append(message["body"]["id"])
                except WebSocketDisconnect as closed:
                    code = closed.code
        assert code == 1008, (
            f"a {credential}-borne feed was still open 6 s after its account moved to the west"
            f" scope, and sent {len(late_east)} east incidents after 3.5 s"
        )
        assert late_east == []
        # Whatever the feed did, the REST routes apply the new scope at once.
        assert client.get("/api/incidents", headers=token).json() == []


# The incident audit names the actor ------------------------------------------------------------


def test_the_incident_audit_names_the_account_not_what_the_body_claims(
    redis_service, prefix, tmp_path, database_url
) -> None:
    reporter = bearer(database_url, Role.COMMANDER, name="c-duty")
    dispatcher = bearer(database_url, Role.DISPATCHER, name="d-acting")
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        reported = client.post(
            "/api/incidents",
            json={"category": "street_vending", "lon": EAST[0], "lat": EAST[1], "by": "me"},
            headers=reporter,
        )
        incident = reported.json()["incident"]
        wait_until(
            lambda: client.get(f"/api/incidents/{incident}", headers=reporter).status_code == 200
        )
        store_fix(client.app.state.yiwang.store, "zhang3", "BC-1", EAST, received_at=time.time())
        acknowledged = client.post(
            f"/api/incidents/{incident}/acknowledge",
            json={"by": "me", "reason": "on it"},
            headers=dispatcher,
        )
        assert acknowledged.status_code == 202
        wait_until(lambda: phase_of(client, dispatcher, incident) == "acknowledged", 10)
        ordered = client.post(
            f"/api/incidents/{incident}/assign",
            json={"officers": ["zhang3"], "by": "me"},
            headers=dispatcher,
        )
        assert ordered.status_code == 202
        wait_until(lambda: phase_of(client, dispatcher, incident) == "dispatched", 10)
        records = client.get(f"/api/incidents/{incident}/audit", headers=dispatcher).json()
        view = client.get(f"/api/incidents/{incident}", headers=dispatcher).json()

    events = {r["event"]: r for r in records if r.get("kind") == "event"}
    assert set(events) == {"IncidentReported", "IncidentAcknowledged", "OrderIssued"}
    for name in ("IncidentAcknowledged", "OrderIssued"):
        assert json.loads(events[name]["actor"]) == {
            "account": "d-acting",
            "role": "dispatcher",
            "address": "testclient",
        }, name
        assert json.loads(events[name]["detail"])["by"] == "d-acting", name
    report_record = events["IncidentReported"]
    assert json.loads(report_record["actor"])["account"] == "c-duty"
    assert json.loads(report_record["detail"])["by"] == "c-duty"
    respond = next(m for m in view["milestones"] if m["milestone"] == "respond")
    assert respond["by"] == "d-acting"
    assert "me" not in {json.loads(r["detail"]).get("by") for r in events.values()}


# Headers ----------------------------------------------------------------------------------


def script_sources(policy: str) -> list[str]:
    directives = {
        d.strip().split()[0]: d.strip().split()[1:] for d in policy.split(";") if d.strip()
    }
    return directives.get("script-src", directives.get("default-src", []))


def test_every_answer_carries_a_policy_that_runs_only_our_own_scripts(
    redis_service, prefix, tmp_path, database_url
) -> None:
    accounts = role_accounts(database_url)
    with running_center(tmp_path, redis_service, prefix, database_url) as client:
        incident = report(client, accounts["admin"], EAST, "headers")
        answers = [
            (f"{method} {path} as {caller}", response)
            for method, path, caller, response in Sweep(client, incident, incident).every_route(
                schema_routes(client), accounts
            )
        ]
        for path in ("/", "/officer", "/login", "/no-such-page", "/openapi.json"):
            answers.append((f"GET {path}", client.get(path, follow_redirects=False)))
        answers.append(("PUT /api/me", client.put("/api/me", headers=accounts["admin"])))
        answers.append(("POST /api/session {}", client.post("/api/session", json={})))
    statuses = {response.status_code for _, response in answers}
    assert {200, 401, 403, 404, 405, 422} <= statuses  # refusals and errors are covered too
    missing = [what for what, r in answers if "content-security-policy" not in r.headers]
    assert missing == []
    unsafe = [
        (what, r.headers["content-security-policy"])
        for what, r in answers
        if script_sources(r.headers["content-security-policy"]) != ["'self'"]
    ]
    assert unsafe == []
    assert all(r.headers["x-frame-options"] == "DENY" for _, r in answers)
    assert all(r.headers["x-content-type-options"] == "nosniff" for _, r in answers)
