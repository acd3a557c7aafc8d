"""The commander's warning when a shift ends below its patrol targets.

Once a minute, every shift that ended since the last look is judged from its officers'
stored tracks; one that left a grid unvisited or below target becomes a `patrol_shortfall`
alert on the screens, naming the team, the shift and each grid with its reason, and an
alert to acknowledge (dispatch.core.alerts). How far it
has looked is kept in Redis, so a restart neither repeats nor skips a shift.
"""

from __future__ import annotations

import logging
import threading

from dispatch.city import City
from dispatch.clock import Clock
from dispatch.core.alert_sources import shortfall_alert
from dispatch.core.feed import FeedType
from dispatch.evidence.archive import Archive
from dispatch.patrol_report import PatrolSetup, patrol_verdicts
from dispatch.store import UNAVAILABLE, Store

log = logging.getLogger(__name__)

_EVERY_S = 60.0
# A shift's last fixes may still be arriving (backfill) just after it ends.
_SETTLE_S = 120.0


class PatrolWatch:
    def __init__(
        self,
        store: Store,
        archive: Archive,
        city: City,
        setup: PatrolSetup,
        clock: Clock,
        zone: str = "Asia/Shanghai",
    ) -> None:
        self.store = store
        self.archive = archive
        self.city = city
        self.setup = setup
        self.clock = clock
        self.zone = zone  # the center's, in which alerts show their times

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.check_once()
            except UNAVAILABLE as exc:
                log.error("patrol watch: Redis is unreachable (%s)", exc)
            stop.wait(_EVERY_S / self.clock.rate)

    def check_once(self) -> list[str]:
        """Judge the shifts ended since the last look; returns the alerts' summaries."""
        incidents = self.store.incidents
        until = self.clock() - _SETTLE_S
        since = incidents.checked_until()
        if since is None:
            incidents.check_until(until)  # a new center judges shifts from now on
            return []
        ended = [s for s in self.city.roster.shifts if since <= s.end_at < until]
        summaries = []
        for verdict in patrol_verdicts(self.store, self.archive, self.city, self.setup, ended):
            if verdict.met:
                continue
            shift = verdict.shift
            incidents.announce(
                FeedType.PATROL_SHORTFALL,
                {
                    "team": shift.team,
                    "start_at": shift.start_at,
                    "end_at": shift.end_at,
                    "summary": verdict.summary(),
                    "grids": {v.grid: list(v.reasons) for v in verdict.below_target},
                },
            )
            below = len(verdict.below_target)
            alert = shortfall_alert(shift.team, shift.start_at, shift.end_at, below)
            # Raised once by id: a look repeated after a crash raises nothing new.
            self.store.alerts.raise_alert(alert, self.zone)
            summaries.append(verdict.summary())
        incidents.check_until(until)
        return summaries
