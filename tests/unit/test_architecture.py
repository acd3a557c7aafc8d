"""The dependency rules of the design, and the shipped broker configuration."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.daemons import (
    MOSQUITTO_PERSISTENCE_SETTINGS,
    MOSQUITTO_QUEUE_SETTINGS,
    MOSQUITTO_SECURITY_SETTINGS,
)

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


def test_the_shipped_broker_config_has_accounts_and_tls_for_devices() -> None:
    lines = (REPO / "deploy" / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    assert "allow_anonymous true" not in lines
    # The eclipse-mosquitto:2.0 image's plugin; its account file in the writable data volume.
    assert "plugin /usr/lib/mosquitto_dynamic_security.so" in lines
    assert "plugin_opt_config_file /mosquitto/data/dynamic-security.json" in lines
    tls = lines.index("listener 8883 0.0.0.0")
    assert lines[tls + 1 : tls + 3] == [
        "certfile /mosquitto/certs/server.crt",
        "keyfile /mosquitto/certs/server.key",
    ]
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "./deploy/certs:/mosquitto/certs:ro" in compose
    assert "mosquitto-data:/mosquitto/data" in compose


def test_every_shipped_broker_config_sizes_the_queue() -> None:
    shipped = (REPO / "deploy" / "mosquitto.conf").read_text(encoding="utf-8")
    settings = (
        MOSQUITTO_QUEUE_SETTINGS + MOSQUITTO_SECURITY_SETTINGS + MOSQUITTO_PERSISTENCE_SETTINGS
    )
    for line in settings.splitlines():
        assert line in shipped.splitlines(), f"deploy/mosquitto.conf lacks {line!r}"
    queued = int(MOSQUITTO_QUEUE_SETTINGS.split()[1])
    assert queued >= 100_000
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "./deploy/mosquitto.conf:/mosquitto/config/mosquitto.conf" in compose
    assert "--appendonly" in compose


# One forbidden import per contract, each placed where its contract forbids it.
PROBES = {
    "layers:": ("devices/layer_probe.py", "import dispatch.store\n"),
    "only dispatch.store imports redis": ("dispatch/api/redis_probe.py", "import redis\n"),
    "only dispatch.db imports psycopg": ("dispatch/api/psycopg_probe.py", "import psycopg\n"),
    "the product imports neither": ("dispatch/harness_probe.py", "import harness.daemons\n"),
    "gis and dispatch.core are pure": ("dispatch/core/socket_probe.py", "import socket\n"),
    "the wire's decoders": ("devices/downlink.py", "import asyncio\n"),
    "the engine's step decides without I/O": ("dispatch/engine/step.py", "import redis\n"),
    "gis depends on no other package": ("gis/devices_probe.py", "import devices.topics\n"),
    "dispatch.core knows nothing": ("dispatch/core/store_probe.py", "import dispatch.store\n"),
    "simulators speak only the wire": ("simulators/center_probe.py", "import dispatch.settings\n"),
}
PACKAGES = ("dispatch", "devices", "gis", "simulators", "harness", "bench")


def _contracts() -> list[dict]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["tool"]["importlinter"]["contracts"]  # type: ignore[no-any-return]


def test_every_contract_has_a_probe() -> None:
    names = [c["name"] for c in _contracts()]
    for name in names:
        assert sum(name.startswith(p) for p in PROBES) == 1, f"no probe for contract {name!r}"


@pytest.mark.parametrize("contract", sorted(PROBES))
def test_each_contract_fails_on_a_forbidden_import(contract: str, tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    path, line = PROBES[contract]
    with (tmp_path / path).open("a", encoding="utf-8") as module:
        module.write(line)
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"],
        cwd=tmp_path,
        # Wide enough that no contract's name wraps in the summary.
        env={**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "400"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout


def test_redis_contract_covers_every_package_but_the_store() -> None:
    (contract,) = [c for c in _contracts() if c["name"] == "only dispatch.store imports redis"]
    listed = set(contract["source_modules"])
    children = {
        f"dispatch.{p.stem}"
        for p in (REPO / "dispatch").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert children - {"dispatch.store"} <= listed
    assert {"devices", "gis", "simulators"} <= listed
