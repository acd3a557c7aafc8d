"""Hotline work orders against real Redis and PostgreSQL and a leading engine: one incident per
ticket however often it is sent, callers without the integration role refused, and the result
pushed to a callback server of the test's own exactly once when the incident closes, through a
refusal, a retry and a second notifier sharing the outbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.core.model import Source
from dispatch.db import Database
from dispatch.db.history import HistoryStore
from dispatch.hotline import HotlineNotifier
from dispatch.records import IncidentRecords
from dispatch.settings import Settings
from dispatch.store import Store
from gis.coords import Datum, to_wgs84
from tests.integration.helpers import bearer, wait_until
from tests.integration.test_terminal_flow import city_files

pytestmark = pytest.mark.timeout(120)

EAST = (119.650, 29.080)  # in city_files' east cell (team-east), WGS-84
ORDER = {
    "ticket_id": "12345-20261122-000123",
    "source": "12345",
    "category": "占道经营",  # the catalogue's label for street_vending
    "address": "婺城区八一南街 123 号",
    "lon": 119.6545,
    "lat": 29.0775,
    "crs": "gcj02",  # as the hotline's Amap-based system draws it
    "caller_name": "王女士",
    "caller_phone": "13800000000",
    "text": "人行道上有流动摊贩占道经营",
}


@dataclass
class Callback:
    """A hotline's callback endpoint: answers each POST with the next status of `answers`
    (the last one repeats) and keeps what it was sent."""

    answers: list[int]
    received: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: dict[str, Any]) -> int:
        with self.lock:
            status = self.answers[min(len(self.received), len(self.answers) - 1)]
            self.received.append((status, headers, body))
            return status

    def taken(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for status, _, body in self.received if 200 <= status < 300]


@contextmanager
def callback_server(answers: list[int]) -> Iterator[tuple[str, Callback]]:
    callback = Callback(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            body = json.loads(self.rfile.read(length))
            status = callback.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hotline/results", callback
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Center:
    client: TestClient
    store: Store
    settings: Settings
    hotline: dict[str, str]  # bearer headers of the hotline's integration account
    admin: dict[str, str]

    def post(self, order: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post(
            "/api/hotline/orders", json=order, headers=self.hotline if headers is None else headers
        )

    def incident(self, incident_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/incidents/{incident_id}", headers=self.admin)
        return dict(answer.json()) if answer.status_code == 200 else {}

    def command(self, kind: str, **fields: Any) -> None:
        """A dispatcher's or officer's step, straight into the engine's inbox."""
        self.store.incidents.command({"type": kind, **fields})


@contextmanager
def running_center(
    tmp_path, redis_service, prefix, database_url, *, city: bool = False, **more: Any
) -> Iterator[Center]:
    places = dict(zip(("areas_file", "roster_file"), city_files(tmp_path), strict=True))
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        database_url=database_url,
        data_dir=tmp_path / "var",
        engine_id=f"engine-{prefix}",
        engine_lease_ms=3000,
        **(places if city else {}),
        **more,
    )
    hotline = bearer(database_url, Role.INTEGRATION, name="hotline-12345")
    admin = bearer(database_url, Role.ADMIN, name="admin-1")
    store = Store.from_url(redis_service.url, prefix)
    with TestClient(create_app(settings, workers=("engine", "hotline"))) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "the engine")
        yield Center(client, store, settings, hotline, admin)
    store.close()


def reports_of(store: Store, incident: str) -> list[dict[str, str]]:
    """The engine's audit of `incident` being reported (the inbox itself is trimmed once
    the engine has settled it)."""
    return [
        r
        for r in store.incidents.incident_audit(incident)
        if r.get("kind") == "event" and r.get("event") == "IncidentReported"
    ]


def test_the_same_ticket_posted_twice_opens_one_incident(
    redis_service, prefix, database_url, tmp_path
) -> None:
    with running_center(tmp_path, redis_service, prefix, database_url) as center:
        first = center.post(ORDER)
        assert first.status_code == 201, first.text
        incident = first.json()["incident"]
        assert first.json() == {
            "incident": incident,
            "ticket_id": ORDER["ticket_id"],
            "source": "12345",
            "created": True,
        }
        again = center.post(ORDER)
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "created": False}
        # The same ticket number from the other hotline is another work order.
        other = center.post({**ORDER, "source": "8890"})
        assert other.status_code == 201 and other.json()["incident"] != incident

        wait_until(lambda: center.incident(incident) != {}, 10, "the engine to open it")
        opened = center.incident(incident)
        assert (opened["category"], opened["source"], opened["phase"]) == (
            "street_vending",
            Source.HOTLINE_12345.value,
            "reported",
        )
        # Reported in GCJ-02, kept in WGS-84.
        expected = to_wgs84(ORDER["lon"], ORDER["lat"], Datum.GCJ02)
        assert opened["location"] == pytest.approx(list(expected), abs=1e-9)
        assert opened["title"] == f"{ORDER['address']}：{ORDER['text']}"
        assert len(reports_of(center.store, incident)) == 1
        ticket = center.store.hotline.ticket(f"12345:{ORDER['ticket_id']}")
        assert ticket is not None and ticket["order"]["caller_phone"] == ORDER["caller_phone"]

        stats = center.client.get("/api/ingest/stats", headers=center.admin).json()
        assert stats["channels"]["hotline"] == {"created": 2, "repeated": 1}


