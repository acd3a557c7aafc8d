"""Outputs of the command center, in the imperative: what the engine must now do.

The core never performs them; the engine turns each into Redis writes, MQTT orders or screen
updates, and does so idempotently (each effect names its incident and milestone or order).
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.core.model import Incident, IncidentId, Milestone, MilestoneRecord, Order, OrderId
from dispatch.core.policy import EscalationAction
from dispatch.core.roster import OfficerId


@dataclass(frozen=True, slots=True)
class RecordMilestone:
    incident: IncidentId
    record: MilestoneRecord


@dataclass(frozen=True, slots=True)
class Warn:
    """A milestone is about to be missed."""

    incident: IncidentId
    milestone: Milestone
    due_at: float


@dataclass(frozen=True, slots=True)
class Escalate:
    """A milestone was missed; `level` 1 is the breach itself, higher levels climb the ladder."""

    incident: IncidentId
    milestone: Milestone
    level: int
    action: EscalationAction
    due_at: float


@dataclass(frozen=True, slots=True)
class PartnerMissing:
    """双人执法: an officer has been alone on scene longer than the policy allows."""

    incident: IncidentId
    on_scene: tuple[OfficerId, ...]
    missing: tuple[OfficerId, ...]


@dataclass(frozen=True, slots=True)
class Redispatch:
    """Recommend and order the next officer, never one already tried."""

    incident: IncidentId
    reason: str
    exclude: tuple[OfficerId, ...]


@dataclass(frozen=True, slots=True)
class SendOrder:
    """Deliver an order to its officers' terminals and phones."""

    incident: Incident
    order: Order


@dataclass(frozen=True, slots=True)
class WithdrawOrder:
    incident: IncidentId
    order: OrderId
    officers: tuple[OfficerId, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Publish:
    """The incident changed: screens and the audit trail get its new state."""

    incident: Incident


Effect = (
    RecordMilestone
    | Warn
    | Escalate
    | PartnerMissing
    | Redispatch
    | SendOrder
    | WithdrawOrder
    | Publish
)
