"""Incidents as the city produces them, and a dispatcher who answers them (pure).

Arrivals are a Poisson process per city with a daily profile (quiet at night, busy mid-morning
and late afternoon), spread over the areas and categories by weight and placed on a street of
the area, so an officer can always drive there. The simulated dispatcher acknowledges each
new incident after a human delay and assigns the center's first recommendation, answers a
re-dispatch the same way, and closes what officers resolved: enough for a city that runs on
its own; a trainee at the map can take over any incident at any time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from gis.coords import LonLat

# Share of reports per local hour 0–23 (relative weights).
_NIGHT_AND_MORNING = (0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6, 1.8, 1.7)
_AFTERNOON_AND_EVENING = (1.4, 1.2, 1.4, 1.6, 1.8, 1.9, 1.6, 1.3, 1.0, 0.8, 0.5, 0.3)
DAILY_PROFILE = (*_NIGHT_AND_MORNING, *_AFTERNOON_AND_EVENING)

# category: (title, priority, weight)
CATEGORIES: dict[str, tuple[str, int, float]] = {
    "street_vending": ("占道经营", 3, 5.0),
    "illegal_parking": ("违章停车", 3, 4.0),
    "construction_noise": ("夜间施工噪音", 3, 2.0),
    "exposed_garbage": ("暴露垃圾", 4, 3.0),
    "illegal_advertising": ("违规设置广告", 4, 1.5),
    "market_price": ("价格欺诈举报", 3, 1.0),
    "sewage_discharge": ("违法排污", 2, 0.8),
    "illegal_construction": ("违法建设", 2, 0.7),
}

SOURCES: dict[str, float] = {"12345": 5.0, "citizen": 2.5, "patrol": 1.0, "iot": 1.0, "8890": 0.5}


@dataclass(frozen=True, slots=True)
class Report:
    at: float
    category: str
    priority: int
    source: str
    title: str
    lon: float
    lat: float

    def body(self) -> dict[str, Any]:
        """The `POST /api/incidents` request for this report."""
        return {
            "category": self.category,
            "priority": self.priority,
            "source": self.source,
            "title": self.title,
            "lon": self.lon,
            "lat": self.lat,
        }


class IncidentArrivals:
    """Reports at `per_hour` on average, shaped by the local hour of day."""

    def __init__(
        self,
        places: dict[str, list[LonLat]],
        *,
        per_hour: float,
        seed: int,
        now: float,
        utc_offset_s: int = 8 * 3600,
    ) -> None:
        self.places = {area: points for area, points in places.items() if points}
        self.rng = random.Random(seed)
        self.utc_offset_s = utc_offset_s
        mean = sum(DAILY_PROFILE) / len(DAILY_PROFILE)
        self._peak_per_s = per_hour / 3600 * max(DAILY_PROFILE) / mean
        self._profile = [p / max(DAILY_PROFILE) for p in DAILY_PROFILE]
        self._next = now + self._gap()

    def _gap(self) -> float:
        return self.rng.expovariate(self._peak_per_s) if self._peak_per_s > 0 else float("inf")

    def due(self, now: float) -> list[Report]:
        reports = []
        while self._next <= now:
            at, self._next = self._next, self._next + self._gap()
            hour = int((at + self.utc_offset_s) % 86400 // 3600)
            if self.rng.random() < self._profile[hour]:  # thinning to the hour's rate
                reports.append(self._report(at))
        return reports

    def _report(self, at: float) -> Report:
        category = self.rng.choices(list(CATEGORIES), [w for *_, w in CATEGORIES.values()])[0]
        title, priority, _ = CATEGORIES[category]
        source = self.rng.choices(list(SOURCES), list(SOURCES.values()))[0]
        area = self.rng.choice(sorted(self.places))
        point = self.rng.choice(self.places[area])
        return Report(at, category, priority, source, title, point.lon, point.lat)


@dataclass(frozen=True)
class DispatcherPlan:
    """How quickly the simulated dispatcher acts, in simulated seconds."""

    dispatch_after_s: tuple[float, float] = (8.0, 40.0)
    redispatch_after_s: tuple[float, float] = (5.0, 20.0)
    close_after_s: float = 60.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DispatcherPlan:
        pairs = ("dispatch_after_s", "redispatch_after_s")
        return cls(**{k: tuple(v) if k in pairs else float(v) for k, v in data.items()})


@dataclass
class DispatcherBot:
    """Decides what the dispatcher does next; the driver carries it out over the API."""

    plan: DispatcherPlan
    seed: int = 0
    _rng: random.Random = field(init=False)
    _due: dict[tuple[str, str, int], float] = field(init=False, default_factory=dict)
    _done: set[tuple[str, str, int]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def actions(self, incidents: list[dict[str, Any]], now: float) -> list[tuple[str, str]]:
        """(incident id, action) pairs due now: `dispatch`, `redispatch` or `close`."""
        due = []
        for incident in incidents:
            action = _wanted(incident)
            if action is None:
                continue
            key = (incident["id"], action, len(incident.get("past_officers", ())))
            if key in self._done:
                continue
            if key not in self._due:
                self._due[key] = now + self._delay(action)
            if now >= self._due[key]:
                self._done.add(key)
                due.append((incident["id"], action))
        return due

    def _delay(self, action: str) -> float:
        if action == "close":
            return self.plan.close_after_s
        low, high = (
            self.plan.dispatch_after_s if action == "dispatch" else self.plan.redispatch_after_s
        )
        return self._rng.uniform(low, high)


def _wanted(incident: dict[str, Any]) -> str | None:
    phase = incident.get("phase")
    if phase == "reported":
        return "dispatch"
    if phase == "acknowledged" and not incident.get("order"):
        return "redispatch"
    if phase == "resolved":
        return "close"
    return None
