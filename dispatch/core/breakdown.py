"""Supervision figures of many incidents: the tallies of outcomes grouped by one dimension.

`aggregate(outcomes, by, where)` is the reference the SQL in `dispatch.db.statistics` must
equal figure for figure (a test compares them), so every figure is defined to be exact:
counts, whole seconds on scene, and percentiles in whole seconds by nearest rank (the value at
position ceil(p × n) of the sorted whole seconds). `grouped_percentiles` picks them for many
groups at once from arrays, as the SQL side does for a month's incidents: one numpy sort of
(group, second) pairs costs a fraction of PostgreSQL hashing every incident's seconds once per
dimension. Shares are not stored: `MilestoneTally.on_time_share` divides the counts wherever
they came from. Grouped by officer, an incident counts once for every officer it ordered, and
orders, refusals, unanswered orders and time on scene are that officer's own.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from dispatch.core.model import Milestone
from dispatch.core.supervision import Cause, OfficerWork, Outcome, RedispatchReason, Status

PERCENTILES = (0.5, 0.9)


class Dimension(StrEnum):
    AREA = "area"
    TEAM = "team"
    OFFICER = "officer"
    CATEGORY = "category"
    SOURCE = "source"
    PRIORITY = "priority"
    HOUR = "hour"


@dataclass(frozen=True, slots=True)
class StatsFilter:
    """Which incidents count: reported in [since, until), in `areas` (None: anywhere)."""

    since: float | None = None
    until: float | None = None
    areas: frozenset[str] | None = None
    team: str | None = None
    category: str | None = None
    source: str | None = None

    def admits(self, outcome: Outcome) -> bool:
        return (
            (self.since is None or outcome.reported_at >= self.since)
            and (self.until is None or outcome.reported_at < self.until)
            and (self.areas is None or outcome.area in self.areas)
            and (self.team is None or outcome.team == self.team)
            and (self.category is None or outcome.category == self.category)
            and (self.source is None or outcome.source == self.source)
        )


EVERYTHING = StatsFilter()


@dataclass(frozen=True, slots=True)
class MilestoneTally:
    on_time: int
    late: int
    missed: int
    reached: int
    p50_s: float | None  # of the seconds to reach it, among those that reached it
    p90_s: float | None

    @property
    def breached(self) -> int:
        return self.late + self.missed

    @property
    def due(self) -> int:
        """Incidents for which the milestone counted: on time or breached."""
        return self.on_time + self.breached

    @property
    def on_time_share(self) -> float | None:
        return None if self.due == 0 else self.on_time / self.due


@dataclass(frozen=True, slots=True)
class Tally:
    key: str | None  # the group's value of the dimension (None: none recorded; or all)
    incidents: int
    milestones: Mapping[Milestone, MilestoneTally]  # every milestone
    causes: Mapping[Cause, int]  # breached milestones by cause; every cause
    redispatches: Mapping[RedispatchReason, int]  # every reason
    escalations: Mapping[int, int]  # ladder level -> count; only levels raised
    orders: int
    orders_refused: int
    orders_unanswered: int
    on_scene_s: int

    @property
    def breaches(self) -> int:
        return sum(t.breached for t in self.milestones.values())

    @property
    def redispatch_count(self) -> int:
        return sum(self.redispatches.values())


def empty_tally(key: str | None = None) -> Tally:
    """The figures of no incident at all."""
    return _tally(key, [])


def key_of(outcome: Outcome, by: Dimension) -> str | None:
    """The group an outcome falls in (grouping by officer: see `aggregate`)."""
    if by is Dimension.OFFICER:
        raise ValueError("an outcome has one key per officer: group with aggregate()")
    return group_key(by, getattr(outcome, by.value))


def group_key(by: Dimension, value: str | int | None) -> str | None:
    """The key of a group from the dimension's recorded value: text, hours with two digits."""
    if value is None:
        return None
    if by is Dimension.HOUR:
        return f"{value:02d}"
    return str(value)


