"""The history's throughput and the month's report time.

Copy: N closed incidents, each with the four audit records the engine writes for a plain
one (reported, acknowledged, ordered, closed), are put in Redis as the engine leaves them; the
history worker copies them into PostgreSQL. Baseline: a bare `COPY` of the same audit rows into
a table of the same shape, in the same run. Then the copy is checked: every record there once.

Report: a month of M incidents with their milestones is loaded with `COPY` and the month's
on-time share per area and milestone is computed; the query plan says which indexes it used.
Last line: JSON.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

import msgspec
from tqdm import tqdm

from dispatch.core.model import Incident, Milestone, MilestoneRecord, Phase, Source
from dispatch.db import Database, upgrade
from dispatch.db.history import HistoryStore
from dispatch.history import HistoryWorker
from dispatch.store import Store
from gis.coords import LonLat
from harness.daemons import ManagedRedis
from harness.postgres import ManagedPostgres

_DEADLINES = {Milestone.RESPOND: 60, Milestone.TURN_OUT: 180, Milestone.HANDLE: 900}
_AREAS = [f"grid-{n:02d}" for n in range(17)]
_MONTH_START = 1793462400.0  # 2026-11-01T00:00+08:00


def _incident(n: int, rng: random.Random, at: float) -> Incident:
    milestones = []
    for milestone, due in _DEADLINES.items():
        took = due * rng.uniform(0.3, 1.4)
        late = max(0.0, took - due)
        milestones.append(MilestoneRecord(milestone, at + due, at + took, late, "d1", "console"))
    return Incident(
        id=f"INC-B{n:07d}",  # type: ignore[arg-type]
        category=rng.choice(["street_vending", "illegal_parking", "noise", "garbage"]),
        priority=rng.randint(1, 4),
        location=LonLat(119.6 + rng.random() * 0.1, 29.05 + rng.random() * 0.1),
        source=rng.choice(list(Source)),
        reported_at=at,
        phase=Phase.CLOSED,
        milestones=tuple(milestones),
    )


def _fill_redis(store: Store, count: int) -> int:
    """Closed incidents and their audit records, as the engine leaves them; returns records."""
    rng = random.Random(7)
    pipe = store.redis.pipeline(transaction=False)
    records = 0
    for n in tqdm(range(count), desc="engine records", unit=" incidents", leave=False):
        incident = _incident(n, rng, _MONTH_START + n * 5.0)
        pipe.hset(store.keys.incidents, incident.id, msgspec.json.encode(incident))
        for kind, event in (
            ("event", "IncidentReported"),
            ("event", "IncidentAcknowledged"),
            ("order_sent", ""),
            ("event", "IncidentClosed"),
        ):
            fields = {"at": f"{incident.reported_at + records % 4:.3f}", "kind": kind}
            fields |= {"incident": incident.id, "event": event, "detail": "{}"}
            pipe.xadd(store.keys.audit, fields)
            records += 1
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return records


def _copy_through_worker(store: Store, db: Database, records: int) -> float:
    worker = HistoryWorker(store, HistoryStore(db), batch=2000)
    started = time.perf_counter()
    with tqdm(total=records, desc="history copy", unit=" records", leave=False) as bar:
        while copied := worker.copy_once():
            bar.update(copied)
    return time.perf_counter() - started


def _bare_copy(db: Database) -> tuple[int, float]:
    """COPY the same audit rows into a scratch table of the same shape."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT position, stream_id, incident, related, at, kind, record::text"
            " FROM incident_audit"
        ).fetchall()
        conn.execute("CREATE TABLE audit_copy (LIKE incident_audit INCLUDING INDEXES)")
    started = time.perf_counter()
    with (
        db.transaction() as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY audit_copy (position, stream_id, incident, related, at, kind, record) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(tuple(row.values()))
    return len(rows), time.perf_counter() - started


_REPORT = (
    "SELECT i.area, m.milestone, count(*) AS incidents,"
    " avg((m.late_by_s <= 0)::int) AS on_time,"
    " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM m.reached_at - i.reported_at))"
    " AS p90_s FROM incident i JOIN incident_milestone m ON m.incident = i.id"
    " WHERE i.reported_at >= to_timestamp(%s) AND i.reported_at < to_timestamp(%s)"
    " GROUP BY i.area, m.milestone"
)


def _month(db: Database, count: int) -> tuple[float, list[str]]:
    rng = random.Random(11)
    step = 30 * 86400 / count
    with db.transaction() as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY incident (id, category, priority, source, area, phase, lon, lat,"
            " reported_at, last_at, version, snapshot) FROM STDIN"
        ) as copy:
            for n in tqdm(range(count), desc="month incidents", unit=" incidents", leave=False):
                at = _MONTH_START + n * step
                stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(at))
                copy.write_row(
                    (f"INC-M{n:07d}", "noise", 3, "12345", rng.choice(_AREAS), "closed",
                     119.6, 29.1, stamp, stamp, n, "{}")
                )  # fmt: skip
        with cur.copy(
            "COPY incident_milestone (incident, milestone, reached_at, late_by_s, by, via)"
            " FROM STDIN"
        ) as copy:
            for n in range(count):
                at = _MONTH_START + n * step
                for milestone, due in _DEADLINES.items():
                    took = due * rng.uniform(0.3, 1.4)
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(at + took))
                    copy.write_row(
                        (f"INC-M{n:07d}", milestone.value, stamp, max(0.0, took - due), "d", "c")
                    )
    with db.transaction() as conn:
        conn.execute("ANALYZE incident")
        conn.execute("ANALYZE incident_milestone")
        window = (_MONTH_START, _MONTH_START + 30 * 86400)
        started = time.perf_counter()
        conn.execute(_REPORT, window).fetchall()
        took = time.perf_counter() - started
        plan = conn.execute("EXPLAIN " + _REPORT, window).fetchall()
    return took, [next(iter(r.values())) for r in plan]


