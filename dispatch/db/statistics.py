"""Supervision figures from PostgreSQL: the SQL twin of `dispatch.core.breakdown.aggregate`.

`breakdowns(db, dimensions, where)` gives the tallies of several dimensions at once, all read
in one snapshot (the monthly report asks for every dimension; the API for one). For the
dimensions of the incident itself (area, team, category, source, priority, hour, and none):
- counts: one scan of `incident_outcome` with GROUPING SETS, a set per dimension; one more
  over the rows that hold re-dispatches or escalations (JSON counts) for those;
- percentiles: one scan fetches each incident's dimensions and seconds per milestone as
  arrays, and `breakdown.grouped_percentiles` picks every group's from them. A histogram per
  group in SQL hashed each incident's four milestones once per dimension: a second per
  dimension over a month of 500,000 incidents.
By officer, incidents are joined to `incident_outcome_officer` (one row per officer ordered)
and tallied apart, on a second connection beside the rest when both are asked for: there an
incident counts once for every officer of it. The filters use the (column, reported_at)
indexes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import sql

from dispatch.core.breakdown import (
    EVERYTHING,
    Dimension,
    MilestoneTally,
    StatsFilter,
    Tally,
    group_key,
    grouped_percentiles,
    ordered,
)
from dispatch.core.model import Milestone
from dispatch.core.supervision import Cause, RedispatchReason, Status
from dispatch.db.conditions import Conditions
from dispatch.db.database import Database

_INCIDENTS = "incident_outcome o"
_OFFICERS = "incident_outcome o JOIN incident_outcome_officer w ON w.incident = o.incident"
# Dozens of aggregate expressions: compiling them costs more than it saves here. The join by
# officer hashes a month of outcomes: in the default 4 MB it spills to disk in 16 batches.
_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")

Dimensions = Sequence[Dimension | None]
Group = tuple[Dimension | None, Any]  # a dimension and its recorded value (None: not recorded)
Percentiles = Mapping[Milestone, Mapping[Any, tuple[float, ...]]]


def aggregate(db: Database, by: Dimension | None, where: StatsFilter = EVERYTHING) -> list[Tally]:
    """The tallies `breakdown.aggregate` gives for the same outcomes, from the stored ones."""
    return breakdowns(db, [by], where)[by]


def breakdowns(
    db: Database, dimensions: Iterable[Dimension | None], where: StatsFilter = EVERYTHING
) -> dict[Dimension | None, list[Tally]]:
    """`aggregate` for each of `dimensions` (None: all in one), all from one snapshot."""
    wanted = list(dict.fromkeys(dimensions))
    own = [by for by in wanted if by is not Dimension.OFFICER]
    officers = [by for by in wanted if by is Dimension.OFFICER]
    found: dict[Dimension | None, list[Tally]] = {}
    with db.transaction() as conn:
        _begin(conn)
        if own and officers and db.pool.max_size > 1:
            # The officer tallies read other rows and nothing of the rest: on a second
            # connection in the same snapshot they run beside them (a month of 500,000 on
            # two cores: 5–6 s → 4 s).
            exported = conn.execute("SELECT pg_export_snapshot() AS id").fetchone()
            assert exported is not None
            with ThreadPoolExecutor(max_workers=1) as beside:
                by_officer = beside.submit(_tallies_in, db, exported["id"], officers, where)
                found = _tallies(conn, own, where) | by_officer.result()
        else:
            for part in (own, officers):
                if part:
                    found |= _tallies(conn, part, where)
    return {by: found[by] for by in wanted}


def _begin(conn: Any, snapshot: str | None = None) -> None:
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    if snapshot is not None:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
    for setting in _SETTINGS:
        conn.execute(setting)


def _tallies_in(
    db: Database, snapshot: str, dimensions: Dimensions, where: StatsFilter
) -> dict[Dimension | None, list[Tally]]:
    with db.transaction() as conn:
        _begin(conn, snapshot)
        return _tallies(conn, dimensions, where)


def _tallies(
    conn: Any, dimensions: Dimensions, where: StatsFilter
) -> dict[Dimension | None, list[Tally]]:
    """The tallies of the dimensions: all the incident's own, or the officer alone."""
    source = _OFFICERS if Dimension.OFFICER in dimensions else _INCIDENTS
    clause, values = _where(where)
    measures = _measures(source)
    figures = _grouped(
        ", ".join(f"{e} AS {n}" for n, e in measures), f"{source} WHERE {clause}", dimensions
    )
    # Few rows hold re-dispatches or escalations, and only those are read.
    json_counts = _grouped(
        "sum(c.n)::bigint AS n",
        f"{source}, LATERAL ("
        "SELECT 'redispatches', key, value::int FROM jsonb_each_text(o.redispatches)"
        " UNION ALL SELECT 'escalations', key, value::int FROM jsonb_each_text(o.escalations)"
        f") AS c(what, name, n) WHERE {clause}"
        " AND (o.redispatches <> '{}' OR o.escalations <> '{}')",
        dimensions,
        also={"what": "c.what", "name": "c.name"},
    )
    arrays = ", ".join(
        [f"array_agg({_column(by)}) AS {by.value}" for by in dimensions if by is not None]
        + [f"array_agg(o.{m.value}_s) AS {m.value}" for m in Milestone]
    )
    figured = conn.execute(figures, values).fetchall()
    redispatches, escalations = _json_counts(conn.execute(json_counts, values), dimensions)
    # Binary: a month's arrays of numbers arrive a third faster than as text.
    with conn.cursor(binary=True) as cur:
        fetched = cur.execute(f"SELECT {arrays} FROM {source} WHERE {clause}", values).fetchone()
    seconds = {m: np.array(fetched[m.value] or [], dtype=np.float64) for m in Milestone}
    set_of = _set_of(dimensions)
    found: dict[Dimension | None, list[Tally]] = {by: [] for by in dimensions}
    for by in dimensions:
        percentiles = _percentiles(by, fetched[by.value] if by is not None else None, seconds)
        for row in figured:
            if set_of[row["unset"]] is not by or not row["incidents"]:
                continue  # another dimension's, or the empty total of no incident at all
            group = (by, row[by.value] if by is not None else None)
            found[by].append(
                _tally(row, group, redispatches[group], escalations[group], percentiles)
            )
    return {by: ordered(tallies) for by, tallies in found.items()}