def aggregate(
    outcomes: Iterable[Outcome], by: Dimension | None, where: StatsFilter = EVERYTHING
) -> list[Tally]:
    """One tally per group (None: one for all), in the order of `ordered`."""
    groups: dict[str | None, list[tuple[Outcome, OfficerWork | None]]] = defaultdict(list)
    for outcome in outcomes:
        if not where.admits(outcome):
            continue
        if by is Dimension.OFFICER:
            for work in outcome.officers:
                groups[work.officer].append((outcome, work))
        else:
            groups[None if by is None else key_of(outcome, by)].append((outcome, None))
    return ordered([_tally(key, rows) for key, rows in groups.items()])


def ordered(tallies: Iterable[Tally]) -> list[Tally]:
    """By key, the group without one last: the same order however they were computed."""
    return sorted(tallies, key=lambda t: (t.key is None, t.key or ""))


def nearest_rank(count: int, fraction: float) -> int:
    """The position (from 1) of the `fraction` percentile among `count` sorted values."""
    return max(math.ceil(fraction * count), 1)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of the values' whole seconds."""
    if not values:
        return None
    return float(sorted(math.floor(v) for v in values)[nearest_rank(len(values), fraction) - 1])


def grouped_percentiles(
    groups: NDArray[np.int64], seconds: NDArray[np.float64]
) -> dict[int, tuple[float, ...]]:
    """`percentile` at each of PERCENTILES of every group's values, for many values at once.

    `groups[i]` (0 or more) is the group of `seconds[i]`; NaN seconds (not reached) count in
    no group. Groups without a value are left out."""
    reached = ~np.isnan(seconds)
    members = groups[reached]
    whole = np.floor(seconds[reached]).astype(np.int64)
    if whole.size == 0:
        return {}
    low = int(whole.min())
    # One sort of (group, seconds) packed in one integer: each group's seconds in a run,
    # ascending. Seconds from the earliest span far less than the 32 bits they get.
    packed = np.sort((members << 32) | (whole - low))
    counts = np.bincount(members)
    ends = np.cumsum(counts)
    found = {}
    for group in np.flatnonzero(counts):
        n, start = int(counts[group]), int(ends[group] - counts[group])
        found[int(group)] = tuple(
            float((int(packed[start + nearest_rank(n, f) - 1]) & 0xFFFFFFFF) + low)
            for f in PERCENTILES
        )
    return found


def _tally(key: str | None, rows: list[tuple[Outcome, OfficerWork | None]]) -> Tally:
    milestones = {}
    for milestone in Milestone:
        outcomes = [o.milestone(milestone) for o, _ in rows]
        statuses = Counter(m.status for m in outcomes)
        seconds = [m.seconds for m in outcomes if m.seconds is not None]
        milestones[milestone] = MilestoneTally(
            on_time=statuses[Status.ON_TIME],
            late=statuses[Status.LATE],
            missed=statuses[Status.MISSED],
            reached=len(seconds),
            p50_s=percentile(seconds, PERCENTILES[0]),
            p90_s=percentile(seconds, PERCENTILES[1]),
        )
    causes = Counter(m.cause for o, _ in rows for m in o.milestones if m.cause is not None)
    redispatches: Counter[RedispatchReason] = Counter()
    escalations: Counter[int] = Counter()
    for outcome, _ in rows:
        redispatches.update(outcome.redispatches)
        escalations.update(outcome.escalations)
    work = [w for o, own in rows for w in ((own,) if own is not None else o.officers)]
    counts = [_order_counts(outcome, own) for outcome, own in rows]
    return Tally(
        key=key,
        incidents=len(rows),
        milestones=milestones,
        causes={c: causes[c] for c in Cause},
        redispatches={r: redispatches[r] for r in RedispatchReason},
        escalations={level: n for level, n in sorted(escalations.items()) if n},
        orders=sum(c[0] for c in counts),
        orders_refused=sum(c[1] for c in counts),
        orders_unanswered=sum(c[2] for c in counts),
        on_scene_s=sum(w.on_scene_s for w in work),
    )


def _order_counts(outcome: Outcome, own: OfficerWork | None) -> tuple[int, int, int]:
    """Orders, refused, unanswered: the incident's, or the officer's own in an officer group."""
    if own is not None:
        return own.orders, own.refused, own.unanswered
    return outcome.orders, outcome.orders_refused, outcome.orders_unanswered
