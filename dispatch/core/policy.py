"""Timeline policy as data: deadlines, pre-breach warnings and the escalation ladder.

Defaults are the 1/3/15 rule counted from the report time. A policy book picks the policy for
an incident's category and priority, falling back to the category, then to the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dispatch.core.model import Milestone


class EscalationAction(StrEnum):
    NOTIFY_SQUAD_LEADER = "notify_squad_leader"
    NOTIFY_DUTY_COMMANDER = "notify_duty_commander"
    REASSIGN = "reassign"


@dataclass(frozen=True, slots=True)
class EscalationStep:
    after_breach_s: float
    action: EscalationAction


DEFAULT_LADDER = (
    EscalationStep(0.0, EscalationAction.NOTIFY_SQUAD_LEADER),
    EscalationStep(60.0, EscalationAction.NOTIFY_DUTY_COMMANDER),
    EscalationStep(120.0, EscalationAction.REASSIGN),
)


@dataclass(frozen=True, slots=True)
class TimelinePolicy:
    """Seconds from the report by which each milestone is due (None: recorded, not timed)."""

    deadlines_s: Mapping[Milestone, float | None] = field(
        default_factory=lambda: {
            Milestone.RESPOND: 60.0,
            Milestone.TURN_OUT: 180.0,
            Milestone.ARRIVE: None,
            Milestone.HANDLE: 900.0,
        }
    )
    warn_at_fraction: float = 0.8
    ladder: tuple[EscalationStep, ...] = DEFAULT_LADDER
    # An issued order not accepted within this many seconds goes to the next officer.
    accept_within_s: float = 45.0
    auto_dispatch: bool = False
    # The incident's fence: entering it is arrival (server-side and on OwnTracks phones).
    arrive_radius_m: float = 50.0
    # 双人执法: orders go to two officers; one alone on scene this long raises an alert.
    two_officers: bool = False
    partner_within_s: float = 120.0

    def due_at(self, milestone: Milestone, reported_at: float) -> float | None:
        limit = self.deadlines_s.get(milestone)
        return None if limit is None else reported_at + limit

    def warn_at(self, milestone: Milestone, reported_at: float) -> float | None:
        limit = self.deadlines_s.get(milestone)
        return None if limit is None else reported_at + limit * self.warn_at_fraction


class PolicyError(ValueError):
    """A policy file entry that cannot be used; the message names the entry and the key."""


@dataclass(frozen=True, slots=True)
class PolicyBook:
    default: TimelinePolicy = TimelinePolicy()
    by_category: Mapping[str, TimelinePolicy] = field(default_factory=dict)
    by_category_priority: Mapping[tuple[str, int], TimelinePolicy] = field(default_factory=dict)

    def for_incident(self, category: str, priority: int) -> TimelinePolicy:
        return self.by_category_priority.get(
            (category, priority), self.by_category.get(category, self.default)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyBook:
        """Build from parsed YAML/JSON:

            default: {respond_s: 60, turn_out_s: 180, arrive_s: null, handle_s: 900,
                      warn_at: 0.8, accept_within_s: 45, auto_dispatch: false,
                      ladder: [[0, notify_squad_leader], [60, notify_duty_commander]]}
            categories:
              fire_hazard: {respond_s: 30}
              fire_hazard/1: {turn_out_s: 120}

        Entries override the default key by key.
        """
        default = _policy(TimelinePolicy(), data.get("default") or {}, "default")
        by_category: dict[str, TimelinePolicy] = {}
        by_priority: dict[tuple[str, int], TimelinePolicy] = {}
        for key, entry in (data.get("categories") or {}).items():
            category, _, priority = str(key).partition("/")
            if priority:
                base = by_category.get(category, default)
                by_priority[(category, int(priority))] = _policy(base, entry, str(key))
            else:
                by_category[category] = _policy(default, entry, str(key))
        return cls(default, by_category, by_priority)


_DEADLINE_KEYS = {f"{m.value}_s": m for m in Milestone}


def _policy(base: TimelinePolicy, entry: Mapping[str, Any], name: str) -> TimelinePolicy:
    unknown = set(entry) - {
        *_DEADLINE_KEYS,
        "warn_at",
        "ladder",
        "accept_within_s",
        "auto_dispatch",
        "arrive_radius_m",
        "two_officers",
        "partner_within_s",
    }
    if unknown:
        raise PolicyError(f"policy {name}: unknown keys {sorted(unknown)}")
    deadlines = dict(base.deadlines_s)
    for key, milestone in _DEADLINE_KEYS.items():
        if key in entry:
            deadlines[milestone] = None if entry[key] is None else float(entry[key])
    policy = replace(base, deadlines_s=deadlines)
    if "warn_at" in entry:
        fraction = float(entry["warn_at"])
        if not 0 < fraction < 1:
            raise PolicyError(f"policy {name}: warn_at must be between 0 and 1, got {fraction}")
        policy = replace(policy, warn_at_fraction=fraction)
    if "ladder" in entry:
        try:
            ladder = tuple(
                EscalationStep(float(s), EscalationAction(a)) for s, a in entry["ladder"]
            )
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"policy {name}: ladder steps are [seconds, action]: {exc}") from None
        policy = replace(policy, ladder=ladder)
    if "accept_within_s" in entry:
        policy = replace(policy, accept_within_s=float(entry["accept_within_s"]))
    if "auto_dispatch" in entry:
        policy = replace(policy, auto_dispatch=bool(entry["auto_dispatch"]))
    if "arrive_radius_m" in entry:
        policy = replace(policy, arrive_radius_m=float(entry["arrive_radius_m"]))
    if "two_officers" in entry:
        policy = replace(policy, two_officers=bool(entry["two_officers"]))
    if "partner_within_s" in entry:
        policy = replace(policy, partner_within_s=float(entry["partner_within_s"]))
    return policy
