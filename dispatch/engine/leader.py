"""The engine's shell: leadership, reads and the one transaction per step. It decides nothing.

One engine leads at a time, by holding a lease in Redis that it renews every third of its
time to live; a standby polls and takes over within a lease period after the leader dies.
The leader rebuilds the command center from the saved incidents, then loops: read the inbox
(device messages and dispatcher commands) with a timeout no later than the next deadline, read
the positions stream, hand both to `EngineCore.step` (step.py) and write what it returns —
incidents, deadlines, screen events, audit records, orders for delivery, the inbox and
positions it settled — in one Redis transaction guarded by the lease. A crash before that
transaction redoes the step from the same entries and the same saved state, so no alert is
lost or raised twice; overdue deadlines fire as soon as a new leader starts.

No entry stops the engine, nor, left pending, every engine that takes over after it: a step
that raises is dropped, the command center rebuilt from the saved incidents and the step redone;
an entry whose processing raised twice is dead-lettered with the error and acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time

from dispatch.city import City
from dispatch.clock import Clock
from dispatch.core.feed import PositionRow
from dispatch.core.policy import PolicyBook
from dispatch.engine.step import EngineCore, EntryError, OfficerPositions
from dispatch.store import UNAVAILABLE, Store

log = logging.getLogger(__name__)

_MAX_BLOCK_S = 1.0
# While officers are on their way, positions are read at least this often.
_WATCHING_BLOCK_S = 0.2
# Positions stream entries read per step at most (each holds one ingest batch's fixes).
_POSITION_READS = 10
# How often the leader asks which ended incidents the history has released.
_RELEASE_CHECK_S = 5.0
# Pause after a step that raised for no entry's sake, before it is redone.
_FAILED_STEP_PAUSE_S = 1.0


class Engine:
    def __init__(
        self,
        store: Store,
        *,
        holder: str,
        policies: PolicyBook | None = None,
        lease_ms: int = 8_000,
        city: City | None = None,
        presence_limits: tuple[float, float] = (60.0, 300.0),
        clock: Clock | None = None,
        zone: str = "Asia/Shanghai",
    ) -> None:
        self.store = store
        self.zone = zone  # the center's, in which alerts show their times
        self.incidents = store.incidents
        self.positions = store.positions
        self.city = city
        self.presence_limits = presence_limits
        self.holder = holder
        self.policies = policies or PolicyBook()
        self.lease_ms = lease_ms
        self.clock = clock or Clock()
        self.leading = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Stand by until the lease is free, lead until it is lost or `stop` is set.

        Losing Redis costs the lead, never the process: the engine waits and stands again; so
        does any other failure outside a step (a step's own are handled where it runs).
        """
        while not stop.is_set():
            try:
                self._stand(stop)
            except Exception as exc:
                self.leading.clear()
                lost_redis = isinstance(exc, UNAVAILABLE)
                log.error(
                    "engine %s %s (%s); standing again in 1 s",
                    self.holder,
                    "lost Redis" if lost_redis else "failed",
                    exc,
                    exc_info=not lost_redis,
                )
                stop.wait(1.0)

    def _stand(self, stop: threading.Event) -> None:
        if not self.incidents.try_lead(self.holder, self.lease_ms):
            stop.wait(self.lease_ms / 10_000)
            return
        log.info("engine %s leads", self.holder)
        self.leading.set()
        try:
            self._lead(stop)
        finally:
            self.leading.clear()
        self.incidents.resign(self.holder)
        log.info("engine %s stands down", self.holder)

    def _core(self) -> EngineCore:
        saved = list(self.incidents.load_incidents().values())
        return EngineCore(
            self.policies,
            city=self.city,
            incidents=saved,
            silent_sensors=self.incidents.silent_sensors(),
        )

    def _lead(self, stop: threading.Event) -> None:
        core = self._core()
        # Entries whose step raised: how often, then (at the second time) the error.
        failures: dict[str, int] = {}
        poisoned: dict[str, str] = {}
        self.incidents.ensure_inbox_group()
        self.positions.ensure_group()
        unsettled = True  # first, what the last leader read and never wrote a step for
        renew_every_s = self.lease_ms / 3000
        renew_at = time.monotonic() + renew_every_s
        release_check_at = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= renew_at:
                if not self.incidents.renew_lead(self.holder, self.lease_ms):
                    log.error("engine %s lost its lease", self.holder)
                    return
                renew_at = time.monotonic() + renew_every_s
            wait_s = min(
                renew_at - time.monotonic(), _WATCHING_BLOCK_S if core.watching else _MAX_BLOCK_S
            )
            deadline = core.next_deadline()
            if deadline is not None:
                wait_s = min(wait_s, self.clock.real_seconds(deadline - self.clock()))
            entries = self.incidents.read_inbox(block_ms=int(max(1, wait_s * 1000)))
            settled, rows, unsettled = self._read_positions(unsettled)
            released: set[str] = set()
            if time.monotonic() >= release_check_at:
                release_check_at = time.monotonic() + _RELEASE_CHECK_S
                released = self.incidents.released()
            now = self.clock()
            try:
                step = core.step(
                    entries,
                    rows,
                    lambda now=now: self._officer_positions(now),
                    now,
                    released,
                    poisoned,
                    self.store.sensors.heard,
                )
            except UNAVAILABLE:
                raise
            except Exception as exc:
                # The step is void, and the core may hold half of it: start again from Redis.
                # Its entries and positions stay pending and are read again first.
                core, unsettled = self._core(), True
                if not isinstance(exc, EntryError):
                    log.exception("engine %s step raised; redoing it", self.holder)
                    stop.wait(_FAILED_STEP_PAUSE_S)
                    continue
                failures[exc.entry_id] = failures.get(exc.entry_id, 0) + 1
                if failures[exc.entry_id] >= 2:
                    poisoned[exc.entry_id] = str(exc)
                log.error("engine %s: %s (attempt %d)", self.holder, exc, failures[exc.entry_id])
                continue
            step.positions_done = settled
            for record in step.audit:
                record["engine"] = self.holder
            if step and not self.incidents.apply(step, self.holder, zone=self.zone):
                log.error(
                    "engine %s lost its lease before writing; a standby redoes the step",
                    self.holder,
                )
                return
            # Settled: what failed before went through on a retry, or is dead-lettered now.
            failures.clear()
            poisoned.clear()

    def _read_positions(self, unsettled: bool) -> tuple[list[str], list[PositionRow], bool]:
        """Positions to apply, the stream entries they came in, and whether entries the last
        leader left unsettled may remain (they are read once each, until a step settles them)."""
        settled: list[str] = []
        rows: list[PositionRow] = []
        for _ in range(_POSITION_READS):
            ids, page = self.positions.read(100, unsettled=unsettled)
            if unsettled and not ids:
                unsettled = False
                continue
            settled += ids
            rows += page
            if not ids or unsettled:
                break
        return settled, rows, unsettled

    def _officer_positions(self, now: float) -> OfficerPositions:
        stale_s, offline_s = self.presence_limits
        return self.store.officer_positions(
            now=now, stale_after_s=stale_s, offline_after_s=offline_s
        )
