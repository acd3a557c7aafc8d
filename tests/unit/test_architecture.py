"""The dependency rules of the design, and the shipped broker configuration."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from harness.daemons import MOSQUITTO_QUEUE_SETTINGS

REPO = Path(__file__).resolve().parents[2]
PURE = [REPO / "gis", REPO / "dispatch" / "core"]


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_pure_packages_have_no_async_code_and_read_no_clock() -> None:
    for package in PURE:
        for path in package.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), f"{path}: async"
                if isinstance(node, ast.Attribute) and node.attr in ("time", "now", "monotonic"):
                    value = node.value
                    name = value.id if isinstance(value, ast.Name) else ""
                    assert name not in ("time", "datetime"), f"{path}:{node.lineno} reads a clock"


def test_every_shipped_broker_config_sizes_the_queue() -> None:
    shipped = (REPO / "deploy" / "mosquitto.conf").read_text(encoding="utf-8")
    for line in MOSQUITTO_QUEUE_SETTINGS.splitlines():
        assert line in shipped.splitlines(), f"deploy/mosquitto.conf lacks {line!r}"
    queued = int(MOSQUITTO_QUEUE_SETTINGS.split()[1])
    assert queued >= 100_000
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "./deploy/mosquitto.conf:/mosquitto/config/mosquitto.conf" in compose
    assert "--appendonly" in compose
