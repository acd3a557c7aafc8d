"""Settings read from the environment as documented, and the center's accelerated clock."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dispatch import clock as clock_module
from dispatch import settings as settings_module
from dispatch.clock import Clock
from dispatch.settings import Settings


def test_mqtt_protocol_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIWANG_MQTT_PROTOCOL", "311")
    assert Settings().mqtt_protocol == 311
    monkeypatch.setenv("YIWANG_MQTT_PROTOCOL", "4")
    with pytest.raises(ValidationError, match="5 \\(MQTT 5\\) or 311"):
        Settings()


def test_an_accelerated_clock_runs_rate_times_faster_from_its_anchor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wall = [1_795_000_000.0]
    monkeypatch.setattr(clock_module.time, "time", lambda: wall[0])
    fast = Clock(rate=30, anchor=1_795_000_000.0)
    wall[0] += 2.0
    assert fast() == 1_795_000_060.0
    assert fast.real_seconds(900) == 30.0, "the 15-minute clock in half a minute"
    assert Clock(anchor=1.0)() == wall[0], "rate 1 is the wall clock"
    monkeypatch.setenv("YIWANG_CLOCK_RATE", "20")
    monkeypatch.setenv("YIWANG_CLOCK_ANCHOR", "1795000000")
    assert Settings().clock()() == 1_795_000_040.0
    monkeypatch.setenv("YIWANG_CLOCK_RATE", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_serve_and_ingest_have_their_own_default_ingest_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("YIWANG_INGEST_NAME", raising=False)
    monkeypatch.setattr(settings_module.socket, "gethostname", lambda: "node-7")
    settings = Settings()
    assert settings.ingest_worker_name("serve") == "node-7-serve"
    assert settings.ingest_worker_name("ingest") == "node-7-ingest"
    monkeypatch.setenv("YIWANG_INGEST_NAME", "east-2")
    assert Settings().ingest_worker_name("ingest") == "east-2"
