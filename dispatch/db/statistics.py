"""Supervision figures from PostgreSQL: the SQL twin of `dispatch.core.breakdown.aggregate`.

One scan of `incident_outcome` (joined to `incident_outcome_officer` when grouping by
officer) for the counts, one over the JSON counts of re-dispatch reasons and escalation
levels, and one histogram of whole seconds per milestone for the percentiles; the filters use
the table's (column, reported_at) indexes. Percentiles are computed from the histogram by the
same function as `breakdown`'s, so a test compares both figure for figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from dispatch.core.breakdown import (
    EVERYTHING,
    PERCENTILES,
    Dimension,
    MilestoneTally,
    StatsFilter,
    Tally,
    histogram_percentile,
    ordered,
)
from dispatch.core.model import Milestone
from dispatch.core.supervision import Cause, RedispatchReason, Status
from dispatch.db.conditions import Conditions
from dispatch.db.database import Database

_KEYS = {
    None: "NULL::text",
    Dimension.AREA: "o.area",
    Dimension.TEAM: "o.team",
    Dimension.OFFICER: "w.officer",
    Dimension.CATEGORY: "o.category",
    Dimension.SOURCE: "o.source",
    Dimension.PRIORITY: "o.priority::text",
    Dimension.HOUR: "lpad(o.hour::text, 2, '0')",
}


def _figures(by: Dimension | None) -> list[str]:
    """The select list after the key: counts, percentiles, causes, orders, time on scene."""
    columns = ["count(*) AS incidents"]
    for m in Milestone:
        name = m.value
        for status in (Status.ON_TIME, Status.LATE, Status.MISSED):
            columns.append(
                f"count(*) FILTER (WHERE o.{name}_status = '{status.value}')"
                f" AS {name}_{status.value}"
            )
        columns.append(f"count(o.{name}_s) AS {name}_reached")
    for cause in Cause:
        hits = " + ".join(
            f"count(*) FILTER (WHERE o.{m.value}_cause = '{cause.value}')" for m in Milestone
        )
        columns.append(f"{hits} AS cause_{cause.value}")
    if by is Dimension.OFFICER:
        orders = ("w.orders", "w.refused", "w.unanswered", "w.on_scene_s")
    else:
        orders = ("o.orders", "o.orders_refused", "o.orders_unanswered", "o.on_scene_s")
    names = ("orders", "orders_refused", "orders_unanswered", "on_scene_s")
    columns += [f"sum({c}) AS {n}" for c, n in zip(orders, names, strict=True)]
    return columns


def _where(where: StatsFilter) -> tuple[str, list[Any]]:
    conditions = Conditions().common(
        "o.",
        since=where.since,
        until=where.until,
        areas=where.areas,
        equal={"team": where.team, "category": where.category, "source": where.source},
    )
    return conditions.sql, conditions.values


def aggregate(db: Database, by: Dimension | None, where: StatsFilter = EVERYTHING) -> list[Tally]:
    """The tallies `breakdown.aggregate` gives for the same outcomes, from the stored ones."""
    key = _KEYS[by]
    source = "incident_outcome o"
    if by is Dimension.OFFICER:
        source += " JOIN incident_outcome_officer w ON w.incident = o.incident"
    clause, values = _where(where)
    figures = f"SELECT {key} AS key, {', '.join(_figures(by))} FROM {source} WHERE {clause}"
    counts = (
        f"SELECT {key} AS key, 'redispatch' AS what, c.key AS name, sum(c.value::int) AS n"
        f" FROM {source}, jsonb_each_text(o.redispatches) c WHERE {clause} GROUP BY 1, 3"
        f" UNION ALL SELECT {key}, 'escalation', c.key, sum(c.value::int)"
        f" FROM {source}, jsonb_each_text(o.escalations) c WHERE {clause} GROUP BY 1, 3"
    )
    # Percentiles from a histogram of whole seconds per key and milestone (see breakdown), in
    # one scan: each incident's milestones side by side become rows.
    pairs = ", ".join(f"('{m.value}', o.{m.value}_s)" for m in Milestone)
    seconds = (
        f"SELECT {key} AS key, v.milestone, floor(v.s)::int AS s, count(*) AS n"
        f" FROM {source}, LATERAL (VALUES {pairs}) AS v(milestone, s)"
        f" WHERE {clause} AND v.s IS NOT NULL GROUP BY 1, 2, 3"
    )
    with db.transaction() as conn:
        # Dozens of aggregate expressions: compiling them costs more than it saves here.
        conn.execute("SET LOCAL jit = off")
        rows = conn.execute(f"{figures} GROUP BY 1", values).fetchall()
        extra = conn.execute(counts, values * 2).fetchall()
        histogram = conn.execute(seconds, values).fetchall()
    spread: dict[tuple[str | None, str], dict[int, int]] = defaultdict(dict)
    for row in histogram:
        spread[(row["key"], row["milestone"])][int(row["s"])] = int(row["n"])
    redispatches: dict[str | None, dict[RedispatchReason, int]] = defaultdict(dict)
    escalations: dict[str | None, dict[int, int]] = defaultdict(dict)
    for row in extra:
        if row["what"] == "redispatch":
            redispatches[row["key"]][RedispatchReason(row["name"])] = int(row["n"])
        else:
            escalations[row["key"]][int(row["name"])] = int(row["n"])
    return ordered(
        _tally(row, redispatches[row["key"]], escalations[row["key"]], spread) for row in rows
    )


def _tally(
    row: dict[str, Any],
    redispatches: dict[RedispatchReason, int],
    escalations: dict[int, int],
    spread: Mapping[tuple[str | None, str], dict[int, int]],
) -> Tally:
    milestones = {}
    for m in Milestone:
        counts = spread.get((row["key"], m.value), {})
        milestones[m] = MilestoneTally(
            on_time=row[f"{m.value}_on_time"],
            late=row[f"{m.value}_late"],
            missed=row[f"{m.value}_missed"],
            reached=row[f"{m.value}_reached"],
            p50_s=histogram_percentile(counts, PERCENTILES[0]),
            p90_s=histogram_percentile(counts, PERCENTILES[1]),
        )
    return Tally(
        key=row["key"],
        incidents=row["incidents"],
        milestones=milestones,
        causes={c: row[f"cause_{c.value}"] for c in Cause},
        redispatches={r: redispatches.get(r, 0) for r in RedispatchReason},
        escalations={
            level: escalations[level] for level in sorted(escalations) if escalations[level]
        },
        orders=int(row["orders"]),
        orders_refused=int(row["orders_refused"]),
        orders_unanswered=int(row["orders_unanswered"]),
        on_scene_s=int(row["on_scene_s"]),
    )
