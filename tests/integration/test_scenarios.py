"""Every shipped scenario, played against a real center (Redis, Mosquitto, ingest, engine,
delivery, API) on an accelerated clock, meets its expectations; `--check` fails loudly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.center import run_scenario
from simulators.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_meets_its_expectations(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    failures, outcome = run_scenario(scenario, tmp_path)
    assert not failures, f"{scenario.name}:\n" + "\n".join(failures)
    assert outcome.published > 100 * len(scenario.incidents or [1])
    assert len(outcome.incidents) == len(scenario.incidents)


def test_check_exits_non_zero_and_names_the_unmet_expectation(tmp_path: Path) -> None:
    impossible = tmp_path / "impossible.yaml"
    impossible.write_text(
        "name: too soon\nclock_rate: 30\nduration_s: 60\n"
        "incidents: [{at: 5, category: street_vending, near: officer001, distance_m: 400}]\n"
        "expect: [{incident: 1, phase: closed}, {no_fix_lost: true}]\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "simulate", "scenario", str(impossible), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNMET incident=1, phase=closed: phase is reported" in result.stdout
    assert "1 unmet" in result.stdout