def _where(where: StatsFilter) -> tuple[str, list[Any]]:
    conditions = Conditions().common(
        "o.",
        since=where.since,
        until=where.until,
        areas=where.areas,
        equal={"team": where.team, "category": where.category, "source": where.source},
    )
    return conditions.sql, conditions.values


def _column(by: Dimension) -> str:
    return "w.officer" if by is Dimension.OFFICER else f"o.{by.value}"


def _measures(source: str) -> list[tuple[str, str]]:
    """(name, aggregate) of the figures counted per group of the rows of `source`."""
    found = [("incidents", "count(*)")]
    for m in Milestone:
        name = m.value
        found += [
            (f"{name}_{s.value}", f"count(*) FILTER (WHERE o.{name}_status = '{s.value}')")
            for s in (Status.ON_TIME, Status.LATE, Status.MISSED)
        ]
        found.append((f"{name}_reached", f"count(o.{name}_s)"))
    for cause in Cause:
        hits = " + ".join(
            f"count(*) FILTER (WHERE o.{m.value}_cause = '{cause.value}')" for m in Milestone
        )
        found.append((f"cause_{cause.value}", hits))
    if source == _OFFICERS:  # that officer's own orders and time on scene
        orders = ("w.orders", "w.refused", "w.unanswered", "w.on_scene_s")
    else:
        orders = ("o.orders", "o.orders_refused", "o.orders_unanswered", "o.on_scene_s")
    names = ("orders", "orders_refused", "orders_unanswered", "on_scene_s")
    return found + [(n, f"sum({c})") for n, c in zip(names, orders, strict=True)]


