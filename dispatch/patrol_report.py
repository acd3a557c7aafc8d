"""Patrol coverage (巡查覆盖率) of each shift, from the stored tracks: the I/O around
`dispatch.core.patrol` (which judges) and `gis.coverage` (which measures).

A shift's tracks are its officers' fixes over the shift and the largest credited gap either
side, from the sealed archive and the live stream alike; backfilled fixes count (they are where
the officer was), fixes of officers not on the shift do not.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dispatch.city import City
from dispatch.core.access import AreaScope
from dispatch.core.patrol import DEFAULT_MAX_GAP_S, PatrolTargets, ShiftVerdict, assess_shift
from dispatch.core.roster import Shift
from dispatch.core.track import DeviceKey
from dispatch.evidence.archive import Archive, full_track
from dispatch.store import Store
from gis.coverage import CoverageIndex, Track, street_lines
from gis.routing import StreetGraph


@dataclass(frozen=True)
class PatrolSetup:
    """What judging patrols needs, built once per process (the index takes a second)."""

    index: CoverageIndex
    targets: PatrolTargets


@functools.cache
def patrol_setup(city: City, targets_file: Path | None) -> PatrolSetup:
    streets = street_lines(city.travel) if isinstance(city.travel, StreetGraph) else ()
    # The tree's leaves are the grids patrolled.
    grids = [a for a in city.areas.areas if not city.areas.children(a.id)]
    index = CoverageIndex(grids, streets)
    data: dict[str, Any] = (
        yaml.safe_load(targets_file.read_text(encoding="utf-8")) or {} if targets_file else {}
    )
    return PatrolSetup(index, PatrolTargets.from_mapping(data, known_grids=index.grid_ids))


def shifts_between(city: City, since: float, until: float, scope: AreaScope) -> list[Shift]:
    """Shifts that ended in [since, until), of teams in scope, in order."""
    return sorted(
        (
            s
            for s in city.roster.shifts
            if since <= s.end_at < until and scope.covers_team(city.roster.teams[s.team])
        ),
        key=lambda s: (s.end_at, s.team),
    )


def shift_tracks(store: Store, archive: Archive, shift: Shift) -> list[Track]:
    """One track per officer of the shift: the fixes of all their devices, in time order."""
    fixes: dict[str, list[tuple[float, float, float]]] = {}
    for dev in store.tracks.device_keys():
        officer = dev.split("/", 1)[0]
        if officer not in shift.officers:
            continue
        window = (shift.start_at - DEFAULT_MAX_GAP_S, shift.end_at + DEFAULT_MAX_GAP_S)
        for record in full_track(store, archive, DeviceKey(dev), *window):
            fix = record.fix
            fixes.setdefault(officer, []).append((fix["lon"], fix["lat"], fix["fix_at"]))
    return [
        Track.of(officer, *np.asarray(rows, dtype=np.float64).T) for officer, rows in fixes.items()
    ]


def patrol_verdicts(
    store: Store, archive: Archive, city: City, setup: PatrolSetup, shifts: Iterable[Shift]
) -> list[ShiftVerdict]:
    return [
        assess_shift(
            shift, city.roster, setup.index, shift_tracks(store, archive, shift), setup.targets
        )
        for shift in shifts
    ]
