"""A scripted month of incidents with known supervision outcomes, run through the real engine
core (`EngineCore.step`), so that the audit records are exactly those the engine writes.

Each case is a list of (seconds after its report, action); the runner steps the engine at
every action and at every deadline the engine asks for, as the engine's shell does. What the
engine writes only with a city is added as it writes it (reading it needs no city): an
auto-dispatch finding nobody (`no_candidate`), and the travel time an order goes out with
(`eta_s` of `order_sent`, None without a city).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dispatch.core import events as ev
from dispatch.core.model import Incident, IncidentId, Source
from dispatch.core.policy import PolicyBook
from dispatch.engine.step import EngineCore
from dispatch.store import decode_incident
from gis.coords import LonLat

# 2026-11-02 08:00 in Asia/Shanghai: the report of the first case; one case an hour after.
FIRST_REPORT_AT = 1_793_577_600.0
PLACES = {"east": LonLat(119.650, 29.080), "west": LonLat(119.642, 29.080)}
TEAMS = {"east": "team-east", "west": "team-west"}

Action = Callable[["_Run"], dict[str, str] | None]


def _command(event: object) -> dict[str, str]:
    return {"kind": "command", "body": json.dumps({"type": type(event).__name__,
                                                  **msgspec.to_builtins(event)})}  # fmt: skip


def ack() -> Action:
    return lambda run: _command(ev.IncidentAcknowledged(run.incident, by="d1"))


def assign(*officers: str) -> Action:
    def action(run: _Run) -> dict[str, str]:
        run.order = f"{run.incident}-O{run.orders}"
        run.orders += 1
        return _command(ev.OrderIssued(run.incident, run.order, officers, by="d1"))  # type: ignore[arg-type]

    return action


def officer_does(kind: type, officer: str, **extra: str) -> Action:
    return lambda run: _command(kind(run.incident, run.order, officer, **extra))


def offline(officer: str) -> Action:
    return lambda run: {"kind": "lwt", "officer": officer, "body": "{}"}


def by_dispatcher(kind: type, **extra: str) -> Action:
    return lambda run: _command(kind(run.incident, by="d1", **extra))


def no_candidate() -> Action:
    def action(run: _Run) -> None:
        run.injected.append(
            {"at": f"{run.now:.3f}", "kind": "no_candidate", "incident": run.incident,
             "reason": "no available officer"}
        )  # fmt: skip

    return action


def handled(officer: str, depart: float, arrive: float, resolve: float) -> list:
    """The rest of an incident once its order is out: accepted, on the way, there, done."""
    return [
        (depart, officer_does(ev.OrderAccepted, officer)),
        (depart, officer_does(ev.OfficerDeparted, officer)),
        (arrive, officer_does(ev.OfficerArrived, officer)),
        (resolve, by_dispatcher(ev.IncidentResolved)),
        (resolve + 10, by_dispatcher(ev.IncidentClosed)),
    ]


@dataclass(frozen=True)
class Case:
    name: str
    place: str  # east or west
    script: list[tuple[float, Action]]
    # Expected: milestone -> (status, cause or None); re-dispatch reasons.
    expected: dict[str, tuple[str, str | None]]
    redispatches: dict[str, int] = field(default_factory=dict)
    eta_s: float | None = None  # the travel time its orders go out with


OK = ("on_time", None)
UNTIMED = ("untimed", None)

CASES = [
    Case("on time", "east",
         [(10, ack()), (20, assign("zhang3")), *handled("zhang3", 40, 100, 400)],
         {"respond": OK, "turn_out": OK, "arrive": UNTIMED, "handle": OK}),
    Case("nobody at the console", "east",
         [(70, ack()), (75, assign("zhang3")), *handled("zhang3", 80, 150, 500)],
         {"respond": ("late", "no_acknowledgement"), "turn_out": OK, "arrive": UNTIMED,
          "handle": OK}),
    Case("no officer to recommend", "west",
         [(5, ack()), (5, no_candidate()), (90, assign("wang5")),
          *handled("wang5", 100, 200, 600)],
         {"respond": ("late", "no_candidate"), "turn_out": OK, "arrive": UNTIMED,
          "handle": OK}),
    Case("order not accepted in time", "east",
         [(5, ack()), (10, assign("zhang3")), (170, assign("li4")),
          *handled("li4", 200, 300, 700)],
         {"respond": OK, "turn_out": ("late", "not_accepted"), "arrive": UNTIMED,
          "handle": OK},
         {"not_accepted": 1}),
    Case("officer rejected", "east",
         [(5, ack()), (10, assign("zhang3")),
          (40, officer_does(ev.OrderRejected, "zhang3", reason="busy")),
          (190, assign("li4")), *handled("li4", 200, 300, 700)],
         {"respond": OK, "turn_out": ("late", "rejected"), "arrive": UNTIMED, "handle": OK},
         {"rejected": 1}),
    Case("officer went offline", "west",
         [(5, ack()), (10, assign("wang5")), (20, officer_does(ev.OrderAccepted, "wang5")),
          (100, offline("wang5")), (200, assign("wang5")), *handled("wang5", 210, 300, 800)],
         {"respond": OK, "turn_out": ("late", "officer_offline"), "arrive": UNTIMED,
          "handle": OK},
         {"officer_offline": 1}),
    Case("late handling", "east",
         [(5, ack()), (10, assign("zhang3")), *handled("zhang3", 30, 120, 1000)],
         {"respond": OK, "turn_out": OK, "arrive": UNTIMED,
          "handle": ("late", "late_handling")}),
    Case("accepted, slow to leave", "west",
         [(5, ack()), (10, assign("wang5")), (20, officer_does(ev.OrderAccepted, "wang5")),
          (200, officer_does(ev.OfficerDeparted, "wang5")),
          (260, officer_does(ev.OfficerArrived, "wang5")),
          (500, by_dispatcher(ev.IncidentResolved)), (510, by_dispatcher(ev.IncidentClosed))],
         {"respond": OK, "turn_out": ("late", "unknown"), "arrive": UNTIMED, "handle": OK}),
    Case("re-dispatched in time", "east",
         [(5, ack()), (10, assign("zhang3")),
          (20, by_dispatcher(ev.ReassignRequested, reason="closer officer")),
          (30, assign("li4")), *handled("li4", 40, 100, 300)],
         {"respond": OK, "turn_out": OK, "arrive": UNTIMED, "handle": OK},
         {"reassigned": 1}),
    Case("cancelled early", "west",
         [(5, ack()), (30, by_dispatcher(ev.IncidentCancelled, reason="duplicate call"))],
         {"respond": ("not_due", None), "turn_out": ("not_due", None),
          "arrive": ("not_due", None), "handle": ("not_due", None)}),
    Case("never answered", "east",
         [(200, by_dispatcher(ev.IncidentCancelled, reason="caller gone"))],
         {"respond": ("missed", "no_acknowledgement"),
          "turn_out": ("missed", "no_acknowledgement"), "arrive": ("not_due", None),
          "handle": ("not_due", None)},
         {"escalated": 1}),
    # Sent 10 s after the report to an officer 400 s away: the 180 s were gone at dispatch.
    Case("officer far away", "west",
         [(5, ack()), (10, assign("wang5")), (20, officer_does(ev.OrderAccepted, "wang5")),
          *handled("wang5", 190, 410, 800)],
         {"respond": OK, "turn_out": ("late", "long_travel"), "arrive": UNTIMED,
          "handle": OK},
         eta_s=400.0),
]  # fmt: skip


@dataclass
class Recorded:
    """What the engine recorded for one case: its final snapshot and its audit records."""

    case: Case
    incident: Incident
    raw: bytes
    records: list[dict[str, str]]


@dataclass
class _Run:
    incident: IncidentId
    now: float = 0.0
    order: str = ""
    orders: int = 0
    injected: list[dict[str, str]] = field(default_factory=list)


def record_cases(cases: list[Case] = CASES) -> list[Recorded]:
    """Run every case through one engine core (1/3/15, accept within 45 s, default ladder)."""
    core = EngineCore(PolicyBook(), city=None)
    runs: dict[IncidentId, _Run] = {}
    timed: list[tuple[float, IncidentId, Action | None, Case]] = []
    for n, case in enumerate(cases):
        incident = IncidentId(f"INC-{n:03d}")
        runs[incident] = _Run(incident)
        reported = FIRST_REPORT_AT + n * 3600
        report = ev.IncidentReported(incident, "street_vending", 2 + n % 2, PLACES[case.place],
                                     Source.HOTLINE_12345, team=TEAMS[case.place])  # type: ignore[arg-type]  # fmt: skip
        timed.append((reported, incident, lambda _run, e=report: _command(e), case))
        timed += [(reported + dt, incident, action, case) for dt, action in case.script]
    timed.sort(key=lambda item: item[0])
    audit: list[dict[str, str]] = []
    snapshots: dict[str, bytes] = {}

    def step(now: float, entries: list[tuple[str, dict[str, str]]]) -> None:
        out = core.step(entries, [], dict, now)
        audit.extend(out.audit)
        snapshots.update(out.incidents)

    for at, incident, action, _case in timed:
        while (deadline := core.next_deadline()) is not None and deadline < at:
            step(deadline, [])
        run = runs[incident]
        run.now = at
        entry = action(run) if action is not None else None
        if entry is not None:
            step(at, [(f"{at:.0f}-{len(audit)}", entry)])
    by_incident: dict[str, list[dict[str, str]]] = {i: [] for i in runs}
    for record in audit:
        if record.get("incident") in by_incident:
            by_incident[record["incident"]].append(record)
    recorded = []
    for (incident, run), case in zip(runs.items(), cases, strict=True):
        sent = [_with_eta(r, case.eta_s) for r in by_incident[incident]]
        records = sorted([*sent, *run.injected], key=lambda r: float(r["at"]))
        raw = snapshots[incident]
        recorded.append(Recorded(case, decode_incident(raw), raw, records))
    return recorded


def _with_eta(record: dict[str, str], eta_s: float | None) -> dict[str, str]:
    if record["kind"] != "order_sent" or eta_s is None:
        return record
    return {**record, "detail": json.dumps({**json.loads(record["detail"]), "eta_s": eta_s})}


def outcome_table(outcomes: list[Any]) -> dict[str, dict[str, tuple[str, str | None]]]:
    """Case name's incident -> milestone -> (status, cause), as the cases state them."""
    return {
        o.incident: {m.milestone.value: (m.status.value, m.cause and m.cause.value)
                     for m in o.milestones}
        for o in outcomes
    }  # fmt: skip
