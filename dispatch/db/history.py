"""The incident history in PostgreSQL: written by the history worker, read by the API.

A copy is one transaction: the audit records (keyed by their stream position, so a replay
inserts nothing twice), the newest snapshot of every incident they name (kept only if newer
than the one stored), its milestones, and the stream cursor. What is committed is never
copied again; what is not is copied again after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.core.model import Incident
from dispatch.db.conditions import Conditions
from dispatch.db.database import Database
from dispatch.db.outcomes import write_outcomes

AUDIT_STREAM = "audit"


def related_incident(fields: Mapping[str, str]) -> str | None:
    """The other incident an audit record names: the target of a merge."""
    if fields.get("event") != "DuplicateMerged":
        return None
    into = json.loads(fields.get("detail") or "{}").get("into")
    return str(into) if into else None


def _audit_row(stream_id: str, fields: Mapping[str, str]) -> tuple[Any, ...]:
    return (
        position(stream_id),
        stream_id,
        fields.get("incident") or None,
        related_incident(fields),
        _timestamp(float(fields.get("at", 0.0))),
        fields.get("kind", ""),
        json.dumps(dict(fields), ensure_ascii=False),
    )


def _timestamp(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _incident_row(snapshot: Snapshot) -> tuple[Any, ...]:
    incident = snapshot.incident
    officers = sorted(
        {*incident.past_officers, *(incident.order.officers if incident.order else ())}
    )
    return (
        incident.id,
        incident.category,
        incident.priority,
        incident.source.value,
        incident.team,
        snapshot.area,
        incident.phase.value,
        incident.location.lon,
        incident.location.lat,
        officers,
        _timestamp(incident.reported_at),
        _timestamp(snapshot.last_at),
        snapshot.version,
        snapshot.raw.decode(),
    )


def position(stream_id: str) -> int:
    """A Redis stream id as one sortable number: milliseconds × 10^6 + sequence."""
    ms, _, seq = stream_id.partition("-")
    return int(ms) * 1_000_000 + int(seq or 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An incident as the engine last saved it, with where it sits in the history."""

    incident: Incident
    raw: bytes  # the engine's JSON encoding, stored as it is
    area: str | None
    version: int  # position of the newest audit record naming it
    last_at: float  # time of that record


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    phase: Sequence[str] = ()
    areas: Sequence[str] | None = None  # None: any; else the areas of a scope or a query
    team: str | None = None
    officer: str | None = None
    category: str | None = None
    source: str | None = None
    since: float | None = None
    until: float | None = None
    breached: str | None = None  # a milestone that was reached late
    limit: int = 100
    offset: int = 0


