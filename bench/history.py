"""The history's throughput and the month's report time.

Copy: N closed incidents, each with the four audit records the engine writes for a plain
one (reported, acknowledged, ordered, closed), are put in Redis as the engine leaves them; the
history worker copies them into PostgreSQL. Baseline: a bare `COPY` of the same audit rows into
a table of the same shape, in the same run. Then the copy is checked: every record there once.

Report: a month of M incidents' supervision outcomes is generated in PostgreSQL and the whole
monthly report (`yiwang report monthly`: every sheet) is written. Baselines, same run: a bare
scan counting the month's rows, and the same figures asked one breakdown per request as the API
answers them. The plan of a one-grid query shows the index a scoped supervisor's figures use.
Last line: JSON.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
from tqdm import tqdm

from dispatch.cli.report import SHEETS, write_report
from dispatch.core.breakdown import StatsFilter
from dispatch.core.model import Incident, Milestone, MilestoneRecord, Phase, Source
from dispatch.db import Database, upgrade
from dispatch.db.history import HistoryStore
from dispatch.db.statistics import aggregate
from dispatch.history import HistoryWorker
from dispatch.store import Store
from gis.coords import LonLat
from harness.daemons import ManagedRedis
from harness.postgres import ManagedPostgres

_DEADLINES = {Milestone.RESPOND: 60, Milestone.TURN_OUT: 180, Milestone.HANDLE: 900}
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


# A month of outcomes as the history leaves them. Each incident's area (with its team),
# category, source, priority and milestone times are drawn apart, as a city's month mixes them:
# a GROUP BY of every dimension at once finds tens of thousands of combinations, not a few.
# Statuses follow the 60/180/900 s deadlines; breaches get causes as the rules chain them.
_OUTCOMES = """
INSERT INTO incident (id, category, priority, source, area, phase, lon, lat, reported_at,
    last_at, version, snapshot)
SELECT 'INC-M' || n,
    (ARRAY['street_vending', 'illegal_parking', 'construction_noise', 'exposed_garbage',
        'illegal_advertising', 'market_price', 'sewage_discharge', 'illegal_construction'])
        [1 + floor(random() * 8)::int],
    1 + floor(random() * 4)::int,
    (ARRAY['12345', '8890', 'citizen', 'patrol', 'iot'])[1 + floor(random() * 5)::int],
    'grid-' || lpad(floor(random() * 17)::text, 2, '0'), 'closed', 119.6, 29.1,
    to_timestamp(%(start)s + n * %(step)s), to_timestamp(%(start)s + n * %(step)s), n, '{}'
FROM generate_series(0, %(count)s - 1) AS n;
INSERT INTO incident_outcome
SELECT id, reported_at, area, 'team-' || substr(area, 6), category, source, priority,
    extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai'), 'closed',
    CASE WHEN respond_s <= 60 THEN 'on_time' ELSE 'late' END, respond_s,
    CASE WHEN respond_s <= 60 THEN NULL
        WHEN c < 0.7 THEN 'no_acknowledgement' ELSE 'no_candidate' END,
    CASE WHEN turn_out_s <= 180 THEN 'on_time' ELSE 'late' END, turn_out_s,
    CASE WHEN turn_out_s <= 180 THEN NULL
        WHEN respond_s > 60 THEN CASE WHEN c < 0.7 THEN 'no_acknowledgement' ELSE 'no_candidate' END
        ELSE (ARRAY['not_accepted', 'rejected', 'officer_offline', 'unknown'])[1 + floor(c * 4)::int]
    END,
    'untimed', arrive_s, NULL,
    CASE WHEN handle_s <= 900 THEN 'on_time' ELSE 'late' END, handle_s,
    CASE WHEN handle_s <= 900 THEN NULL
        WHEN respond_s > 60 OR turn_out_s > 180 THEN 'unknown' ELSE 'late_handling' END,
    CASE WHEN turn_out_s > 180 AND c < 0.5 THEN '{"not_accepted": 1}' ELSE '{}' END::jsonb,
    CASE WHEN respond_s > 60 OR turn_out_s > 180 OR handle_s > 900 THEN '{"1": 1}'
        ELSE '{}' END::jsonb,
    1 + (turn_out_s > 180 AND c < 0.5)::int, 0, (turn_out_s > 180 AND c < 0.5)::int,
    (handle_s - arrive_s)::int
