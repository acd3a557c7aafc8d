"""The command center's core: every open incident's timeline and one queue of deadlines.

`handle(event, now)` applies an input; `expire(now)` fires whatever came due; `next_deadline()`
tells the engine when to call `expire` next (aioquic's get_timer/handle_timer pattern). The
deadline queue is a heap with lazy invalidation: an incident is pushed again whenever it
changes, and entries that no longer match its next deadline are skipped.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from dispatch.core import events as ev
from dispatch.core import timeline
from dispatch.core.effects import Effect
from dispatch.core.model import Incident, IncidentId
from dispatch.core.policy import PolicyBook, TimelinePolicy


class UnknownIncident(timeline.TimelineError):
    def __init__(self, incident: IncidentId) -> None:
        super().__init__(f"no incident {incident}")


class DuplicateIncident(timeline.TimelineError):
    def __init__(self, incident: IncidentId) -> None:
        super().__init__(f"incident {incident} was already reported")


class CommandCenter:
    def __init__(self, policies: PolicyBook | None = None) -> None:
        self.policies = policies or PolicyBook()
        self.incidents: dict[IncidentId, Incident] = {}
        self._deadlines: list[tuple[float, IncidentId]] = []

    def policy(self, incident: Incident) -> TimelinePolicy:
        return self.policies.for_incident(incident.category, incident.priority)

    def incident_or_raise(self, incident_id: IncidentId) -> Incident:
        try:
            return self.incidents[incident_id]
        except KeyError:
            raise UnknownIncident(incident_id) from None

    def handle(self, event: ev.Event, now: float) -> list[Effect]:
        """Apply an event; raises TimelineError (nothing changed) when it does not apply."""
        if isinstance(event, ev.IncidentReported):
            if event.incident in self.incidents:
                raise DuplicateIncident(event.incident)
            incident, effects = timeline.report(event, now)
        else:
            current = self.incident_or_raise(event.incident)
            incident, effects = timeline.handle(current, event, now, self.policy(current))
        self._store(incident)
        return effects

    def expire(self, now: float) -> list[Effect]:
        """Fire every deadline at or before `now`."""
        effects: list[Effect] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            at, incident_id = heapq.heappop(self._deadlines)
            incident = self.incidents.get(incident_id)
            if incident is None or timeline.next_deadline(incident, self.policy(incident)) != at:
                continue
            incident, fired = timeline.expire(incident, now, self.policy(incident))
            self._store(incident)
            effects += fired
        return effects

    def forget(self, incident_ids: Iterable[str]) -> list[IncidentId]:
        """Drop ended incidents (the history keeps them); returns those dropped. An incident
        still running is never dropped, whatever the caller says."""
        dropped = []
        for incident_id in incident_ids:
            incident = self.incidents.get(IncidentId(incident_id))
            if incident is not None and incident.phase.terminal:
                del self.incidents[incident.id]
                dropped.append(incident.id)
        return dropped

    def restore(self, incident: Incident) -> None:
        """Take back an incident saved earlier (an engine taking over after a restart)."""
        self._store(incident)

    def deadline_of(self, incident: Incident) -> float | None:
        return timeline.next_deadline(incident, self.policy(incident))

    def next_deadline(self) -> float | None:
        while self._deadlines:
            at, incident_id = self._deadlines[0]
            incident = self.incidents.get(incident_id)
            if (
                incident is not None
                and timeline.next_deadline(incident, self.policy(incident)) == at
            ):
                return at
            heapq.heappop(self._deadlines)
        return None

    def _store(self, incident: Incident) -> None:
        self.incidents[incident.id] = incident
        deadline = timeline.next_deadline(incident, self.policy(incident))
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, incident.id))
