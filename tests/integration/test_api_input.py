"""Hostile input through the real app (real Redis and PostgreSQL, a leading engine): every
JSON body and every number-taking query of the schema, sent each hostile shape, answers 4xx
with a reason a person can read, never 5xx. Orders go only to officers of the roster on duty
and online (409 otherwise, and the respond milestone is not recorded); a report names a
category of the catalogue (422 otherwise, with the catalogue)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.api.bodies import MAX_BODY_BYTES
from dispatch.core.access import Role
from dispatch.core.policy import CATEGORIES
from dispatch.settings import Settings
from dispatch.store import Store
from tests.integration.helpers import bearer, store_fix, wait_until
from tests.integration.test_terminal_flow import city_files

pytestmark = pytest.mark.timeout(300)

EAST = (119.650, 29.080)  # inside city_files' "east" cell, team-east's
PREFIX = "input"


class Center(NamedTuple):
    client: TestClient
    store: Store
    admin: dict[str, str]
    officer: dict[str, str]
    database_url: str


@pytest.fixture(scope="module")
def center(redis_service, postgres, tmp_path_factory) -> Iterator[Center]:
    workdir = tmp_path_factory.mktemp("input")
    areas, roster = city_files(workdir)
    # zhao6 is team-east's too, on a shift that ended years ago: known, but off duty.
    shifts = yaml.safe_load(Path(roster).read_text(encoding="utf-8"))
    shifts["shifts"].append(
        {"team": "team-east", "officers": ["zhao6"], "start": "2020-01-01T08:00",
         "end": "2020-01-01T20:00"}
    )  # fmt: skip
    Path(roster).write_text(yaml.safe_dump(shifts), encoding="utf-8")
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
    now = time.time()
    store_fix(store, "zhang3", "BC-1", (119.651, 29.081), received_at=now)
    store_fix(store, "zhao6", "BC-6", (119.652, 29.081), received_at=now)
    store_fix(store, "li4", "BC-2", (119.652, 29.079), received_at=now - 3600)  # offline
    app = create_app(settings, workers=("engine",))
    # A server error must reach the test as an answer, not as an exception in the client.
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "the engine")
        yield Center(
            client,
            store,
            bearer(database_url, name="input-admin"),
            bearer(database_url, Role.OFFICER, name="input-officer", officer="zhang3"),
            database_url,
        )
    store.close()


def report(center: Center, title: str) -> str:
    body = {"category": "street_vending", "lon": EAST[0], "lat": EAST[1], "title": title}
    reply = center.client.post("/api/incidents", json=body, headers=center.admin)
    assert reply.status_code == 202, reply.text
    incident = reply.json()["incident"]
    wait_until(
        lambda: (
            center.client.get(f"/api/incidents/{incident}", headers=center.admin).status_code == 200
        ),
        10,
        f"the engine to open {incident}",
    )
    return incident


def incident(center: Center, incident_id: str) -> dict[str, Any]:
    return center.client.get(f"/api/incidents/{incident_id}", headers=center.admin).json()


# Hostile shapes --------------------------------------------------------------------------

# A body that each route accepts: each hostile value is put in each field in turn.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/session"): {"name": "input-admin", "password": "a long test password"},
    ("POST", "/api/admin/accounts"): {"name": "made", "role": "dispatcher", "password": "x" * 12},
    ("PATCH", "/api/admin/accounts/{name}"): {"display_name": "renamed", "disabled": False},
    ("PUT", "/api/admin/accounts/{name}/password"): {"password": "a long test password"},
    ("POST", "/api/admin/tokens"): {"account": "input-admin", "label": "x"},
    ("POST", "/api/incidents"): {
        "category": "street_vending",
        "priority": 3,
        "lon": EAST[0],
        "lat": EAST[1],
        "title": "t",
        "team": "team-east",
    },
    ("POST", "/api/incidents/{incident_id}/assign"): {"officers": ["zhang3"]},
    ("POST", "/api/incidents/{incident_id}/merge"): {"into": "INC-X"},
    ("POST", "/api/orders/{order_id}/ack"): {"status": "accepted", "reason": "x"},
    ("POST", "/api/sos"): {"lon": EAST[0], "lat": EAST[1], "acc": 5},
    ("POST", "/api/hotline/orders"): {
        "ticket_id": "T-1",
        "source": "12345",
        "category": "street_vending",
        "lon": EAST[0],
        "lat": EAST[1],
        "crs": "wgs84",
        "address": "a",
        "text": "t",
        "caller_name": "n",
        "caller_phone": "p",
        "priority": 3,
    },
}
REASON_BODY = {"reason": "x"}  # acknowledge, reassign, cancel, resolve, close

# A field's value as JSON text: the hostile tokens JSON readers differ on, and wrong types.
HOSTILE_VALUES = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "a 400-digit integer": "1" + "0" * 400,
    "a 5000-digit integer": "1" + "0" * 5000,  # more than Python's int() reads
    "a huge string": json.dumps("长" * 20_000, ensure_ascii=False),  # 60 KB, under the limit
    "nested 50 deep": "[" * 50 + "]" * 50,
    "nested 20,000 deep": "[" * 20_000 + "]" * 20_000,
    "an object": '{"a": {"b": 1}}',
    "a list": "[1, 2, 3]",
}
# A whole body: not JSON, the wrong JSON, too much of it.
HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b'{"name": "\xff\xfe"}', "application/json"),
    "a lone surrogate byte run": (b'{"name": "\xed\xa0\x80"}', "application/json"),
    "not JSON": (b'{"name": ', "application/json"),
    "plain text": (b"name=zhang3", "text/plain"),
    "JSON sent as a form": (b'{"name": "x"}', "application/x-www-form-urlencoded"),
    "JSON in Latin-1": (b'{"name": "x"}', "application/json; charset=latin-1"),
    "a list": (b"[]", "application/json"),
    "a string": (b'"x"', "application/json"),
    "null": (b"null", "application/json"),
    "empty": (b"", "application/json"),
    "a huge body": (json.dumps({"name": "x" * (2 * MAX_BODY_BYTES)}).encode(), "application/json"),
}
# Required fields missing: {} for routes that require any.
MISSING = "{}"


def multipart(fields: dict[str, str], photo: bytes | None, boundary: str = "yw") -> bytes:
    """A form upload as a browser sends one: each field, then the photo as a file."""
    parts = [
        f'--{boundary}\r\ncontent-disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if photo is not None:
        parts.append(
            f'--{boundary}\r\ncontent-disposition: form-data; name="photo"; filename="p.jpg"\r\n'
            "content-type: image/jpeg\r\n\r\n".encode()
            + photo
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


REPORT = {"category": "street_vending", "contact": "13800000000", "lon": "119.65", "lat": "29.08"}
FORM_UPLOAD = "multipart/form-data; boundary=yw"
# A citizen's report (a form upload): hostile fields, photos and forms.
HOSTILE_UPLOADS: dict[str, tuple[bytes, str]] = {
    **{
        f"{field} = {value}": (
            multipart({**REPORT, "crs": "wgs84", field: value}, b"x"),
            FORM_UPLOAD,
        )
        for field in ("lon", "lat")
        for value in ("nan", "inf", "1e400", "200", "abc")
    },
    "no photo": (multipart({**REPORT, "crs": "wgs84"}, None), FORM_UPLOAD),
    "a photo that is a web page": (
        multipart({**REPORT, "crs": "wgs84"}, b"<html><script>alert(1)</script></html>"),
        FORM_UPLOAD,
    ),
    "an unknown datum": (multipart({**REPORT, "crs": "mars2000"}, b"x"), FORM_UPLOAD),
    "a form without a boundary": (multipart(REPORT, b"x"), "multipart/form-data"),
    "a form cut short": (multipart(REPORT, b"x")[:40], FORM_UPLOAD),
}

HOSTILE_NUMBERS = [
    "nan", "NaN", "inf", "-Infinity", "1e400", "-1", "99999999999999999999999999999999",
    "1.5.2", "abc", "9" * 5000, "119.6,nan", "1e400,29", "200,29.08",
]  # fmt: skip
# Number-taking string queries: times (epoch s or ISO 8601) and lon,lat points.
NUMERIC_TEXT = {"from", "to", "since", "until"}
# Required queries, answered with a valid value while another is made hostile.
VALID_QUERIES: dict[str, dict[str, str]] = {
    "/api/route": {"from": "119.642,29.08", "to": "119.65,29.08"},
    "/api/stats/breakdown": {"by": "team"},
    "/api/places": {"q": "路"},
}


def _valid_query(path: str) -> dict[str, str]:
    now = int(time.time())
    times = {"from": str(now - 600), "to": str(now), "since": str(now - 86400)}
    return VALID_QUERIES.get(path, times if path in ("/api/replay", "/api/patrol") else {})


class Case(NamedTuple):
    method: str
    path: str
    shape: str
    body: bytes | None
    content_type: str
    query: dict[str, str]


def body_cases(schema: dict[str, Any]) -> Iterator[Case]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            key = (method.upper(), path)
            valid = VALID_BODIES.get(key, REASON_BODY)
            for name, value in HOSTILE_VALUES.items():
                for field in valid:
                    text = json.dumps({**valid, field: "\0"}).replace('"\\u0000"', value)
                    yield Case(*key, f"{field} = {name}", text.encode(), "application/json", {})
            for name, (raw, content_type) in HOSTILE_BODIES.items():
                yield Case(*key, name, raw, content_type, {})
            content = operation["requestBody"]["content"]
            if "application/json" not in content:  # a form upload: a citizen's report
                for name, (raw, content_type) in HOSTILE_UPLOADS.items():
                    yield Case(*key, name, raw, content_type, {})
                continue
            required = content["application/json"]["schema"]
            if _required_fields(schema, required):
                yield Case(*key, "missing fields", MISSING.encode(), "application/json", {})


def _required_fields(schema: dict[str, Any], body: dict[str, Any]) -> list[str]:
    name = body["$ref"].rsplit("/", 1)[1]
    return list(schema["components"]["schemas"][name].get("required", []))


def query_cases(schema: dict[str, Any]) -> Iterator[Case]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                types = {s.get("type") for s in parameter["schema"].get("anyOf", [])}
                types.add(parameter["schema"].get("type"))
                if not (types & {"number", "integer"} or parameter["name"] in NUMERIC_TEXT):
                    continue
                for value in HOSTILE_NUMBERS:
                    query = {**_valid_query(path), parameter["name"]: value}
                    shape = f"?{parameter['name']}={value[:20]}"
                    yield Case(method.upper(), path, shape, None, "", query)


def send(center: Center, case: Case, values: dict[str, str]) -> Any:
    officers = case.path.startswith("/api/orders/") or case.path == "/api/sos"
    headers = center.officer if officers else dict(center.admin)
    if case.body is not None:
        headers = {**headers, "content-type": case.content_type}
    return center.client.request(
        case.method,
        case.path.format(**values),
        content=case.body,
        params=case.query,
        headers=headers,
    )


def _detail(response: Any) -> Any:
    try:
        return response.json().get("detail")
    except ValueError:  # a server error answers in plain text
        return None


def test_every_hostile_body_and_query_number_answers_4xx_with_a_reason(center: Center) -> None:
    schema = center.client.get("/openapi.json").json()
    values = {
        "incident_id": report(center, "the hostile sweep's incident"),
        "order_id": "O-00000000",
        "name": "input-admin",
        "user": "zhang3",
        "device": "BC-1",
        "token_id": "none",
    }
    cases = [*body_cases(schema), *query_cases(schema)]
    wrong = []
    answered: dict[int, int] = {}
    for n, case in enumerate(cases):
        # A fresh token per 500 requests: the per-account budget must not answer for us.
        if n % 500 == 0:
            center = center._replace(admin=bearer(center.database_url, name=f"sweep-{n}"))
        response = send(center, case, values)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        detail = _detail(response)
        if not (400 <= response.status_code < 500 and response.status_code not in (401, 403, 429)):
            wrong.append(f"{case.method} {case.path} {case.shape}: {response.status_code}")
        elif not (isinstance(detail, str) and len(detail) > 10):
            wrong.append(f"{case.method} {case.path} {case.shape}: no reason: {str(detail)[:200]}")
    assert wrong == [], "\n".join(wrong[:40])
    body_routes = {(c.method, c.path) for c in cases if c.body is not None}
    query_routes = {(c.method, c.path) for c in cases if c.body is None}
    # Every body of the schema (five for accounts, eight for incidents, one for orders, one
    # for an officer's SOS, one for the hotline's work orders and one for citizens' reports).
    assert len(body_routes) == 17 and set(VALID_BODIES) <= body_routes, body_routes
    assert len(query_routes) == 12, query_routes
    print(f"\n{len(body_routes)} body routes, {len(query_routes)} routes with number queries")
    assert {400, 413, 415, 422} <= set(answered), answered
    print(f"\n{len(cases)} hostile requests, answers by status: {dict(sorted(answered.items()))}")


def test_the_reasons_say_what_was_wrong(center: Center) -> None:
    client, admin = center.client, center.admin

    def post(body: bytes, content_type: str = "application/json") -> tuple[int, str]:
        reply = client.post(
            "/api/incidents", content=body, headers={**admin, "content-type": content_type}
        )
        return reply.status_code, reply.json()["detail"]

    lon, lat = EAST
    assert post(b'{"category": "street_vending", "lon": NaN, "lat": 29}') == (
        400, "NaN is not a JSON number; send a finite number",
    )  # fmt: skip
    assert post(b'{"category": "street_vending", "lon": 1e400, "lat": 29}') == (
        400, "the number 1e400 is out of range",
    )  # fmt: skip
    # A quoted "NaN" is JSON, and pydantic would read it as a float: refused by the model.
    status, reason = post(b'{"category": "street_vending", "lon": "NaN", "lat": 29}')
    assert status == 422 and reason.startswith("lon: Input should be a finite number")
    status, reason = post(
        json.dumps({"category": "street_vending", "lon": 200, "lat": lat}).encode()
    )
    assert (status, reason) == (422, "lon: Input should be less than or equal to 180")
    status, reason = post(b"x" * (MAX_BODY_BYTES + 1))
    assert (status, reason) == (413, f"the body is larger than the limit of {MAX_BODY_BYTES} bytes")
    refused = client.post("/api/incidents", content=b"NaN", headers=admin)
    assert "script-src 'self'" in refused.headers["content-security-policy"]  # headers as ever
    status, reason = post(b'{"lon": 1}', "text/plain")
    assert status == 415 and "application/json" in reason
    status, reason = post(b'{"category": "\xff"}')
    assert (status, reason) == (400, "the body is not UTF-8 (byte 14)")
    status, reason = post(b"[" * 30 + b"]" * 30)
    assert (status, reason) == (400, "the body nests deeper than 8 levels")
    status, reason = post(json.dumps({"category": "street_vending", "lat": lat}).encode())
    assert (status, reason) == (422, "lon: Field required")
    assert client.get(f"/api/route?from={lon},{lat}&to=nan,29", headers=admin).json() == {
        "detail": "'nan,29' is no lon,lat point (degrees, e.g. 119.65,29.08)"
    }
    track = client.get("/api/devices/zhang3/BC-1/track", params={"from": "1e400"}, headers=admin)
    assert track.status_code == 422 and "outside 1970-01-01 to 3000-01-01" in track.json()["detail"]
    evidence = client.get("/api/incidents/INC-X/evidence?margin_s=nan", headers=admin)
    assert evidence.json() == {"detail": "query margin_s: Input should be a finite number"}
    # Nothing refused was counted as an incident.
    assert all(i["title"] != "t" for i in client.get("/api/incidents", headers=admin).json())


def test_track_windows_and_result_sizes_are_bounded(center: Center) -> None:
    client, admin = center.client, center.admin
    now = time.time()
    for n in range(5):
        store_fix(center.store, "zhang3", "BC-7", (119.651, 29.081 + n * 1e-4), received_at=now + n)
    path = "/api/devices/zhang3/BC-7/track"
    window = {"from": str(now - 60), "to": str(now + 60)}
    whole = client.get(path, params=window, headers=admin).json()["properties"]
    assert (whole["points"], whole["truncated"], whole["next_from"]) == (5, False, None)
    first = client.get(path, params={**window, "limit": "2"}, headers=admin).json()
    assert first["properties"]["points"] == 2 and first["properties"]["truncated"] is True
    fix_times = [f["properties"]["fix_at"] for f in first["features"][1:]]
    assert fix_times == sorted(fix_times) and first["properties"]["next_from"] > fix_times[-1]
    too_many = client.get(path, params={**window, "limit": "50001"}, headers=admin)
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == "query limit: Input should be less than or equal to 50000"
    too_long = client.get(path, params={"from": str(now - 8 * 86400)}, headers=admin)
    assert too_long.status_code == 422 and "up to 7 days" in too_long.json()["detail"]


# Orders and categories -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("officer", "reason", "why"),
    [
        ("ghost", "ghost is not an officer of the roster", "not_on_roster"),
        ("zhao6", "zhao6 is off duty", "off_duty"),
        ("li4", "li4 is offline", "offline"),
        ("wang5", "wang5 has no device that has reported", "no_device"),
    ],
)
def test_an_order_to_an_officer_who_cannot_answer_is_refused_and_nothing_is_met(
    center: Center, officer: str, reason: str, why: str
) -> None:
    client, admin = center.client, center.admin
    incident_id = report(center, f"ordered to {officer}")
    refused = client.post(
        f"/api/incidents/{incident_id}/assign", json={"officers": [officer]}, headers=admin
    )
    assert refused.status_code == 409
    # The sentence, and the same as a code a screen words in its user's language.
    assert refused.json() == {
        "detail": f"no order issued: {reason}",
        "code": "crew_refused",
        "params": {"officers": [{"officer": officer, "why": why}]},
    }
    # An action queued after the refusal is applied: the refused order would have been first.
    assert (
        client.post(f"/api/incidents/{incident_id}/acknowledge", json={}, headers=admin).status_code
        == 202
    )
    wait_until(lambda: incident(center, incident_id)["phase"] == "acknowledged", 10, "the ack")
    seen = incident(center, incident_id)
    assert seen["milestones"] == [] and seen["order"] is None
    audit = client.get(f"/api/incidents/{incident_id}/audit", headers=admin).json()
    assert not any(r.get("event") == "OrderIssued" for r in audit)
    # The same incident ordered to an officer on duty and online: the milestone is met.
    ordered = client.post(
        f"/api/incidents/{incident_id}/assign", json={"officers": ["zhang3"]}, headers=admin
    )
    assert ordered.status_code == 202, ordered.text
    wait_until(lambda: incident(center, incident_id)["phase"] == "dispatched", 10, "the order")
    assert [m["milestone"] for m in incident(center, incident_id)["milestones"]] == ["respond"]


def test_a_pair_with_one_unavailable_officer_is_refused_naming_them(center: Center) -> None:
    incident_id = report(center, "a pair")
    refused = center.client.post(
        f"/api/incidents/{incident_id}/assign",
        json={"officers": ["zhang3", "li4"]},
        headers=center.admin,
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == "no order issued: li4 is offline"


def test_a_report_of_an_unknown_category_is_refused_with_the_catalogue(center: Center) -> None:
    client, admin = center.client, center.admin
    reply = client.post(
        "/api/incidents",
        json={"category": "noise", "lon": EAST[0], "lat": EAST[1], "title": "unknown"},
        headers=admin,
    )
    assert reply.status_code == 422
    answer = reply.json()
    assert answer["categories"] == dict(CATEGORIES)
    assert answer["detail"].startswith("unknown category 'noise'; known categories: ")
    assert "street_vending (占道经营)" in answer["detail"]
    catalogue = client.get("/api/policies", headers=admin).json()["categories"]
    assert catalogue == dict(CATEGORIES)
    assert all(i["title"] != "unknown" for i in client.get("/api/incidents", headers=admin).json())
