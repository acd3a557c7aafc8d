"""Timeline policy as data: deadlines, pre-breach warnings and the escalation ladder.

Defaults are the 1/3/15 rule counted from the report time. A policy book picks the policy for
an incident's category and priority, falling back to the category, then to the default. It is
also the catalogue of categories the center takes reports of: the common 综合行政执法 cases,
and every category the policy file names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from dispatch.core.model import Milestone
from dispatch.core.sensors import SensorCatalogue, SensorCatalogueError


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


# Category key → the label screens and reports show. `sos` is what a device's alarm opens.
CATEGORIES: Mapping[str, str] = {
    "street_vending": "占道经营",
    "illegal_parking": "违章停车",
    "construction_noise": "夜间施工噪音",
    "exposed_garbage": "暴露垃圾",
    "illegal_advertising": "违规设置广告",
    "market_price": "价格欺诈举报",
    "sewage_discharge": "违法排污",
    "illegal_construction": "违法建设",
    "sos": "执法人员求救",
    # What IoT sensors' alarms open (dispatch.core.sensors).
    "fire_hazard": "消防隐患",
    "cooking_fume": "餐饮油烟",
    "grease_trap": "隔油池满溢",
    "waterlogging": "道路积水",
}

# The same categories in English, for the screens' English toggle.
CATEGORIES_EN: Mapping[str, str] = {
    "street_vending": "Street vending",
    "illegal_parking": "Illegal parking",
    "construction_noise": "Night construction noise",
    "exposed_garbage": "Exposed garbage",
    "illegal_advertising": "Illegal advertising",
    "market_price": "Price fraud",
    "sewage_discharge": "Illegal sewage discharge",
    "illegal_construction": "Illegal construction",
    "sos": "Officer SOS",
    "fire_hazard": "Fire hazard",
    "cooking_fume": "Cooking fumes",
    "grease_trap": "Grease trap overflow",
    "waterlogging": "Road waterlogging",
}
# The priority a report of the category starts with (1 most urgent) when it names none:
# a threat to people first, then harm that spreads while it waits, then the rest.
DEFAULT_PRIORITY = 3
CATEGORY_PRIORITIES: Mapping[str, int] = {
    "sos": 1,
    "fire_hazard": 1,
    "sewage_discharge": 2,
    "waterlogging": 2,
    "grease_trap": 2,
}

# Policies the center ships with, beneath the policy file's (`PolicyBook.from_dict`, which
# the center reads its policies through, file or none): a smoke alarm cannot wait for a
# dispatcher to notice it. A file entry for one of them changes it key by key.
BUILT_IN_POLICIES: Mapping[str, Mapping[str, Any]] = {"fire_hazard": {"auto_dispatch": True}}


class UnknownCategory(ValueError):  # noqa: N818 - reads as what was asked for
    """A report of a category the catalogue does not hold; the message lists those it does."""

    def __init__(self, category: str, known: Mapping[str, str]) -> None:
        listed = ", ".join(f"{key} ({label})" for key, label in sorted(known.items()))
        super().__init__(f"unknown category {category!r}; known categories: {listed}")
        self.known = dict(known)


def _built_in(default: TimelinePolicy) -> dict[str, TimelinePolicy]:
    return {key: _policy(default, entry, key) for key, entry in BUILT_IN_POLICIES.items()}


@dataclass(frozen=True, slots=True)
class PolicyBook:
    default: TimelinePolicy = TimelinePolicy()
    by_category: Mapping[str, TimelinePolicy] = field(default_factory=dict)
    by_category_priority: Mapping[tuple[str, int], TimelinePolicy] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=lambda: dict(CATEGORIES))
    # Other systems' names for a category (a hotline's 事项分类) → the catalogue's key.
    aliases: Mapping[str, str] = field(default_factory=dict)
    # The IoT sensor types: what their alarms open, thresholds, heartbeats.
    sensors: SensorCatalogue = field(default_factory=SensorCatalogue)
    english: Mapping[str, str] = field(default_factory=lambda: dict(CATEGORIES_EN))
    priorities: Mapping[str, int] = field(default_factory=lambda: dict(CATEGORY_PRIORITIES))

    def english_name(self, category: str) -> str:
        """The category's English name; its key where none is given."""
        return self.english.get(category, category.replace("_", " "))

    def priority_of(self, category: str) -> int:
        """The priority a report of `category` starts with."""
        return self.priorities.get(category, DEFAULT_PRIORITY)

    def for_incident(self, category: str, priority: int) -> TimelinePolicy:
        return self.by_category_priority.get(
            (category, priority), self.by_category.get(category, self.default)
        )

    def category_or_raise(self, category: str) -> str:
        """`category` if the catalogue holds it; UnknownCategory (listing them all) if not.
        An unknown category would silently run on the default policy."""
        if category not in self.categories:
            raise UnknownCategory(category, self.categories)
        return category

    def category_named(self, name: str) -> str:
        """The catalogue's key for `name`: a key, a label (占道经营) or an alias the policy
        file gives; UnknownCategory (listing the catalogue) for any other."""
        if name in self.categories:
            return name
        labels = {label: key for key, label in self.categories.items()}
        found = self.aliases.get(name) or labels.get(name)
        if found is None:
            raise UnknownCategory(name, self.categories)
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyBook:
        """Build from parsed YAML/JSON:

            default: {respond_s: 60, turn_out_s: 180, arrive_s: null, handle_s: 900,
                      warn_at: 0.8, accept_within_s: 45, auto_dispatch: false,
                      ladder: [[0, notify_squad_leader], [60, notify_duty_commander]]}
            categories:
              fire_hazard: {label: 消防隐患, en: Fire hazard, priority: 1, respond_s: 30}
              fire_hazard/1: {turn_out_s: 120}
            sensors:
              smoke: {threshold: 0.15}

        Entries override the default key by key (and a built-in category's own policy,
        `BUILT_IN_POLICIES`, beneath them). A category named here joins the catalogue,
        with its `label` (or its key, if it has none and is not in the catalogue already), its
        English name (`en`) and the priority its reports start with (`priority`), and
        the `aliases` other systems call it by (`aliases: [消防安全隐患]`), each naming one
        category only. `sensors` changes and adds IoT sensor types (dispatch.core.sensors),
        each opening a category of the catalogue.
        """
        default = _policy(TimelinePolicy(), data.get("default") or {}, "default")
        by_category: dict[str, TimelinePolicy] = _built_in(default)
        by_priority: dict[tuple[str, int], TimelinePolicy] = {}
        categories = dict(CATEGORIES)
        english, priorities = dict(CATEGORIES_EN), dict(CATEGORY_PRIORITIES)
        aliases: dict[str, str] = {}
        for key, given in (data.get("categories") or {}).items():
            category, _, priority = str(key).partition("/")
            entry = dict(given or {})
            label = entry.pop("label", None)
            if "en" in entry:
                english[category] = str(entry.pop("en"))
            if "priority" in entry:
                priorities[category] = _priority(entry.pop("priority"), str(key))
            for alias in entry.pop("aliases", None) or ():
                known = aliases.setdefault(str(alias), category)
                if known != category:
                    raise PolicyError(
                        f"policy {key}: alias {alias!r} already names category {known!r}"
                    )
            categories[category] = str(label) if label else categories.get(category, category)
            if priority:
                base = by_category.get(category, default)
                by_priority[(category, int(priority))] = _policy(base, entry, str(key))
            else:
                built_in = BUILT_IN_POLICIES.get(category, {})
                by_category[category] = _policy(default, {**built_in, **entry}, str(key))
        try:
            sensors = SensorCatalogue.from_dict(data.get("sensors") or {}, categories)
        except SensorCatalogueError as exc:
            raise PolicyError(f"policy {exc}") from None
        return cls(
            default, by_category, by_priority, categories, aliases, sensors, english, priorities
        )


def _priority(value: Any, name: str) -> int:
    priority = value if isinstance(value, int) and not isinstance(value, bool) else 0
    if not 1 <= priority <= 4:
        raise PolicyError(f"policy {name}: priority must be 1 (most urgent) to 4, got {value!r}")
    return priority


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
