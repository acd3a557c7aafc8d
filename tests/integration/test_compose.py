"""docker-compose.yml as docker-compose resolves it (`docker-compose config`): the scale-out
topology, the commands the image runs (parsed by the real `yiwang` parser), and passwords that
must be given. No image is built and no container runs here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.api.app import WORKERS
from dispatch.cli import build_parser
from dispatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {
    "YIWANG_DB_PASSWORD": "db-secret",
    "YIWANG_REDIS_PASSWORD": "redis-secret",
    "YIWANG_BROKER_ADMIN_PASSWORD": "admin-secret",
    "YIWANG_INGEST_MQTT_PASSWORD": "ingest-secret",
    "YIWANG_DELIVERY_MQTT_PASSWORD": "delivery-secret",
}
SENTINEL_URL = (
    "redis+sentinel://:redis-secret@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/yiwang/0"
)
COMMANDS = {
    "setup": ["sh", "-c", "yiwang db upgrade && yiwang broker setup"],
    "ingest-1": ["yiwang", "ingest"],
    "ingest-2": ["yiwang", "ingest"],
    "engine-1": ["yiwang", "engine"],
    "engine-2": ["yiwang", "engine"],
    "api-1": ["yiwang", "serve", "--workers", "delivery,hotline,jt808"],
    "api-2": ["yiwang", "serve", "--api-only"],
    "history": ["yiwang", "history"],
    "archiver": ["yiwang", "archive"],
}
DAEMONS = {
    "postgres",
    "redis-a",
    "redis-b",
    "sentinel-1",
    "sentinel-2",
    "sentinel-3",
    "broker-init",
    "mosquitto",
}
ONE_SHOT = {"broker-init", "setup"}
# The replica count the ingest waits for before it acknowledges a batch (DESIGN §5c); every
# other YIWANG_ variable the file sets must be a setting.
NOT_YET_SETTINGS: set[str] = set()


def _compose_config(variables: dict[str, str], env_file: Path) -> subprocess.CompletedProcess[str]:
    compose = shutil.which("docker-compose")
    assert compose is not None, "docker-compose is missing: `make test-packages` installs it"
    # An empty env file and only these variables: a developer's .env or shell cannot fill in
    # what the file must demand.
    env_file.write_text("", encoding="utf-8")
    return subprocess.run(
        [compose, "--env-file", str(env_file), "-f", str(REPO / "docker-compose.yml"), "config"],
        env={"PATH": "/usr/bin:/bin", **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    resolved = _compose_config(PASSWORDS, tmp_path_factory.mktemp("compose") / ".env")
    assert resolved.returncode == 0, resolved.stderr
    return yaml.safe_load(resolved.stdout)["services"]


def _yiwang_parse(command: list[str]) -> Any:
    assert command[0] == "yiwang", command
    return build_parser().parse_args(command[1:])


def test_the_services_and_what_each_yiwang_one_runs(services: dict[str, Any]) -> None:
    assert set(services) == DAEMONS | set(COMMANDS)
    for name, command in COMMANDS.items():
        service = services[name]
        assert service["command"] == command, name
        assert service["image"] == "yiwang:latest", name
        assert Path(service["build"]["context"]) == REPO, name
    # Every command is one the CLI accepts, with options it has.
    for step in COMMANDS["setup"][2].split("&&"):
        _yiwang_parse(step.split())
    for name, command in COMMANDS.items():
        if name != "setup":
            _yiwang_parse(command)
    api_1 = _yiwang_parse(services["api-1"]["command"])
    assert set(api_1.workers.split(",")) == {"delivery", "hotline", "jt808"} <= set(WORKERS)
    assert _yiwang_parse(services["api-2"]["command"]).api_only


def test_workers_are_named_apart_and_reach_redis_through_the_sentinels(
    services: dict[str, Any],
) -> None:
    env = {name: services[name]["environment"] for name in COMMANDS}
    assert {env["ingest-1"]["YIWANG_INGEST_NAME"], env["ingest-2"]["YIWANG_INGEST_NAME"]} == {
        "ingest-1",
        "ingest-2",
    }
    assert {env["engine-1"]["YIWANG_ENGINE_ID"], env["engine-2"]["YIWANG_ENGINE_ID"]} == {
        "engine-1",
        "engine-2",
    }
    settings = {f"YIWANG_{field.upper()}" for field in Settings.model_fields}
    for name, variables in env.items():
        assert variables["YIWANG_REDIS_URL"] == SENTINEL_URL, name
        assert variables["YIWANG_REDIS_WAIT_REPLICAS"] == "1", name
        assert variables["YIWANG_DATABASE_URL"].startswith("postgresql://yiwang:db-secret@"), name
        unknown = {v for v in variables if v.startswith("YIWANG_")} - settings
        assert unknown <= NOT_YET_SETTINGS, f"{name} sets no setting: {sorted(unknown)}"
    # Only the one-shot setup holds the broker admin; each worker logs in with its own role.
    holders = {
        name for name, variables in env.items() if "YIWANG_BROKER_ADMIN_PASSWORD" in variables
    }
    assert holders == {"setup"}
    assert env["ingest-2"]["YIWANG_INGEST_MQTT_PASSWORD"] == "ingest-secret"
    assert env["api-1"]["YIWANG_DELIVERY_MQTT_PASSWORD"] == "delivery-secret"
    assert "YIWANG_DELIVERY_MQTT_PASSWORD" not in env["api-2"]


def test_the_replica_follows_the_primary_and_three_sentinels_watch_it(
    services: dict[str, Any],
) -> None:
    primary, replica = services["redis-a"]["command"], services["redis-b"]["command"]
    assert "--replicaof" not in primary
    at = replica.index("--replicaof")
    assert replica[at + 1 : at + 3] == ["redis-a", "6379"]
    for command in (primary, replica):
        assert command[command.index("--appendonly") + 1] == "yes"
        assert command[command.index("--requirepass") + 1] == "redis-secret"
        assert command[command.index("--masterauth") + 1] == "redis-secret"
    volumes = set()
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        sentinel = services[name]
        script = sentinel["entrypoint"][2]
        assert "sentinel monitor yiwang redis-a 6379 2" in script, name
        assert "redis-server /data/sentinel.conf --sentinel" in script, name
        assert sentinel["command"] == [name]  # the name it announces
        assert sentinel["environment"]["YIWANG_REDIS_PASSWORD"] == "redis-secret"
        volumes.update(sentinel["volumes"])
    assert len(volumes) == 3


def test_restarts_and_start_order(services: dict[str, Any]) -> None:
    for name, service in services.items():
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert str(service["restart"]) == expected, name
    for name in set(COMMANDS) - {"setup"}:
        assert services[name]["depends_on"]["setup"]["condition"] == (
            "service_completed_successfully"
        ), name
    setup = services["setup"]["depends_on"]
    for daemon in ("postgres", "mosquitto", "sentinel-1", "sentinel-2", "sentinel-3"):
        assert setup[daemon]["condition"] == "service_healthy", daemon
    assert services["mosquitto"]["depends_on"]["broker-init"]["condition"] == (
        "service_completed_successfully"
    )


@pytest.mark.parametrize("missing", sorted(PASSWORDS))
def test_every_password_must_be_given(missing: str, tmp_path: Path) -> None:
    given = {name: value for name, value in PASSWORDS.items() if name != missing}
    resolved = _compose_config(given, tmp_path / ".env")
    assert resolved.returncode != 0
    assert f"set {missing} in .env" in resolved.stderr


def test_the_image_serves_the_bundle_it_copied_in() -> None:
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
    copied = next(line.split()[-1] for line in lines if line.startswith("COPY --from=screens"))
    assert f"ENV YIWANG_SCREENS_DIR={copied} \\" in lines
    assert "USER yiwang" in lines
