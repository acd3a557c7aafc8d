"""Patrol targets and verdicts: did each grid get the patrol its target asks, shift by shift.

A shift is a team's duty interval from the roster; its grids are the leaves of the area tree
the team answers for. Each grid's coverage over the shift (`gis.coverage`, tracks of the
shift's officers only) is judged against the grid's target: a number of visits, a covered
share (of street length, or of cells where a grid has no streets), minutes on patrol. A grid
not visited at all is always named, with or without a target. Every shortfall carries a reason
a commander can read as it stands.

Targets are data, loaded from a YAML-shaped mapping:

    default: {visits: 2}
    grids:
      jh-0103: {visits: 3, street_share: 0.6}
      jh-0104: {patrol_s: 1800}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dispatch.core.roster import Roster, Shift, TeamId
from gis.areas import AreaId
from gis.coverage import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_RADIUS_M,
    DEFAULT_VISIT_GAP_S,
    Basis,
    Coverage,
    CoverageIndex,
    Track,
)


class PatrolError(ValueError):
    """Targets or grids that cannot be judged; the message names the grid and the key."""


@dataclass(frozen=True, slots=True)
class PatrolTarget:
    """What one grid needs per shift; None leaves that figure unjudged."""

    visits: int | None = None
    street_share: float | None = None
    patrol_s: float | None = None


_TARGET_KEYS = ("patrol_s", "street_share", "visits")
_TOP_KEYS = ("default", "grids")


@dataclass(frozen=True, slots=True)
class PatrolTargets:
    default: PatrolTarget | None = None
    grids: Mapping[AreaId, PatrolTarget] = field(default_factory=dict)

    def for_grid(self, grid: str) -> PatrolTarget | None:
        return self.grids.get(AreaId(grid), self.default)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, object], *, known_grids: Iterable[str]
    ) -> PatrolTargets:
        """Targets from parsed YAML; `known_grids` are the ids a grid entry may name."""
        if not isinstance(data, Mapping):
            raise PatrolError(f"patrol targets must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - set(_TOP_KEYS))
        if unknown:
            raise PatrolError(
                f"patrol targets: unknown key {unknown[0]!r} (expected {', '.join(_TOP_KEYS)})"
            )
        default = None if data.get("default") is None else _target("default", data["default"])
        entries = data.get("grids") or {}
        if not isinstance(entries, Mapping):
            raise PatrolError(
                f"patrol targets: grids must be a mapping, got {type(entries).__name__}"
            )
        known = set(known_grids)
        grids: dict[AreaId, PatrolTarget] = {}
        for grid, value in entries.items():
            if str(grid) not in known:
                raise PatrolError(f"patrol targets name grid {grid!r}, which is not a known grid")
            grids[AreaId(str(grid))] = _target(f"grid {grid}", value)
        return cls(default, grids)


def _target(where: str, value: object) -> PatrolTarget:
    if not isinstance(value, Mapping) or not value:
        raise PatrolError(
            f"patrol targets, {where}: expected a mapping of {', '.join(_TARGET_KEYS)}"
        )
    unknown = sorted(set(map(str, value)) - set(_TARGET_KEYS))
    if unknown:
        raise PatrolError(
            f"patrol targets, {where}: unknown target {unknown[0]!r} "
            f"(expected {', '.join(_TARGET_KEYS)})"
        )
    visits, share, seconds = value.get("visits"), value.get("street_share"), value.get("patrol_s")
    if visits is not None and (
        isinstance(visits, bool) or not isinstance(visits, int) or visits < 0
    ):
        raise PatrolError(
            f"patrol targets, {where}: visits must be a whole number ≥ 0, got {visits!r}"
        )
    if share is not None and not (_number(share) and 0 <= float(share) <= 1):
        raise PatrolError(
            f"patrol targets, {where}: street_share must be a number from 0 to 1, got {share!r}"
        )
    if seconds is not None and not (_number(seconds) and float(seconds) >= 0):
        raise PatrolError(f"patrol targets, {where}: patrol_s must be seconds ≥ 0, got {seconds!r}")
    return PatrolTarget(
        visits=visits,
        street_share=None if share is None else float(share),
        patrol_s=None if seconds is None else float(seconds),
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Standing(StrEnum):
    MET = "met"
    BELOW = "below_target"
    NOT_VISITED = "not_visited"
    NO_TARGET = "no_target"  # visited, nothing asked of it


@dataclass(frozen=True, slots=True)
class GridVerdict:
    grid: AreaId
    standing: Standing
    reasons: tuple[str, ...]  # one per shortfall, empty when met
    coverage: Coverage
    target: PatrolTarget | None


@dataclass(frozen=True, slots=True)
class ShiftVerdict:
    shift: Shift
    grids: tuple[GridVerdict, ...]  # sorted by grid id

    @property
    def not_visited(self) -> tuple[AreaId, ...]:
        return tuple(v.grid for v in self.grids if v.standing is Standing.NOT_VISITED)

    @property
    def below_target(self) -> tuple[GridVerdict, ...]:
        """Every grid short of its target, the unvisited ones included."""
        return tuple(v for v in self.grids if v.standing in (Standing.BELOW, Standing.NOT_VISITED))

    @property
    def met(self) -> bool:
        return not self.below_target

    def summary(self) -> str:
        """One line for the commander's warning when the shift ends below target."""
        short = self.below_target
        head = (
            f"shift of team {self.shift.team}: {len(short)} of {len(self.grids)} grids below target"
        )
        return (
            head
            if not short
            else head + ": " + "; ".join(f"{v.grid} ({', '.join(v.reasons)})" for v in short)
        )


