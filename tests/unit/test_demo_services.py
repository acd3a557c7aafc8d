"""Which services a command uses: the user's settings, else the running demo's, else the
defaults; a demo's file whose services do not answer is ignored with a note."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from dispatch.cli.services import (
    choose_services,
    read_services,
    services_path,
    settings_for_command,
    write_services,
)
from dispatch.settings import Settings
from harness.daemons import free_port

DEMO = {
    "redis_url": "redis://127.0.0.1:41001/0",
    "key_prefix": "yiwang",
    "database_url": "postgresql://yiwang:s3cret@127.0.0.1:41003/postgres",
    "mqtt_host": "127.0.0.1",
    "mqtt_port": 41002,
    "simulator_mqtt_username": "yiwang-simulator",
    "simulator_mqtt_password": "pw",
    "areas_file": "/var/demo/city/areas.geojson",
}


@pytest.fixture(autouse=True)
def no_yiwang_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the user set is what each test passes to Settings, nothing from outside."""
    for name in list(os.environ):
        if name.startswith("YIWANG_"):
            monkeypatch.delenv(name)


def settings(**given: object) -> Settings:
    return Settings(_env_file=None, **given)  # type: ignore[call-arg]


def test_without_a_demo_the_defaults_are_used_and_said_so() -> None:
    choice = choose_services(settings(), None)
    assert choice.settings.redis_url == "redis://127.0.0.1:6379/0"
    assert not choice.taken
    assert choice.line == (
        "Redis redis://127.0.0.1:6379/0 (default), broker 127.0.0.1:1883 (default), "
        "PostgreSQL postgresql://yiwang@127.0.0.1:5432/yiwang (default)"
    )


def test_the_running_demos_services_are_used_when_the_user_set_none() -> None:
    choice = choose_services(settings(), DEMO)
    assert choice.settings.redis_url == DEMO["redis_url"]
    assert choice.settings.mqtt_port == 41002
    assert choice.settings.database_url == DEMO["database_url"]
    assert choice.settings.broker_login("simulator").username == "yiwang-simulator"
    assert choice.settings.areas_file == Path("/var/demo/city/areas.geojson")
    assert choice.line == (
        "Redis redis://127.0.0.1:41001/0 (the running demo's), "
        "broker 127.0.0.1:41002 (the running demo's), "
        # The line is printed on every command: never with a password in it.
        "PostgreSQL postgresql://yiwang@127.0.0.1:41003/postgres (the running demo's)"
    )


def test_a_setting_the_user_gave_wins_over_the_demos() -> None:
    choice = choose_services(settings(redis_url="redis://127.0.0.1:7000/2"), DEMO)
    assert choice.settings.redis_url == "redis://127.0.0.1:7000/2"
    assert choice.settings.mqtt_port == 41002
    assert "redis_url" not in choice.taken
    assert "Redis redis://127.0.0.1:7000/2 (YIWANG_REDIS_URL)" in choice.line
    assert "broker 127.0.0.1:41002 (the running demo's)" in choice.line


def test_another_broker_given_takes_none_of_the_demos_broker_accounts() -> None:
    choice = choose_services(settings(mqtt_port=1999), DEMO)
    assert choice.settings.mqtt_port == 1999
    assert choice.settings.broker_login("simulator").username is None
    assert "broker 127.0.0.1:1999 (YIWANG_MQTT_PORT)" in choice.line
    assert choice.settings.redis_url == DEMO["redis_url"]


def test_the_file_the_demo_writes_gives_back_its_settings_and_only_its_owner_reads_it(
    tmp_path: Path,
) -> None:
    demo = settings(**DEMO, broker_admin_password="admin-pw")
    path = services_path(tmp_path)
    write_services(path, demo, "http://127.0.0.1:8080")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["http"] == "http://127.0.0.1:8080"
    recorded = read_services(path)
    assert recorded is not None
    chosen = choose_services(settings(), recorded).settings
    for name in (*DEMO, "broker_admin_password"):
        assert getattr(chosen, name) == getattr(demo, name), name


def test_an_unreadable_file_counts_as_none(tmp_path: Path) -> None:
    path = services_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_services(path) is None


def test_a_file_whose_services_do_not_answer_is_ignored_with_a_note(tmp_path: Path) -> None:
    # Ports nobody listens on: what a demo killed with -9 leaves behind.
    silent = {
        **DEMO,
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "mqtt_port": free_port(),
        "database_url": f"postgresql://yiwang:pw@127.0.0.1:{free_port()}/postgres",
    }
    path = services_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"settings": silent}))
    err = io.StringIO()
    chosen = settings_for_command(settings(data_dir=tmp_path), err)
    note, line = err.getvalue().splitlines()
    assert note.startswith(f"yiwang: ignoring {path}: Redis 127.0.0.1:")
    assert "not answering" in note
    assert line.startswith("yiwang: Redis redis://127.0.0.1:6379/0 (default)")
    assert chosen.redis_url == "redis://127.0.0.1:6379/0"
