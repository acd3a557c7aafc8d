"""Device faults change exactly what they claim to; scenario files are checked on load, and
`check` names every unmet expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.core.policy import CATEGORIES, PolicyBook
from dispatch.core.sensors import SENSOR_TYPES
from gis.coords import LonLat, haversine_m
from simulators.city import Message
from simulators.faults import Fault, FaultInjector, FaultKind
from simulators.incidents import CATEGORIES as CITY_CATEGORIES
from simulators.scenario import Outcome, ScenarioError, check, load_scenario

REPO = Path(__file__).resolve().parents[2]
T0 = 1_795_000_000.0


def fix(n: int, user: str = "u1", device: str = "d1") -> Message:
    payload = {"_type": "location", "lon": 119.65, "lat": 29.08, "tst": int(T0 + n), "batt": 90}
    return Message(T0 + n, user, device, "", payload)


def ack(n: int) -> Message:
    return Message(
        T0 + n,
        "u1",
        "d1",
        "ack",
        {"_type": "ack", "order_id": "O", "status": "accepted", "tst": int(T0 + n)},
    )


def through(
    faults: list[Fault], messages_at: list[list[Message]], seed: int = 1
) -> list[list[Message]]:
    """Each batch goes through at its first message's time (one second later if empty)."""
    injector = FaultInjector(tuple(faults), T0, seed)
    out, now = [], T0
    for batch in messages_at:
        now = batch[0].at if batch else now + 1
        out.append(injector.apply(batch, now))
    return out


def fault(kind: FaultKind, start: float = 0, end: float = 100, **kw) -> Fault:
    return Fault(kind, start, end, **kw)


def test_duplicate_dropout_and_skew_touch_only_their_window_and_officers() -> None:
    out = through(
        [fault(FaultKind.DUPLICATE, 0, 2), fault(FaultKind.CLOCK_SKEW, 2, 4, amount=600)],
        [[fix(0)], [fix(1)], [fix(2)], [fix(3)], [fix(4)]],
    )
    assert [len(b) for b in out] == [2, 2, 1, 1, 1]
    assert [b[0].payload["tst"] - int(T0) for b in out] == [0, 1, 602, 603, 4]
    spared = through(
        [fault(FaultKind.DROPOUT, officers=frozenset({"u2"}))],
        [[fix(0), fix(0, "u2", "d2"), ack(0)]],
    )
    assert [m.user for m in spared[0]] == ["u1", "u1"]
    dropped = through([fault(FaultKind.DROPOUT)], [[fix(0), ack(0)]])
    assert [m.suffix for m in dropped[0]] == ["ack"], "a lost GPS fix does not silence the buttons"


def test_jump_moves_by_the_amount_and_jitter_stays_near() -> None:
    ((jumped,),) = through([fault(FaultKind.JUMP, amount=30_000)], [[fix(0)]])
    moved = haversine_m(LonLat(119.65, 29.08), LonLat(jumped.payload["lon"], jumped.payload["lat"]))
    assert moved == pytest.approx(30_000, rel=0.01)
    jittered = through([fault(FaultKind.JITTER, amount=5)], [[fix(n)] for n in range(200)])
    gaps = [
        haversine_m(LonLat(119.65, 29.08), LonLat(b[0].payload["lon"], b[0].payload["lat"]))
        for b in jittered
    ]
    assert 2 < sum(gaps) / len(gaps) < 12 and max(gaps) < 40


def test_reorder_reverses_batches_and_late_holds_until_the_window_closes() -> None:
    out = through([fault(FaultKind.REORDER, 0, 5, amount=3)], [[fix(n)] for n in range(7)])
    sent = [m.payload["tst"] - int(T0) for b in out for m in b]
    assert sent == [2, 1, 0, 4, 3, 5, 6], "the unfinished batch goes out when the window ends"
    late = through([fault(FaultKind.LATE, 1, 4)], [[fix(n)] for n in range(6)])
    assert [[m.payload["tst"] - int(T0) for m in b] for b in late] == [
        [0],
        [],
        [],
        [],
        [1, 2, 3, 4],
        [5],
    ]