def test_only_an_integration_account_in_scope_hands_work_orders_over(
    redis_service, prefix, database_url, tmp_path
) -> None:
    with running_center(tmp_path, redis_service, prefix, database_url, city=True) as center:
        wgs84 = {**ORDER, "lon": EAST[0], "lat": EAST[1], "crs": "wgs84"}
        anonymous = center.post(wgs84, headers={})
        assert anonymous.status_code == 401
        forged = center.post(wgs84, headers={"authorization": "Bearer yw_forged"})
        assert forged.status_code == 401
        dispatcher = bearer(database_url, Role.DISPATCHER, name="d-1")
        assert center.post(wgs84, headers=dispatcher).status_code == 403
        west = bearer(database_url, Role.INTEGRATION, name="hotline-west", scope="west")
        outside = center.post(wgs84, headers=west)
        assert outside.status_code == 403 and "outside your area scope" in outside.text
        unknown = center.post({**wgs84, "category": "城市管理/其他"})
        assert unknown.status_code == 422
        assert "城市管理/其他" in unknown.json()["detail"]
        assert "street_vending" in unknown.json()["categories"]
        far = center.post({**wgs84, "lon": 120.5, "lat": 30.0})
        assert far.status_code == 422 and "outside jurisdiction" in far.json()["detail"]
        no_crs = center.post({k: v for k, v in wgs84.items() if k != "crs"})
        assert no_crs.status_code == 422 and "crs" in no_crs.json()["detail"]
        assert center.store.hotline.open_tickets() == {}  # nothing was received

        taken = center.post(wgs84)
        assert taken.status_code == 201, taken.text
        stats = center.client.get("/api/ingest/stats", headers=center.admin).json()
        assert stats["channels"]["hotline"] == {
            "created": 1,
            "refused:outside_scope": 1,
            "refused:outside_jurisdiction": 1,
            "rejected:unknown_category": 1,
        }


def close_by_hand(center: Center, incident: str, result: str) -> None:
    """Acknowledge, order, accept, arrive, resolve and close, as dispatcher and officer would."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("IncidentAcknowledged", {"by": "dispatcher-1"}),
        ("OrderIssued", {"order": "O-1", "officers": ["zhang3"], "by": "dispatcher-1"}),
        ("OrderAccepted", {"order": "O-1", "officer": "zhang3"}),
        ("OfficerArrived", {"order": "O-1", "officer": "zhang3", "via": "button"}),
        ("IncidentResolved", {"by": "zhang3", "result": result}),
        ("IncidentClosed", {"by": "dispatcher-1"}),
    ]
    for kind, fields in steps:
        center.command(kind, incident=incident, **fields)
    wait_until(lambda: center.incident(incident).get("phase") == "closed", 15, "the close")


def test_the_close_callback_is_called_once(redis_service, prefix, database_url, tmp_path) -> None:
    # The hotline refuses the first try: the result is tried again, and taken once.
    with (
        callback_server([503, 200]) as (url, callback),
        running_center(
            tmp_path,
            redis_service,
            prefix,
            database_url,
            hotline_callback_url=url,
            hotline_callback_token="secret-of-the-hotline",
            hotline_callback_retry_s=0.2,
        ) as center,
    ):
        incident = center.post(ORDER).json()["incident"]
        wait_until(lambda: center.incident(incident) != {}, 10, "the engine to open it")
        assert callback.received == []  # nothing while the incident is open
        close_by_hand(center, incident, "摊贩已劝离")
        wait_until(lambda: callback.taken() != [], 20, "the result to be taken")
        assert [status for status, _, _ in callback.received] == [503, 200]
        (notice,) = callback.taken()
        audit = center.client.get(f"/api/incidents/{incident}/audit", headers=center.admin).json()
        closed_at = next(float(r["at"]) for r in audit if r.get("event") == "IncidentClosed")
        assert notice == {
            "ticket_id": ORDER["ticket_id"],
            "source": "12345",
            "incident_id": incident,
            "outcome": "closed",
            "result": "摊贩已劝离",
            "closed_at": pytest.approx(closed_at),
            "closed_time": notice["closed_time"],
            "milestones": {
                "respond": "on_time",
                "turn_out": "on_time",  # reached on arrival at the latest
                "arrive": "untimed",
                "handle": "on_time",
            },
        }
        assert notice["closed_time"].endswith("+08:00")
        _, headers, _ = callback.received[-1]
        assert headers["authorization"] == "Bearer secret-of-the-hotline"
        assert headers["idempotency-key"] == f"12345:{ORDER['ticket_id']}"
        assert center.store.hotline.delivered_at(f"12345:{ORDER['ticket_id']}") is not None
        assert center.store.hotline.open_tickets() == {}

        # A second center's notifier shares the outbox: the next ticket's result still goes
        # once, and the first one's never again.
        other = start_notifier(center, url)
        try:
            second = center.post({**ORDER, "ticket_id": "12345-20261122-000124"}).json()
            wait_until(lambda: center.incident(second["incident"]) != {}, 10, "the second")
            cancel = center.client.post(
                f"/api/incidents/{second['incident']}/cancel",
                json={"reason": "重复工单"},
                headers=center.admin,
            )
            assert cancel.status_code == 202, cancel.text
            wait_until(lambda: len(callback.taken()) == 2, 20, "the second result")
            passes = other.passes
            wait_until(lambda: other.passes >= passes + 5, 10, "more notifier passes")
        finally:
            other.stop()
        assert [status for status, _, _ in callback.received] == [503, 200, 200]
        taken = [(n["ticket_id"], n["outcome"], n["result"]) for n in callback.taken()]
        assert taken == [
            (ORDER["ticket_id"], "closed", "摊贩已劝离"),
            ("12345-20261122-000124", "cancelled", "重复工单"),
        ]
        stats = center.client.get("/api/ingest/stats", headers=center.admin).json()
        assert stats["channels"]["hotline"] == {
            "created": 2,
            "notice_retried": 1,
            "notice_delivered": 2,
        }


@dataclass
class RunningNotifier:
    notifier: HotlineNotifier
    thread: threading.Thread
    halt: threading.Event
    db: Database
    passes: int = 0

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(10)
        self.db.close()


def start_notifier(center: Center, url: str) -> RunningNotifier:
    """Another center's notifier over the same Redis and history, counting its passes."""
    db = Database(center.settings.database_url, max_size=2)
    store = Store.from_url(center.settings.redis_url, center.settings.key_prefix)
    notifier = HotlineNotifier(
        store,
        IncidentRecords(store.incidents, HistoryStore(db, zone=center.settings.timezone)),
        url=url,
        token=center.settings.hotline_callback_token,
        retry_s=0.2,
        poll_s=0.05,
    )
    running = RunningNotifier(
        notifier, threading.Thread(target=lambda: None), threading.Event(), db
    )

    def loop() -> None:
        while not running.halt.is_set():
            notifier.queue_ended()
            notifier.deliver_due()
            running.passes += 1
            running.halt.wait(notifier.poll_s)

    running.thread = threading.Thread(target=loop, daemon=True)
    running.thread.start()
    return running


