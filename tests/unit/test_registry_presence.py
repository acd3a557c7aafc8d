"""Device bindings and presence, both pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.presence import Presence, presence
from devices.quality import Reason, Rejection
from devices.registry import Binding, RegistryFileError, UnknownDevicePolicy, load_bindings, resolve

BOUND = {"BC-0042": Binding("BC-0042", "zhang3", "wucheng-01")}
TERMINAL = BOUND["BC-0042"]


def _registry(*bindings: Binding) -> dict[str, Binding]:
    return {b.key: b for b in bindings}


def test_known_device_resolves_to_its_binding() -> None:
    assert resolve(BOUND, "zhang3", "BC-0042", UnknownDevicePolicy.QUARANTINE) == BOUND["BC-0042"]


def test_unknown_device_is_registered_as_its_pair_or_quarantined() -> None:
    auto = resolve(BOUND, "li4", "BC-9", UnknownDevicePolicy.REGISTER)
    assert auto == Binding("BC-9", "li4", "", auto=True, pair=True)
    assert auto.key == "li4/BC-9"  # never the bare serial
    refused = resolve(BOUND, "li4", "BC-9", UnknownDevicePolicy.QUARANTINE)
    assert isinstance(refused, Rejection) and refused.reason == Reason.UNKNOWN_DEVICE
    assert "yiwang devices bind li4/BC-9 --team TEAM" in refused.detail


def test_a_serial_publishing_as_another_officer_is_never_merged() -> None:
    for policy in UnknownDevicePolicy:
        refused = resolve(BOUND, "li4", "BC-0042", policy)
        assert isinstance(refused, Rejection) and refused.reason == Reason.WRONG_OFFICER


def test_officers_whose_phones_share_a_name_each_have_their_own() -> None:
    registry: dict[str, Binding] = {}
    for n in range(10):
        auto = resolve(registry, f"officer{n}", "phone", UnknownDevicePolicy.REGISTER)
        assert isinstance(auto, Binding)
        registry[auto.key] = auto
    assert sorted(registry) == [f"officer{n}/phone" for n in range(10)]
    for n in range(10):
        found = resolve(registry, f"officer{n}", "phone", UnknownDevicePolicy.QUARANTINE)
        assert found == registry[f"officer{n}/phone"] and found.officer == f"officer{n}"
    stranger = resolve(registry, "li4", "phone", UnknownDevicePolicy.QUARANTINE)
    assert isinstance(stranger, Rejection) and stranger.reason is Reason.UNKNOWN_DEVICE


def test_the_pair_is_looked_up_before_the_serial() -> None:
    pair = Binding("BC-0042", "li4", "wucheng-02", pair=True)
    registry = _registry(BOUND["BC-0042"], pair)
    assert resolve(registry, "li4", "BC-0042", UnknownDevicePolicy.QUARANTINE) == pair
    assert resolve(registry, "zhang3", "BC-0042", UnknownDevicePolicy.QUARANTINE) == TERMINAL
    refused = resolve(registry, "wang5", "BC-0042", UnknownDevicePolicy.REGISTER)
    assert isinstance(refused, Rejection) and refused.reason is Reason.WRONG_OFFICER


def test_a_pair_registered_on_sight_gives_way_to_a_serial_bound_later() -> None:
    seen = Binding("BC-0042", "li4", auto=True, pair=True)
    assert resolve(_registry(seen), "li4", "BC-0042", UnknownDevicePolicy.QUARANTINE) == seen
    registry = _registry(seen, BOUND["BC-0042"])
    refused = resolve(registry, "li4", "BC-0042", UnknownDevicePolicy.REGISTER)
    assert isinstance(refused, Rejection) and refused.reason is Reason.WRONG_OFFICER
    own = Binding("BC-0042", "zhang3", auto=True, pair=True)
    registry = _registry(own, BOUND["BC-0042"])
    assert resolve(registry, "zhang3", "BC-0042", UnknownDevicePolicy.QUARANTINE) == TERMINAL


def test_a_binding_round_trips_through_its_key() -> None:
    for binding in (BOUND["BC-0042"], Binding("phone", "li4", "t2", auto=True, pair=True)):
        assert Binding.from_json(binding.key, binding.to_json()) == binding


def test_bindings_load_from_csv_and_yaml_as_pairs_and_serials(tmp_path: Path) -> None:
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "user,device,officer,team\n,BC-1,zhang3,t1\n,BC-2,li4,\nwang5,phone,,t1\n"
        "zhao6,phone,zhao6,t2\n",
        encoding="utf-8",
    )
    yaml_file = tmp_path / "devices.yaml"
    yaml_file.write_text(
        "- {device: BC-1, officer: zhang3, team: t1}\n- {device: BC-2, officer: li4}\n"
        "- {user: wang5, device: phone, team: t1}\n- {user: zhao6, device: phone, team: t2}\n"
    )
    expected = [
        Binding("BC-1", "zhang3", "t1"),
        Binding("BC-2", "li4", ""),
        Binding("phone", "wang5", "t1", pair=True),
        Binding("phone", "zhao6", "t2", pair=True),
    ]
    assert load_bindings(csv_file) == expected
    assert load_bindings(yaml_file) == expected
    assert [b.key for b in expected] == ["BC-1", "BC-2", "wang5/phone", "zhao6/phone"]


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ("device,officer\nBC-1,\n", "entry 1: a binding needs a device and either a user"),
        ("user,device,officer\nwang5,phone,li4\n", "entry 1: .* a pair's officer is its user"),
        ("device,officer\nBC-1,zhang3\na/b,li4\n", "entry 2: device 'a/b' cannot be an MQTT"),
        ("user,device\nwang+5,phone\n", "entry 1: officer 'wang\\+5' cannot be an MQTT"),
    ],
)
def test_a_bad_bindings_file_names_the_entry(tmp_path: Path, rows: str, reason: str) -> None:
    bad = tmp_path / "devices.csv"
    bad.write_text(rows, encoding="utf-8")
    with pytest.raises(RegistryFileError, match=reason):
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
