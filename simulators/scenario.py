"""Scenario files: a city, its officers, an incident script, faults and the expected outcome.

    name: 无人接单 — nobody accepts, the order goes round and the turn-out breaches
    seed: 3
    clock_rate: 30            # simulated seconds per real second
    duration_s: 420           # simulated seconds
    city: demo                # or a city folder (see simulators/cityfiles.py)
    officers_per_team: 1      # demo city only
    policy: {default: {respond_s: 60, turn_out_s: 180, handle_s: 900}}
    behaviour: {reject_probability: 1.0}
    dispatcher: {dispatch_after_s: [5, 10]}   # omit for nobody at the console
    arrivals_per_hour: 0
    incidents:
      - {at: 20, category: street_vending, near: officer001, distance_m: 600}
    faults:
      - {kind: jump, officer: officer002, from: 0, to: 300, amount: 40000, probability: 0.2}
    expect:
      - {incident: 1, breached: [turn_out]}
      - {incident: 1, on_time: [respond]}
      - {incident: 1, phase: acknowledged}
      - {incident: 1, arrived_via: gps}
      - {incident: 1, redispatched: true}
      - {rejected: implausible_jump, at_least: 1}
      - {count: backfill, at_least: 1}       # any ingest counter
      - {no_fix_lost: true}

Loading checks every key, so a typo fails at once with the entry's place; `check` compares
what the center reported with the expectations and names each one that was not met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulators.city import Behaviour
from simulators.faults import Fault
from simulators.incidents import DispatcherPlan, Report

_KEYS = {
    "name", "seed", "clock_rate", "duration_s", "city", "officers_per_team", "policy",
    "behaviour", "dispatcher", "arrivals_per_hour", "incidents", "faults", "expect",
}  # fmt: skip
_EXPECTATIONS = {
    "phase", "breached", "on_time", "arrived_via", "redispatched", "no_fix_lost", "rejected",
    "count", "at_least", "incident", "officer",
}  # fmt: skip


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and the entry."""


@dataclass(frozen=True)
class ScriptedIncident:
    at_s: float
    category: str
    priority: int = 3
    source: str = "12345"
    title: str = ""
    near: str | None = None
    distance_m: float = 500.0
    lon: float | None = None
    lat: float | None = None

    def report(self, at: float, lon: float, lat: float) -> Report:
        return Report(at, self.category, self.priority, self.source, self.title, lon, lat)


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    seed: int = 1
    clock_rate: float = 30.0
    duration_s: float = 600.0
    city: str = "demo"
    officers_per_team: int = 1
    policy: dict[str, Any] = field(default_factory=dict)
    behaviour: Behaviour = field(default_factory=Behaviour)
    dispatcher: DispatcherPlan | None = None
    arrivals_per_hour: float = 0.0
    incidents: tuple[ScriptedIncident, ...] = ()
    faults: tuple[Fault, ...] = ()
    expect: tuple[dict[str, Any], ...] = ()


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not YAML ({exc})") from None
    unknown = set(data) - _KEYS
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    try:
        incidents = tuple(
            ScriptedIncident(**{("at_s" if k == "at" else k): v for k, v in entry.items()})
            for entry in data.get("incidents", [])
        )
        faults = tuple(Fault.from_dict(f) for f in data.get("faults", []))
        dispatcher = data.get("dispatcher")
        scenario = Scenario(
            name=str(data.get("name", path.stem)),
            path=path,
            seed=int(data.get("seed", 1)),
            clock_rate=float(data.get("clock_rate", 30.0)),
            duration_s=float(data.get("duration_s", 600.0)),
            city=str(data.get("city", "demo")),
            officers_per_team=int(data.get("officers_per_team", 1)),
            policy=dict(data.get("policy") or {}),
            behaviour=Behaviour.from_dict(data.get("behaviour") or {}),
            dispatcher=None if dispatcher is None else DispatcherPlan.from_dict(dispatcher),
            arrivals_per_hour=float(data.get("arrivals_per_hour", 0.0)),
            incidents=incidents,
            faults=faults,
            expect=tuple(data.get("expect", [])),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    for number, expectation in enumerate(scenario.expect, start=1):
        wrong = set(expectation) - _EXPECTATIONS
        if wrong:
            raise ScenarioError(f"{path}: expectation {number} has unknown keys {sorted(wrong)}")
        if "incident" in expectation and not 1 <= expectation["incident"] <= len(incidents):
            raise ScenarioError(
                f"{path}: expectation {number} names incident {expectation['incident']}, "
                f"the script has {len(incidents)}"
            )
    return scenario


@dataclass(frozen=True)
class Outcome:
    """What the center reported when the scenario ended."""

    incidents: dict[int, dict[str, Any]]  # script number → the incident as the API shows it
    stats: dict[str, int]
    published: int  # messages the broker acknowledged from the simulated devices


def verdicts(stats: dict[str, int]) -> int:
    """Messages the ingest gave a verdict: stored, or rejected with a reason."""
    return sum(v for k, v in stats.items() if k == "accepted" or k.startswith("rejected:"))


def check(scenario: Scenario, outcome: Outcome) -> list[str]:
    """Every expectation not met, as a sentence; empty when the scenario passed."""
    failures = []
    for expectation in scenario.expect:
        problem = _check_one(expectation, outcome)
        if problem:
            failures.append(f"{_describe(expectation)}: {problem}")
    return failures


def _check_one(expectation: dict[str, Any], outcome: Outcome) -> str | None:
    if expectation.get("no_fix_lost"):
        given = verdicts(outcome.stats)
        if given != outcome.published:
            return f"{outcome.published} published, {given} stored or rejected with a reason"
        return None
    if "rejected" in expectation or "count" in expectation:
        counter = expectation.get("count") or f"rejected:{expectation['rejected']}"
        count = outcome.stats.get(counter, 0)
        least = int(expectation.get("at_least", 1))
        return None if count >= least else f"{counter} is {count}, expected at least {least}"
    incident = outcome.incidents.get(int(expectation["incident"]))
    if incident is None:
        return "the incident was never opened"
    records = {m["milestone"]: m for m in incident.get("milestones", [])}
    breaches = {m for m, level in incident.get("alerts", []) if level >= 1}
    breaches |= {name for name, m in records.items() if m["late_by_s"] > 0}
    if "phase" in expectation and incident["phase"] != expectation["phase"]:
        return f"phase is {incident['phase']}"
    for milestone in expectation.get("breached", []):
        if milestone not in breaches:
            return f"{milestone} was not breached ({_milestones(incident)})"
    for milestone in expectation.get("on_time", []):
        if milestone not in records or milestone in breaches:
            return f"{milestone} was not on time ({_milestones(incident)})"
    if "arrived_via" in expectation:
        arrive = records.get("arrive")
        if arrive is None or arrive["via"] != expectation["arrived_via"]:
            return f"arrival {'not recorded' if arrive is None else 'via ' + arrive['via']}"
        if "officer" in expectation and arrive["by"] != expectation["officer"]:
            return f"arrived by {arrive['by']}"
    if "redispatched" in expectation:
        happened = bool(incident.get("past_officers"))
        if happened != bool(expectation["redispatched"]):
            return f"past officers {incident.get('past_officers')}"
    return None


def _milestones(incident: dict[str, Any]) -> str:
    parts = [f"{m['milestone']} late {m['late_by_s']:.0f}s" for m in incident.get("milestones", [])]
    return ", ".join(parts) or "no milestone reached"


def _describe(expectation: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in expectation.items())
