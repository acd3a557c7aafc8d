"""Device bindings and presence, both pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.presence import Presence, presence
from devices.quality import Reason, Rejection
from devices.registry import Binding, RegistryFileError, UnknownDevicePolicy, load_bindings, resolve

BOUND = {"BC-0042": Binding("BC-0042", "zhang3", "wucheng-01")}


def test_known_device_resolves_to_its_binding() -> None:
    assert resolve(BOUND, "zhang3", "BC-0042", UnknownDevicePolicy.QUARANTINE) == BOUND["BC-0042"]


def test_unknown_device_is_registered_or_quarantined() -> None:
    auto = resolve(BOUND, "li4", "BC-9", UnknownDevicePolicy.REGISTER)
    assert auto == Binding("BC-9", "li4", "", auto=True)
    refused = resolve(BOUND, "li4", "BC-9", UnknownDevicePolicy.QUARANTINE)
    assert isinstance(refused, Rejection) and refused.reason == Reason.UNKNOWN_DEVICE
    assert "yiwang devices bind BC-9" in refused.detail


def test_a_device_publishing_as_another_officer_is_never_merged() -> None:
    for policy in UnknownDevicePolicy:
        refused = resolve(BOUND, "li4", "BC-0042", policy)
        assert isinstance(refused, Rejection) and refused.reason == Reason.WRONG_OFFICER


def test_bindings_load_from_csv_and_yaml(tmp_path: Path) -> None:
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text("device,officer,team\nBC-1,zhang3,t1\nBC-2,li4,\n", encoding="utf-8")
    yaml_file = tmp_path / "devices.yaml"
    yaml_file.write_text(
        "- {device: BC-1, officer: zhang3, team: t1}\n- {device: BC-2, officer: li4}\n"
    )
    expected = [Binding("BC-1", "zhang3", "t1"), Binding("BC-2", "li4", "")]
    assert load_bindings(csv_file) == expected
    assert load_bindings(yaml_file) == expected


def test_a_bad_bindings_file_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "devices.csv"
    bad.write_text("device,officer\nBC-1,\n", encoding="utf-8")
    with pytest.raises(RegistryFileError, match="entry 1"):
        load_bindings(bad)


LIMITS = {"stale_after_s": 60.0, "offline_after_s": 300.0}


@pytest.mark.parametrize(
    ("silent_s", "expected"),
    [(5, Presence.ONLINE), (60, Presence.STALE), (299, Presence.STALE), (300, Presence.OFFLINE)],
)
def test_presence_follows_silence(silent_s: float, expected: Presence) -> None:
    assert presence(1000.0, None, now=1000.0 + silent_s, **LIMITS) == expected


def test_an_offline_report_wins_until_something_newer_arrives() -> None:
    lwt = {"_type": "lwt", "rx": 1000.0}
    assert presence(1000.0, lwt, now=1001.0, **LIMITS) == Presence.OFFLINE
    assert presence(1002.0, lwt, now=1003.0, **LIMITS) == Presence.ONLINE
    conn_off = {"_type": "conn", "online": False, "rx": 1000.0}
    assert presence(1000.0, conn_off, now=1001.0, **LIMITS) == Presence.OFFLINE
    assert presence(None, None, now=1.0, **LIMITS) == Presence.OFFLINE