class SteppedClock:
    """The notifier's clock, moved by the test."""

    rate = 1.0

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_result_the_hotline_never_takes_is_tried_with_backoff_then_kept_as_a_dead_letter(
    redis_service, prefix, database_url, tmp_path
) -> None:
    with (
        callback_server([500]) as (url, callback),
        running_center(tmp_path, redis_service, prefix, database_url) as center,
    ):
        incident = center.post(ORDER).json()["incident"]
        wait_until(lambda: center.incident(incident) != {}, 10, "the engine to open it")
        cancel = center.client.post(
            f"/api/incidents/{incident}/cancel", json={"reason": "重复工单"}, headers=center.admin
        )
        assert cancel.status_code == 202
        wait_until(lambda: center.incident(incident).get("phase") == "cancelled", 10, "cancel")

        db = Database(database_url, max_size=1)
        clock = SteppedClock(center.settings.clock()())
        notifier = HotlineNotifier(
            center.store,
            IncidentRecords(center.store.incidents, HistoryStore(db, zone="Asia/Shanghai")),
            url=url,
            attempts=3,
            retry_s=10.0,
            clock=clock,  # type: ignore[arg-type]
        )
        try:
            assert notifier.queue_ended() == 1
            assert notifier.queue_ended() == 0  # queued once
            tries = try_at(notifier, clock, callback)
            assert tries(0.0) == 1  # the first try at once
            assert tries(9.9) == 1  # not before the first delay
            assert tries(10.0) == 2
            assert tries(29.9) == 2  # the delay doubles
            assert tries(30.0) == 3  # the last of three
            assert tries(10_000.0) == 3  # given up
        finally:
            db.close()
        (letter,) = center.store.hotline.deadletters()
        assert letter["attempts"] == "3" and "500" in letter["error"]
        notice = json.loads(letter["notice"])
        assert (notice["outcome"], notice["result"]) == ("cancelled", "重复工单")
        stats = center.client.get("/api/ingest/stats", headers=center.admin).json()
        assert stats["channels"]["hotline"] == {
            "created": 1,
            "notice_retried": 2,
            "notice_given_up": 1,
        }


def try_at(
    notifier: HotlineNotifier, clock: SteppedClock, callback: Callback
) -> Callable[[float], int]:
    start = clock.now

    def tries(after_s: float) -> int:
        clock.now = start + after_s
        notifier.deliver_due()
        return len(callback.received)

    return tries
