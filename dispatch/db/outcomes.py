"""Supervision outcomes in PostgreSQL: computed from an incident's snapshot and its audit
rows, inside the history's copy transaction, so that they are never behind the history.

Columns follow `dispatch.core.supervision.Outcome`: the milestone columns are named
`<milestone>_status`, `<milestone>_s` and `<milestone>_cause` (migration 0004).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from dispatch.core.model import Incident, Milestone
from dispatch.core.supervision import Outcome, outcome_of

MILESTONE_COLUMNS = [f"{m.value}_{part}" for m in Milestone for part in ("status", "s", "cause")]
_COLUMNS = [
    "incident", "reported_at", "area", "team", "category", "source", "priority", "hour",
    "phase", *MILESTONE_COLUMNS, "redispatches", "escalations", "orders", "orders_refused",
    "orders_unanswered", "on_scene_s",
]  # fmt: skip
_UPSERT = (
    f"INSERT INTO incident_outcome ({', '.join(_COLUMNS)}) VALUES"
    f" ({', '.join('to_timestamp(%s)' if c == 'reported_at' else '%s' for c in _COLUMNS)})"
    " ON CONFLICT (incident) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
)


def _row(outcome: Outcome) -> tuple[Any, ...]:
    milestones = [
        value
        for m in outcome.milestones
        for value in (m.status.value, m.seconds, m.cause.value if m.cause else None)
    ]
    return (
        outcome.incident, outcome.reported_at, outcome.area, outcome.team, outcome.category,
        outcome.source, outcome.priority, outcome.hour, outcome.phase, *milestones,
        json.dumps({r.value: n for r, n in outcome.redispatches.items()}),
        json.dumps({str(level): n for level, n in outcome.escalations.items()}),
        outcome.orders, outcome.orders_refused, outcome.orders_unanswered,
        sum(w.on_scene_s for w in outcome.officers),
    )  # fmt: skip


def write_outcomes(
    conn: Any, incidents: Sequence[tuple[Incident, str | None]], zone: tzinfo
) -> list[Outcome]:
    """Compute and store the outcome of each (incident, area) from its audit rows already in
    PostgreSQL (this transaction's included); returns them."""
    if not incidents:
        return []
    ids = [incident.id for incident, _ in incidents]
    records: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for row in conn.execute(
        "SELECT incident, record FROM incident_audit WHERE incident = ANY(%s) ORDER BY position",
        (ids,),
    ):
        records[row["incident"]].append(row["record"])
    outcomes = [
        outcome_of(incident, records[incident.id], area=area, zone=zone)
        for incident, area in incidents
    ]
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, [_row(o) for o in outcomes])
        cur.execute("DELETE FROM incident_outcome_officer WHERE incident = ANY(%s)", (ids,))
        cur.executemany(
            "INSERT INTO incident_outcome_officer"
            " (incident, officer, orders, refused, unanswered, on_scene_s)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (o.incident, w.officer, w.orders, w.refused, w.unanswered, w.on_scene_s)
                for o in outcomes
                for w in o.officers
            ],
        )
    return outcomes