def test_offline_announces_itself_stores_and_forwards() -> None:
    out = through(
        [fault(FaultKind.OFFLINE, 1, 3)],
        [[fix(n), ack(n)] if n == 2 else [fix(n)] for n in range(5)],
    )
    kinds = [[(m.suffix or "fix", m.payload.get("online")) for m in b] for b in out]
    assert kinds[0] == [("fix", None)]
    assert kinds[1] == [("conn", False)]
    assert kinds[2] == []
    assert kinds[3] == [("conn", True), ("fix", None), ("fix", None), ("ack", None), ("fix", None)]


def test_impersonation_and_battery_drain() -> None:
    ((borrowed,),) = through([fault(FaultKind.IMPERSONATE, as_officer="u9")], [[fix(0)]])
    assert (borrowed.user, borrowed.device) == ("u9", "d1")
    drained = through(
        [fault(FaultKind.BATTERY_DRAIN, 0, 10_000, amount=3600)], [[fix(n * 20)] for n in range(6)]
    )
    # 3600 %/h is 1 % a second: 90 % left at the start, dark after 90 s.
    assert [b[0].payload["batt"] for b in drained if b] == [90, 70, 50, 30, 10]
    assert drained[-1] == []
    with pytest.raises(ValueError, match="as_officer"):
        Fault.from_dict({"kind": "impersonate"})


def test_every_shipped_scenario_loads_and_at_least_five_exercise_faults_or_failures() -> None:
    scenarios = [load_scenario(p) for p in sorted((REPO / "scenarios").glob("*.yaml"))]
    assert len(scenarios) >= 5
    assert sum(bool(s.faults) for s in scenarios) >= 3
    assert all(s.expect for s in scenarios)


def test_the_city_and_every_scenario_report_only_catalogued_categories() -> None:
    # The center refuses any other (422): a scenario naming one would test nothing. Between
    # the city's reports and its sensors' alarms, every category but SOS turns up.
    assert {c: title for c, (title, *_) in CITY_CATEGORIES.items()} == {
        c: CATEGORIES[c] for c in CITY_CATEGORIES
    }
    sensed = {kind.category for kind in SENSOR_TYPES.values()}
    assert set(CITY_CATEGORIES) | sensed == set(CATEGORIES) - {"sos"}
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        book = PolicyBook.from_dict(scenario.policy)
        for incident in scenario.incidents:
            book.category_or_raise(incident.category)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_scenario_mistakes_are_named_on_load(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"unknown keys \['incidnets'\]"):
        load_scenario(write(tmp_path, "incidnets: []\n"))
    with pytest.raises(ScenarioError, match="names incident 2, the script has 1"):
        load_scenario(
            write(
                tmp_path,
                "incidents: [{at: 1, category: x}]\nexpect: [{incident: 2, phase: closed}]\n",
            )
        )
    with pytest.raises(ScenarioError, match="expectation 1 has unknown keys"):
        load_scenario(write(tmp_path, "expect: [{no_fix_lsot: true}]\n"))
    with pytest.raises(ScenarioError, match="'teleport' is not a valid FaultKind"):
        load_scenario(write(tmp_path, "faults: [{kind: teleport}]\n"))


def test_check_names_each_unmet_expectation(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            "incidents: [{at: 1, category: x}, {at: 2, category: y}]\n"
            "expect:\n"
            "  - {incident: 1, breached: [turn_out], on_time: [respond]}\n"
            "  - {incident: 1, arrived_via: gps}\n"
            "  - {incident: 2, phase: closed}\n"
            "  - {rejected: implausible_jump, at_least: 2}\n"
            "  - {no_fix_lost: true}\n",
        )
    )
    incident = {
        "id": "INC-1",
        "phase": "on_scene",
        "past_officers": [],
        "alerts": [["turn_out", 0], ["turn_out", 1]],
        "milestones": [
            {"milestone": "respond", "late_by_s": 0.0, "via": "dispatcher", "by": "d"},
            {"milestone": "turn_out", "late_by_s": 12.0, "via": "gps", "by": "o1"},
            {"milestone": "arrive", "late_by_s": 0.0, "via": "button", "by": "o1"},
        ],
    }
    stats = {"accepted": 10, "rejected:implausible_jump": 1}
    failures = check(scenario, Outcome({1: incident}, stats, published=12))
    assert failures == [
        "incident=1, arrived_via=gps: arrival via button",
        "incident=2, phase=closed: the incident was never opened",
        "rejected=implausible_jump, at_least=2: rejected:implausible_jump is 1, expected at least 2",
        "no_fix_lost=True: 12 published, 11 stored or rejected with a reason",
    ]