def _grouped(
    select: str, rows: str, dimensions: Dimensions, also: Mapping[str, str] | None = None
) -> str:
    """SQL of `select` (aggregates) over `rows` (FROM what WHERE what), one row per group of
    each dimension, within each group of the `also` columns (name: expression), in one scan:
    GROUPING SETS. `unset` says whose row it is; the dimensions' values are named by them."""
    keys = [_column(by) for by in dimensions if by is not None]
    sets = ", ".join(f"({_column(by)})" if by is not None else "()" for by in dimensions)
    unset = f"GROUPING({', '.join(keys)})" if keys else "0"
    named = {by.value: _column(by) for by in dimensions if by is not None} | dict(also or {})
    columns = "".join(f"{expression} AS {name}, " for name, expression in named.items())
    within = "".join(f"{expression}, " for expression in (also or {}).values())
    return (
        f"SELECT {unset} AS unset, {columns}{select} FROM {rows}"
        f" GROUP BY {within}GROUPING SETS ({sets})"
    )


def _set_of(dimensions: Dimensions) -> dict[int, Dimension | None]:
    """The dimension of each value of `unset` (GROUPING: a bit set for each key not grouped)."""
    keys = [by for by in dimensions if by is not None]
    every = (1 << len(keys)) - 1
    found: dict[int, Dimension | None] = {every: None}
    for i, by in enumerate(keys):
        found[every ^ (1 << (len(keys) - 1 - i))] = by
    return found


def _json_counts(
    rows: Iterable[Mapping[str, Any]], dimensions: Dimensions
) -> tuple[dict[Group, dict[RedispatchReason, int]], dict[Group, dict[int, int]]]:
    """Re-dispatches by reason and escalations by level, per group."""
    set_of = _set_of(dimensions)
    redispatches: dict[Group, dict[RedispatchReason, int]] = defaultdict(dict)
    escalations: dict[Group, dict[int, int]] = defaultdict(dict)
    for row in rows:
        by = set_of[row["unset"]]
        group = (by, row[by.value] if by is not None else None)
        if row["what"] == "redispatches":
            redispatches[group][RedispatchReason(row["name"])] = int(row["n"])
        else:
            escalations[group][int(row["name"])] = int(row["n"])
    return redispatches, escalations


def _percentiles(
    by: Dimension | None, values: list[Any] | None, seconds: Mapping[Milestone, NDArray[np.float64]]
) -> Percentiles:
    """Each group's percentiles per milestone, by the dimension's value (`values`: each
    row's, in the order of `seconds`)."""
    count = len(seconds[Milestone.RESPOND])
    if by is None:
        codes: dict[Any, int] = {None: 0}
        groups = np.zeros(count, dtype=np.int64)
    else:
        codes = {value: code for code, value in enumerate(dict.fromkeys(values or []))}
        groups = np.fromiter(map(codes.__getitem__, values or []), dtype=np.int64, count=count)
    found: dict[Milestone, dict[Any, tuple[float, ...]]] = {}
    for m in Milestone:
        picked = grouped_percentiles(groups, seconds[m])
        found[m] = {value: picked[code] for value, code in codes.items() if code in picked}
    return found


def _tally(
    row: Mapping[str, Any],
    group: Group,
    redispatches: Mapping[RedispatchReason, int],
    escalations: Mapping[int, int],
    percentiles: Percentiles,
) -> Tally:
    by, value = group
    milestones = {}
    for m in Milestone:
        p50, p90 = percentiles[m].get(value, (None, None))
        milestones[m] = MilestoneTally(
            on_time=row[f"{m.value}_on_time"],
            late=row[f"{m.value}_late"],
            missed=row[f"{m.value}_missed"],
            reached=row[f"{m.value}_reached"],
            p50_s=p50,
            p90_s=p90,
        )
    return Tally(
        key=group_key(by, value) if by is not None else None,
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
