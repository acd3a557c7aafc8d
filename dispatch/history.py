"""The history worker: copies what the engine recorded in Redis into PostgreSQL, exactly once,
then lets Redis and the engine forget ended incidents.

Each pass reads the audit records after the cursor, the newest snapshot of every incident they
name, and commits both with the new cursor in one PostgreSQL transaction; only then is the
copied part of the audit stream trimmed from Redis. A crash anywhere repeats at most the last
pass, and the copy is keyed by stream position, so nothing is lost or stored twice. Ended
incidents quiet for `retention_s` are released: the engine drops them from its memory and from
Redis in its next step, and their reads come from PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from dispatch.clock import Clock
from dispatch.db import DatabaseUnavailable
from dispatch.db.history import HistoryStore, Snapshot, position
from dispatch.store import UNAVAILABLE, Store, decode_incident
from gis.areas import AreaIndex

log = logging.getLogger(__name__)

_IDLE_S = 0.5
_RELEASE_EVERY_S = 5.0


class HistoryWorker:
    def __init__(
        self,
        store: Store,
        history: HistoryStore,
        *,
        areas: AreaIndex | None = None,
        retention_s: float = 600.0,
        clock: Clock | None = None,
        batch: int = 2000,
    ) -> None:
        self.store = store
        self.history = history
        self.areas = areas
        self.retention_s = retention_s
        self.clock = clock or Clock()
        self.batch = batch
        self._cursor: str | None = None
        self._cursor_known = False

    def run(self, stop: threading.Event) -> None:
        """Copy and release until `stop`; an unreachable Redis or PostgreSQL is waited out."""
        release_at = 0.0
        while not stop.is_set():
            try:
                copied = self.copy_once()
                if self.clock() >= release_at:
                    release_at = self.clock() + _RELEASE_EVERY_S * self.clock.rate
                    self.release_once()
            except (*UNAVAILABLE, *DatabaseUnavailable) as exc:
                log.error("history: a store is unreachable (%s); retrying in 1 s", exc)
                self._cursor_known = False  # read it again: the last commit may not have landed
                stop.wait(1.0)
                continue
            if copied < self.batch:
                stop.wait(_IDLE_S)

    def copy_once(self) -> int:
        """One pass: copy up to `batch` audit records; returns how many were read."""
        if not self._cursor_known:
            self._cursor = self.history.cursor()
            self._cursor_known = True
        records = self.store.incidents.audit_after(self._cursor, self.batch)
        if not records:
            return 0
        self.history.copy(records, self._snapshots(records))
        last = records[-1][0]
        self.store.incidents.trim_audit(last)
        self._cursor = last
        return len(records)

    def _snapshots(self, records: Sequence[tuple[str, dict[str, str]]]) -> list[Snapshot]:
        newest: dict[str, tuple[str, float]] = {}
        for stream_id, fields in records:
            if fields.get("incident"):
                newest[fields["incident"]] = (stream_id, float(fields.get("at", 0.0)))
        saved = self.store.incidents.snapshots(list(newest))
        snapshots = []
        for incident_id, raw in saved.items():
            incident = decode_incident(raw)
            area = self.areas.area_for(incident.location) if self.areas is not None else None
            stream_id, at = newest[incident_id]
            snapshots.append(
                Snapshot(incident, raw, area.id if area else None, position(stream_id), at)
            )
        return snapshots

    def release_once(self) -> list[str]:
        """Release ended incidents quiet for the retention time; returns their ids."""
        ids = self.history.evictable(before=self.clock() - self.retention_s)
        if not ids:
            return []
        present = self.store.incidents.snapshots(ids)
        self.history.mark_evicted([i for i in ids if i not in present])
        released = [i for i in ids if i in present]
        self.store.incidents.release(released)
        return released
