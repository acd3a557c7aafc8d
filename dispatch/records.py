"""One way to read incidents and their audit, wherever they are kept: Redis holds what is live
and what the history worker has not copied yet, PostgreSQL holds everything copied.

A closed incident leaves Redis some time after closing; reading it, its audit or its evidence
works the same before and after.
"""

from __future__ import annotations

from collections.abc import Callable

from dispatch.core.model import Incident
from dispatch.db.history import HistoryStore, IncidentFilter
from dispatch.store import IncidentStore, decode_incident


class IncidentRecords:
    def __init__(self, live: IncidentStore, history: HistoryStore) -> None:
        self.live = live
        self.history = history

    def incident(self, incident_id: str) -> Incident | None:
        found = self.live.incident(incident_id)
        if found is not None:
            return found
        raw = self.history.incident(incident_id)
        return None if raw is None else decode_incident(raw)

    def audit(self, incident_id: str) -> list[dict[str, str]]:
        """Copied records from PostgreSQL, then those still only in Redis (none repeated)."""
        copied = self.history.incident_audit(incident_id)
        seen = {r["id"] for r in copied}
        pending = [r for r in self.live.incident_audit(incident_id) if r["id"] not in seen]
        return [*copied, *pending]

    def search(
        self, query: IncidentFilter, where: Callable[[Incident], bool] = lambda _: True
    ) -> list[Incident]:
        """Incidents matching `query`, newest first, one page. Each is as fresh as it can be
        (Redis' state where it is still there); on the first page those not copied yet come
        too. `where` holds what the query says of places (a scope), for the Redis ones."""
        live = self.live.load_incidents()
        stored = [live.get(i.id, i) for i in map(decode_incident, self.history.incidents(query))]
        # Redis' state may have moved on from the copy (an order accepted a moment ago).
        stored = [i for i in stored if _matches(i, query) and where(i)]
        if query.offset > 0:
            return stored
        copied = self.history.known(list(live))
        fresh = [i for i in live.values() if i.id not in copied and _matches(i, query) and where(i)]
        return sorted([*fresh, *stored], key=lambda i: -i.reported_at)[: query.limit]


def _matches(incident: Incident, query: IncidentFilter) -> bool:
    officers = {*incident.past_officers, *(incident.order.officers if incident.order else ())}
    late = {m.milestone.value for m in incident.milestones if m.late_by_s > 0}
    return all(
        (
            not query.phase or incident.phase.value in query.phase,
            query.team is None or incident.team == query.team,
            query.officer is None or query.officer in officers,
            query.category is None or incident.category == query.category,
            query.source is None or incident.source.value == query.source,
            query.since is None or incident.reported_at >= query.since,
            query.until is None or incident.reported_at < query.until,
            query.breached is None or query.breached in late,
        )
    )
