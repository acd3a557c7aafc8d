"""The incident history over real Redis and PostgreSQL: the worker copies what the engine
records exactly once, Redis and the engine let ended incidents go after the retention time,
and their reads come from PostgreSQL unchanged."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.db import Database
from dispatch.db.history import HistoryStore, Snapshot, position
from dispatch.settings import Settings
from dispatch.store import Store, decode_incident
from harness.daemons import free_port
from harness.split import city_running, pinned_anchor, split_center
from simulators.cityfiles import build_demo_city
from tests.integration.helpers import bearer, wait_until
from tests.integration.test_terminal_flow import city_files

POLICY = {"default": {"respond_s": 30, "turn_out_s": 60, "handle_s": 120, "warn_at": 0.5}}
EAST = (119.65, 29.08)


def settings_for(tmp_path, redis_service, prefix, database_url, **extra) -> Settings:
    areas, roster = city_files(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    return Settings(
        redis_url=redis_service.url, key_prefix=prefix, database_url=database_url,
        areas_file=areas, roster_file=roster, policy_file=policy, engine_id=f"engine-{prefix}",
        engine_lease_ms=3000, data_dir=tmp_path / "var", **extra,
    )  # fmt: skip


def report_and_close(client: TestClient, title: str) -> str:
    incident = client.post(
        "/api/incidents",
        json={"category": "street_vending", "lon": EAST[0], "lat": EAST[1], "title": title},
    ).json()["incident"]
    wait_until(lambda: client.get(f"/api/incidents/{incident}").status_code == 200, 10)
    for action in ("acknowledge", "cancel"):
        reply = client.post(f"/api/incidents/{incident}/{action}", json={"reason": "误报"})
        assert reply.status_code == 202
    wait_until(lambda: client.get(f"/api/incidents/{incident}").json()["phase"] == "cancelled", 10)
    return incident


def test_ended_incidents_move_to_the_history_and_read_the_same(
    tmp_path, redis_service, prefix, database_url
) -> None:
    settings = settings_for(tmp_path, redis_service, prefix, database_url, history_retention_s=1.0)
    store = Store.from_url(redis_service.url, prefix)
    with TestClient(create_app(settings, workers=("engine", "history"))) as client:
        client.headers.update(bearer(database_url, Role.COMMANDER, name="c1"))
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        ended = [report_and_close(client, f"ended {n}") for n in range(3)]
        running = client.post(
            "/api/incidents",
            json={"category": "street_vending", "lon": EAST[0], "lat": EAST[1]},
        ).json()["incident"]
        before = {
            i: (
                client.get(f"/api/incidents/{i}").json(),
                client.get(f"/api/incidents/{i}/audit").json(),
            )
            for i in ended
        }
        # Gone from Redis (and so from the engine, which alone writes there) after retention.
        wait_until(
            lambda: not any(store.redis.hexists(store.keys.incidents, i) for i in ended),
            30,
            "ended incidents released",
        )
        assert store.redis.hexists(store.keys.incidents, running)
        for incident in ended:
            view, audit = before[incident]
            assert view["phase"] == "cancelled"
            assert client.get(f"/api/incidents/{incident}").json() == view
            assert client.get(f"/api/incidents/{incident}/audit").json() == audit
            assert json.loads(audit[0]["actor"])["account"] == "c1"
        listed = client.get("/api/incidents", params={"open_only": "false"}).json()
        assert [i["id"] for i in listed] == [running, *reversed(ended)]
        assert [i["id"] for i in client.get("/api/incidents").json()] == [running]
        cancelled = client.get("/api/incidents", params={"phase": "cancelled", "limit": 2})
        assert [i["id"] for i in cancelled.json()] == [ended[2], ended[1]]
        page_two = client.get(
            "/api/incidents", params={"phase": "cancelled", "limit": 2, "offset": 2}
        )
        assert [i["id"] for i in page_two.json()] == [ended[0]]
        assert client.get("/api/incidents", params={"area": "west"}).json() == []
        # The copied part of the audit stream is trimmed from Redis.
        wait_until(lambda: store.redis.xlen(store.keys.audit) == 0, 10, "the audit trimmed")
    db = Database(database_url, max_size=1)
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT position) AS d FROM incident_audit"
        )
        counts = rows.fetchone()
    db.close()
    # Reported, acknowledged, cancelled for each ended one; reported for the running one.
    assert counts is not None and counts["n"] == counts["d"] == 3 * 3 + 1


def test_a_copy_replayed_after_a_crash_changes_nothing(
    tmp_path, redis_service, prefix, database_url
) -> None:
    settings = settings_for(tmp_path, redis_service, prefix, database_url)
    store = Store.from_url(redis_service.url, prefix)
    with TestClient(create_app(settings, workers=("engine",))) as client:
        client.headers.update(bearer(database_url, Role.COMMANDER, name="c1"))
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        incident = report_and_close(client, "replayed")
    records = store.incidents.audit_after(None, 1000)
    raw = store.incidents.snapshots([incident])[incident]
    final = Snapshot(decode_incident(raw), raw, "east", position(records[-1][0]), 0.0)
    history = HistoryStore(Database(database_url, max_size=1))
    assert history.copy(records, [final]) == len(records)
    # A crash after the commit and before the trim: the next pass copies the same again,
    # and an older snapshot (from an earlier record) never replaces the newer one.
    older = Snapshot(decode_incident(raw), b'{"stale": true}', "east", position(records[0][0]), 0)
    assert history.copy(records, [older]) == 0
    assert json.loads(history.incident(incident) or b"{}")["phase"] == "cancelled"
    assert len(history.incident_audit(incident)) == len(
        [r for r in records if r[1].get("incident") == incident]
    )
    assert history.cursor() == records[-1][0]
    history.db.close()


def test_kill_9_of_the_history_worker_loses_and_repeats_nothing(
    tmp_path, redis_service, prefix, database_url
) -> None:
    settings = settings_for(tmp_path, redis_service, prefix, database_url)
    env = {
        **os.environ,
        "YIWANG_REDIS_URL": redis_service.url,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_DATABASE_URL": database_url,
    }
    store = Store.from_url(redis_service.url, prefix)
    with TestClient(create_app(settings, workers=("engine",))) as client:
        client.headers.update(bearer(database_url, Role.COMMANDER, name="c1"))
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        ids = []
        worker = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "history"], env=env)
        for n in range(12):
            ids.append(report_and_close(client, f"while copying {n}"))
            if n in (3, 7):  # kill -9 mid-stream, and start again
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                worker = subprocess.Popen(
                    [sys.executable, "-m", "dispatch.cli", "history"], env=env
                )
        expected = {i: len(client.get(f"/api/incidents/{i}/audit").json()) for i in ids}
        wait_until(lambda: store.redis.xlen(store.keys.audit) <= 1, 30, "the copy to catch up")
        worker.terminate()
        worker.wait(10)
    history = HistoryStore(Database(database_url, max_size=1))
    for incident in ids:
        assert len(history.incident_audit(incident)) == expected[incident], incident
        assert json.loads(history.incident(incident) or b"{}")["phase"] == "cancelled"
    with history.db.transaction() as conn:
        duplicates = conn.execute(
            "SELECT count(*) - count(DISTINCT position) AS n FROM incident_audit"
        ).fetchone()
    assert duplicates is not None and duplicates["n"] == 0
    history.db.close()


def test_the_audit_trails_refuse_change_and_removal(database_url) -> None:
    db = Database(database_url, max_size=1)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO incident_audit (position, stream_id, incident, at, kind, record)"
            " VALUES (1, '0-1', 'INC-1', now(), 'event', '{}')"
        )
        conn.execute("INSERT INTO access_audit (at, account, action) VALUES (now(), 'a', 'login')")
    for statement in (
        "UPDATE incident_audit SET kind = 'forged'",
        "DELETE FROM incident_audit",
        "TRUNCATE incident_audit",
        "UPDATE access_audit SET account = 'someone else'",
        "DELETE FROM access_audit",
    ):
        refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only")
        with refused, db.transaction() as conn:
            conn.execute(statement)
    with db.transaction() as conn:
        row = conn.execute("SELECT kind FROM incident_audit").fetchone()
    db.close()
    assert row == {"kind": "event"}


def test_kill_9_of_postgresql_loses_and_repeats_nothing(
    tmp_path, redis_service, postgres, prefix, database_url
) -> None:
    settings = settings_for(tmp_path, redis_service, prefix, database_url)
    store = Store.from_url(redis_service.url, prefix)
    headers = bearer(database_url, Role.COMMANDER, name="c1")
    with TestClient(create_app(settings, workers=("engine", "history"))) as client:
        client.headers.update(headers)
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        before = [report_and_close(client, f"before {n}") for n in range(3)]
        postgres.kill()
        # The engine runs on Redis alone meanwhile; the worker waits for the database.
        during = client.post(
            "/api/incidents",
            json={"category": "construction_noise", "lon": EAST[0], "lat": EAST[1]},
        )
        assert during.status_code == 503  # who reports is checked in PostgreSQL
        engine_store = client.app.state.yiwang.store
        engine_store.incidents.command(
            {"type": "IncidentReported", "incident": "INC-WHILE-DOWN", "category": "noise",
             "priority": 3, "location": list(EAST), "source": "12345", "by": "intake"}
        )  # fmt: skip
        wait_until(lambda: store.redis.hexists(store.keys.incidents, "INC-WHILE-DOWN"), 10)
        postgres.start()
        wait_until(lambda: store.redis.xlen(store.keys.audit) == 0, 30, "the copy to catch up")
        wait_until(lambda: client.get("/api/health").json()["database"], 10, "the pool back")
        after = report_and_close(client, "after")
        wait_until(lambda: store.redis.xlen(store.keys.audit) == 0, 30, "the copy to catch up")
    history = HistoryStore(Database(database_url, max_size=1))
    for incident in [*before, after]:
        assert len(history.incident_audit(incident)) == 3, incident
    assert len(history.incident_audit("INC-WHILE-DOWN")) == 1
    with history.db.transaction() as conn:
        duplicates = conn.execute(
            "SELECT count(*) - count(DISTINCT position) AS n FROM incident_audit"
        ).fetchone()
    assert duplicates is not None and duplicates["n"] == 0
    history.db.close()


def _audit_rows(history: HistoryStore) -> list[dict[str, str]]:
    with history.db.transaction() as conn:
        rows = conn.execute("SELECT record FROM incident_audit ORDER BY position").fetchall()
    return [r["record"] for r in rows]


def _repeats(keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    return {key: n for key, n in collections.Counter(keys).items() if n > 1}


def test_kill_9_of_the_engine_in_a_city_at_x30_loses_and_repeats_nothing(tmp_path) -> None:
    """The leading engine dies mid-city while the history worker copies; the standby takes
    over. Every record the engines wrote is in PostgreSQL once, no step is applied twice, no
    deadline fires twice, and every incident's final snapshot and milestones are stored."""
    rate = 30.0
    city_dir = build_demo_city(tmp_path / "city", officers_per_team=2)
    settings = Settings(
        http_port=free_port(), data_dir=tmp_path, clock_rate=rate,
        # 10:00 local at the start whenever the test runs: the city's busy morning.
        clock_anchor=pinned_anchor(rate, 10, "Asia/Shanghai", time.time()),
        engine_id="A", ingest_name="kill-ingest", engine_lease_ms=3000,
        history_retention_s=86_400.0,  # every incident stays in Redis to compare with
    )  # fmt: skip
    with split_center(settings, city_dir, tmp_path / "center") as split:
        store = Store.from_url(split.settings.redis_url, split.settings.key_prefix)
        split.start("standby", "engine", YIWANG_ENGINE_ID="B")
        wait_until(lambda: store.redis.get(store.keys.engine_lease) == "A", 20, "A to lead")
        with city_running(split.center, per_hour=900):
            wait_until(lambda: store.redis.hlen(store.keys.incidents) >= 8, 40, "incidents")
            split.kill("engine")  # kill -9 the leader mid-city, the copy running
            killed_at = split.settings.clock()()
            reported_by_then = store.redis.hlen(store.keys.incidents)
            wait_until(lambda: store.redis.get(store.keys.engine_lease) == "B", 20, "B to lead")
            wait_until(
                lambda: store.redis.hlen(store.keys.incidents) >= reported_by_then + 6,
                40,
                "incidents under B",
            )
        split.kill("standby")  # nothing more is recorded: Redis is final
        wait_until(lambda: store.redis.xlen(store.keys.audit) == 0, 30, "the copy to catch up")
        added = store.redis.xinfo_stream(store.keys.audit)["entries-added"]
        in_redis = store.incidents.snapshots(list(store.redis.hkeys(store.keys.incidents)))
        history = HistoryStore(Database(split.settings.database_url, max_size=1))
        try:
            records = _audit_rows(history)
            stored = {i: history.incident(i) for i in in_redis}
            with history.db.transaction() as conn:
                milestones = conn.execute(
                    "SELECT incident, milestone, reached_at FROM incident_milestone"
                ).fetchall()
                incident_rows = conn.execute("SELECT count(*) AS n FROM incident").fetchone()
        finally:
            history.db.close()
    # Nothing lost, nothing twice: every record ever added to the stream, each once.
    assert len(records) == added
    assert {r["engine"] for r in records if float(r["at"]) < killed_at - 1} == {"A"}
    assert "B" in {r["engine"] for r in records}
    details = [(r, json.loads(r.get("detail") or "{}")) for r in records]
    # No input applied twice by the standby after the leader's death.
    applied = [
        (r["entry_id"], r["incident"], r["event"])
        for r, _ in details
        if r["kind"] == "event" and r["entry_id"] != "auto"
    ]
    assert applied and not _repeats(applied)
    alerts = [
        (d["incident"], d["milestone"], str(d.get("level", 0)))
        for r, d in details
        if r["kind"] in ("warning", "escalation")
    ]
    assert alerts and not _repeats(alerts)  # each deadline fired once
    orders = [(r["incident"], d["order_id"]) for r, d in details if r["kind"] == "order_sent"]
    assert orders and not _repeats(orders)
    reached = [(r["incident"], d["milestone"]) for r, d in details if r["kind"] == "milestone"]
    assert reached and not _repeats(reached)
    # Every incident is stored with its final snapshot and exactly its milestones.
    assert incident_rows is not None and incident_rows["n"] == len(in_redis) >= 14
    for incident_id, raw in in_redis.items():
        assert json.loads(stored[incident_id] or b"{}") == json.loads(raw), incident_id
    saved = {
        (m["incident"], m["milestone"], round(m["reached_at"].timestamp(), 3)) for m in milestones
    }
    expected = {
        (i, m["milestone"], round(float(m["reached_at"]), 3))
        for i, raw in in_redis.items()
        for m in json.loads(raw)["milestones"]
    }
    assert len(milestones) == len(saved) and saved == expected
    assert set(reached) == {(i, m) for i, m, _ in expected}