class HistoryStore:
    def __init__(self, db: Database, *, zone: str = "Asia/Shanghai") -> None:
        self.db = db
        self.zone = ZoneInfo(zone)  # the center's: supervision counts by local hour

    def cursor(self, stream: str = AUDIT_STREAM) -> str | None:
        """The last stream id copied, or None before the first copy."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT stream_id FROM history_cursor WHERE stream = %s", (stream,)
            ).fetchone()
        return None if row is None else str(row["stream_id"])

    def copy(
        self,
        records: Sequence[tuple[str, Mapping[str, str]]],
        snapshots: Iterable[Snapshot],
        stream: str = AUDIT_STREAM,
    ) -> int:
        """Copy audit records and snapshots, recompute the supervision outcome of every
        incident stored anew, and move the cursor to the last record; returns how many audit
        records were new."""
        if not records:
            return 0
        with self.db.transaction() as conn:
            # COPY into a scratch table, then one INSERT whose conflict clause makes a replay
            # a no-op: several times faster than binding thousands of parameters.
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS audit_in"
                " (LIKE incident_audit INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY audit_in (position, stream_id, incident, related, at, kind, record)"
                    " FROM STDIN"
                ) as copy,
            ):
                for stream_id, fields in records:
                    copy.write_row(_audit_row(stream_id, fields))
            inserted = conn.execute(
                "INSERT INTO incident_audit SELECT * FROM audit_in"
                " ON CONFLICT (position) DO NOTHING RETURNING position"
            ).fetchall()
            batch = list(snapshots)
            fresh = self._upsert(conn, batch)
            stored = [(s.incident, s.area) for s in batch if s.incident.id in fresh]
            write_outcomes(conn, stored, self.zone)
            last = records[-1][0]
            conn.execute(
                "INSERT INTO history_cursor (stream, position, stream_id) VALUES (%s, %s, %s)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position,"
                " stream_id = excluded.stream_id WHERE history_cursor.position < excluded.position",
                (stream, position(last), last),
            )
        return len(inserted)

    def _upsert(self, conn: Any, snapshots: list[Snapshot]) -> set[str]:
        """Each snapshot newer than the stored one replaces it, with its milestones; a batch
        goes in a few statements, whatever its size. Returns the ids stored anew."""
        if not snapshots:
            return set()
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incident_in"
            " (LIKE incident INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY incident_in (id, category, priority, source, team, area, phase, lon, lat,"
                " officers, reported_at, last_at, version, snapshot) FROM STDIN"
            ) as copy,
        ):
            for snapshot in snapshots:
                copy.write_row(_incident_row(snapshot))
        updated = conn.execute(
            "INSERT INTO incident SELECT * FROM incident_in"
            " ON CONFLICT (id) DO UPDATE SET category = excluded.category,"
            " priority = excluded.priority, team = excluded.team, area = excluded.area,"
            " phase = excluded.phase, officers = excluded.officers, last_at = excluded.last_at,"
            " version = excluded.version, snapshot = excluded.snapshot"
            " WHERE incident.version < excluded.version RETURNING id"
        ).fetchall()
        fresh = {str(r["id"]) for r in updated}
        if not fresh:
            return fresh  # older snapshots than those stored: a replay
        conn.execute("DELETE FROM incident_milestone WHERE incident = ANY(%s)", (list(fresh),))
        milestones = [
            (
                s.incident.id,
                m.milestone.value,
                None if m.due_at is None else _timestamp(m.due_at),
                _timestamp(m.reached_at),
                m.late_by_s,
                m.by,
                m.via,
            )
            for s in snapshots
            if s.incident.id in fresh
            for m in s.incident.milestones
        ]
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY incident_milestone (incident, milestone, due_at, reached_at, late_by_s, by, via)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in milestones:
                copy.write_row(row)
        return fresh

    # Reads ---------------------------------------------------------------------------------

    def incident(self, incident_id: str) -> bytes | None:
        """The stored snapshot (the engine's JSON) of one incident."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT snapshot::text AS raw FROM incident WHERE id = %s", (incident_id,)
            ).fetchone()
        return None if row is None else str(row["raw"]).encode()

    def incidents(self, query: IncidentFilter) -> list[bytes]:
        """Snapshots matching `query`, newest report first, one page of them."""
        where = Conditions().common(
            "",
            since=query.since,
            until=query.until,
            areas=query.areas,
            equal={"team": query.team, "category": query.category, "source": query.source},
        )
        where.add("phase = ANY(%s)", list(query.phase) or None)
        where.add("officers @> ARRAY[%s]::text[]", query.officer)
        where.add(
            "EXISTS (SELECT 1 FROM incident_milestone m WHERE m.incident = incident.id"
            " AND m.milestone = %s AND m.late_by_s > 0)",
            query.breached,
        )
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT snapshot::text AS raw FROM incident WHERE {where.sql}"
                " ORDER BY reported_at DESC, id LIMIT %s OFFSET %s",
                (*where.values, query.limit, query.offset),
            ).fetchall()
        return [str(r["raw"]).encode() for r in rows]

    def known(self, incident_ids: Sequence[str]) -> set[str]:
        """Which of these incidents the history holds."""
        if not incident_ids:
            return set()
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM incident WHERE id = ANY(%s)", (list(incident_ids),)
            ).fetchall()
        return {str(r["id"]) for r in rows}

    def incident_audit(self, incident_id: str) -> list[dict[str, str]]:
        """The incident's audit records, in order, each with its stream id."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT position, stream_id, record FROM incident_audit WHERE incident = %s"
                " UNION ALL SELECT position, stream_id, record FROM incident_audit"
                " WHERE related = %s ORDER BY position",
                (incident_id, incident_id),
            ).fetchall()
        return [{"id": r["stream_id"], **r["record"]} for r in rows]

    # Eviction ------------------------------------------------------------------------------

    def evictable(self, before: float, limit: int = 1000) -> list[str]:
        """Ended incidents quiet since before `before` and not yet evicted."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM incident WHERE phase IN ('closed', 'cancelled', 'merged')"
                " AND NOT evicted AND last_at < to_timestamp(%s) ORDER BY last_at LIMIT %s",
                (before, limit),
            ).fetchall()
        return [str(r["id"]) for r in rows]

    def mark_evicted(self, incident_ids: Sequence[str]) -> None:
        if not incident_ids:
            return
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE incident SET evicted = true WHERE id = ANY(%s)", (list(incident_ids),)
            )