def judge(coverage: Coverage, target: PatrolTarget | None) -> GridVerdict:
    """One grid's coverage over a shift against its target."""
    if not coverage.visited:
        reasons = ["not visited in the shift"]
        if target is not None and target.visits:
            reasons[0] += f" ({target.visits} visits required)"
        return GridVerdict(coverage.grid, Standing.NOT_VISITED, tuple(reasons), coverage, target)
    if target is None:
        return GridVerdict(coverage.grid, Standing.NO_TARGET, (), coverage, None)
    reasons = []
    if target.visits is not None and coverage.visits < target.visits:
        reasons.append(
            f"{coverage.visits} visit{'s' * (coverage.visits != 1)} of {target.visits} required"
        )
    if target.street_share is not None and coverage.covered_share < target.street_share:
        of_what = "street length" if coverage.basis is Basis.STREETS else "cell area (no streets)"
        reasons.append(
            f"{coverage.covered_share:.0%} of {of_what} within {coverage.radius_m:g} m of a track, "
            f"target {target.street_share:.0%}"
        )
    if target.patrol_s is not None and coverage.patrol_s < target.patrol_s:
        reasons.append(
            f"{coverage.patrol_s / 60:.0f} min on patrol inside, target {target.patrol_s / 60:.0f} min"
        )
    standing = Standing.BELOW if reasons else Standing.MET
    return GridVerdict(coverage.grid, standing, tuple(reasons), coverage, target)


def patrol_grids(roster: Roster, team: TeamId) -> list[AreaId]:
    """The leaf areas (grids) the team answers for, by ownership or through an ancestor."""
    parents = {a.parent for a in roster.areas.areas if a.parent is not None}
    return sorted(
        a.id
        for a in roster.areas.areas
        if a.id not in parents and (owner := roster.team_for_area(a.id)) and owner.id == team
    )


def judge_shift(
    shift: Shift,
    grids: Iterable[str],
    coverage: Mapping[AreaId, Coverage],
    targets: PatrolTargets,
) -> ShiftVerdict:
    verdicts = []
    for grid in sorted(set(grids)):
        if AreaId(grid) not in coverage:
            raise PatrolError(f"shift of team {shift.team}: no coverage measured for grid {grid}")
        verdicts.append(judge(coverage[AreaId(grid)], targets.for_grid(grid)))
    return ShiftVerdict(shift, tuple(verdicts))


def assess_shift(
    shift: Shift,
    roster: Roster,
    index: CoverageIndex,
    tracks: Iterable[Track],
    targets: PatrolTargets,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    visit_gap_s: float = DEFAULT_VISIT_GAP_S,
) -> ShiftVerdict:
    """Measure the team's grids over the shift from its officers' tracks, and judge them.

    Tracks of officers not on this shift are ignored: another team passing through does not
    patrol this team's grid. The caller reads the tracks for [start_at, end_at] plus
    `max_gap_s` either side (the archive and the live stream) and passes them in.
    """
    grids = patrol_grids(roster, shift.team)
    missing = sorted(set(grids) - set(index.grid_ids))
    if missing:
        raise PatrolError(f"team {shift.team} answers for grid {missing[0]}, which the index lacks")
    on_shift = [t for t in tracks if t.officer in shift.officers]
    measured = index.measure(
        on_shift,
        shift.start_at,
        shift.end_at,
        radius_m=radius_m,
        max_gap_s=max_gap_s,
        visit_gap_s=visit_gap_s,
    )
    return judge_shift(shift, grids, measured, targets)