FROM (SELECT *, respond_s + 20 + 200 * r2 ^ 2 AS turn_out_s
    FROM (SELECT *, 5 + 70 * r1 ^ 3 AS respond_s
        FROM (SELECT id, reported_at, area, category, source, priority, random() AS r1,
            random() AS r2, random() AS r3, random() AS r4, random() AS c
            FROM incident WHERE id LIKE 'INC-M%%') AS drawn) AS responded) AS turned,
    LATERAL (SELECT turned.turn_out_s + 60 + 400 * turned.r3 AS arrive_s) AS arrived,
    LATERAL (SELECT arrived.arrive_s + 60 + 500 * turned.r4 ^ 2 AS handle_s) AS handled;
INSERT INTO incident_outcome_officer
SELECT incident,
    'officer' || lpad((substr(team, 6)::int * 3 + mod(substr(incident, 6)::int + k, 3))::text,
        3, '0'),
    1, 0, 0, on_scene_s / 2
FROM incident_outcome, generate_series(1, 2) AS k;
"""


def _month(db: Database, count: int, out: Path) -> dict[str, Any]:
    """The month's report (every sheet of `yiwang report monthly`) over `count` incidents,
    against two baselines in the same run: a bare scan counting the month's rows, and one
    API breakdown per sheet (each its own request, as the supervision page asks)."""
    window = {"start": _MONTH_START, "step": 30 * 86400 / count, "count": count}
    with db.transaction() as conn:
        conn.execute("SELECT setseed(0.5)")
        for statement in filter(str.strip, _OUTCOMES.split(";")):
            conn.execute(statement, window)  # type: ignore[arg-type]
    with db.transaction() as conn:
        conn.execute("ANALYZE incident_outcome")
        conn.execute("ANALYZE incident_outcome_officer")
    where = StatsFilter(since=_MONTH_START, until=_MONTH_START + 30 * 86400)
    started = time.perf_counter()
    with db.transaction() as conn:
        conn.execute(
            "SELECT count(*) FROM incident_outcome o"
            " WHERE o.reported_at >= to_timestamp(%s) AND o.reported_at < to_timestamp(%s)",
            (where.since, where.until),
        )
    scan_s = time.perf_counter() - started
    started = time.perf_counter()
    for dimension in SHEETS:
        aggregate(db, dimension, where)
    per_sheet_s = time.perf_counter() - started
    started = time.perf_counter()
    write_report(db, where, out)
    report_s = time.perf_counter() - started
    # Where one grid's month is asked for (a scoped supervisor), the index is what serves it.
    with db.transaction() as conn:
        plan = conn.execute(
            "EXPLAIN SELECT count(*) FROM incident_outcome o WHERE o.area = ANY(%s)"
            " AND o.reported_at >= to_timestamp(%s) AND o.reported_at < to_timestamp(%s)",
            (["grid-03"], where.since, where.until),
        ).fetchall()
    return {
        "report_s": report_s,
        "scan_s": scan_s,
        "per_sheet_s": per_sheet_s,
        "plan": [next(iter(r.values())) for r in plan],
    }


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
            report = _month(_fresh(postgres), month, Path(tmp) / "month.xlsx")
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
        "report_s": round(report["report_s"], 3),
        "report_scan_s": round(report["scan_s"], 3),
        "report_per_sheet_s": round(report["per_sheet_s"], 3),
        "report_ratio_to_scan": round(report["report_s"] / report["scan_s"], 1),
        "report_ratio_to_per_sheet": round(report["report_s"] / report["per_sheet_s"], 3),
        "report_plan": report["plan"],
    }
    print(
        f"history copy: {records:,} audit records of {incidents:,} incidents in {copy_s:.1f} s"
        f" ({rows_per_s:,.0f} rows/s; bare COPY {copy_rows_per_s:,.0f} rows/s,"
        f" ×{result['ratio_to_copy']}), lost {result['lost']}, duplicates {result['duplicates']}"
    )
    print(
        f"month report over {month:,} incidents: {report['report_s']:.2f} s"
        f" (bare scan of the month {report['scan_s']:.3f} s, ×{result['report_ratio_to_scan']};"
        f" one API breakdown per sheet {report['per_sheet_s']:.2f} s,"
        f" ×{result['report_ratio_to_per_sheet']})"
    )
    print(json.dumps(result))
    return 0


def _fresh(postgres: ManagedPostgres) -> Database:
    db = Database(postgres.create_database("month"), max_size=2)
    upgrade(db)
    return db