def main(incidents: int = 100_000, month: int = 500_000) -> int:
    with tempfile.TemporaryDirectory(prefix="yiwang-history-") as tmp:
        redis_service = ManagedRedis(Path(tmp) / "redis")
        postgres = ManagedPostgres(Path(tmp) / "postgres")
        redis_service.start()
        postgres.start()
        try:
            db = Database(postgres.create_database("bench"), max_size=2)
            upgrade(db)
            store = Store.from_url(redis_service.url, "bench")
            records = _fill_redis(store, incidents)
            copy_s = _copy_through_worker(store, db, records)
            with db.transaction() as conn:
                found = conn.execute(
                    "SELECT count(*) AS n, count(DISTINCT position) AS d FROM incident_audit"
                ).fetchone()
                stored = conn.execute("SELECT count(*) AS n FROM incident").fetchone()
            assert found is not None and stored is not None
            bare_rows, bare_s = _bare_copy(db)
            report_s, plan = _month(_fresh(postgres), month)
        finally:
            postgres.remove()
            redis_service.stop()
    rows_per_s = (records + stored["n"]) / copy_s
    copy_rows_per_s = bare_rows / bare_s
    result = {
        "incidents": incidents,
        "audit_records": records,
        "rows_per_s": round(rows_per_s),
        "copy_rows_per_s": round(copy_rows_per_s),
        "ratio_to_copy": round(rows_per_s / copy_rows_per_s, 3),
        "lost": records - found["n"],
        "duplicates": found["n"] - found["d"],
        "month_incidents": month,
        "report_s": round(report_s, 3),
        "report_plan": plan,
    }
    print(
        f"history copy: {records:,} audit records of {incidents:,} incidents in {copy_s:.1f} s"
        f" ({rows_per_s:,.0f} rows/s; bare COPY {copy_rows_per_s:,.0f} rows/s,"
        f" ×{result['ratio_to_copy']}), lost {result['lost']}, duplicates {result['duplicates']}"
    )
    print(f"month report over {month:,} incidents: {report_s:.2f} s")
    print(json.dumps(result))
    return 0


def _fresh(postgres: ManagedPostgres) -> Database:
    db = Database(postgres.create_database("month"), max_size=1)
    upgrade(db)
    return db
