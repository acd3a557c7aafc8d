"""What one engine step writes: incidents, deadlines, screen events, audit records, orders
for delivery, and which inbox entries and positions it settled. Plain data; the store writes it
in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatch.core.alerts import Alert


@dataclass(slots=True)
class EngineStep:
    """Everything one engine step writes, applied in one MULTI so that state, alerts and the
    inbox position move together: a crash either redoes the step or finds it done."""

    incidents: dict[str, bytes] = field(default_factory=dict)  # id -> encoded incident
    deadlines: dict[str, float | None] = field(default_factory=dict)
    events: list[dict[str, str]] = field(default_factory=list)
    audit: list[dict[str, str]] = field(default_factory=list)
    outbox: list[dict[str, str]] = field(default_factory=list)  # orders for device delivery
    inbox_done: list[str] = field(default_factory=list)
    # Inbox entries whose processing raised twice: the entry, its id and the error.
    deadletters: list[dict[str, str]] = field(default_factory=list)
    positions_done: list[str] = field(default_factory=list)
    # Ended incidents the history holds, dropped from Redis with this step.
    forgotten: list[str] = field(default_factory=list)
    # IoT sensors reported silent (sensor -> silent since), or forgotten again (None).
    silent_sensors: dict[str, float | None] = field(default_factory=dict)
    # Alerts raised; the store keeps each id once, so a step redone raises nothing twice.
    alerts: list[Alert] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.incidents
            or self.events
            or self.audit
            or self.inbox_done
            or self.positions_done
            or self.forgotten
            or self.silent_sensors
            or self.alerts
        )
