"""A device is (user, device), over a real Mosquitto and Redis: officers whose phones share a
name are stored and verified apart, with broker accounts of their own; a terminal serial still
belongs to its officer; a quarantined center admits an imported pair; and a registry that
bound devices by serial alone is upgraded in place."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import paho.mqtt.client as mqtt
import pytest

from devices.registry import Binding, CredentialRecord, UnknownDevicePolicy
from dispatch.cli import main as yiwang
from dispatch.core.track import DeviceKey, verify_chain
from tests.conftest import ingest_config
from tests.integration.helpers import mqtt_client, publish_all, verdicts, wait_until
from tests.integration.test_broker_auth import NOT_AUTHORIZED, Session

OFFICERS = [f"officer{n:02d}" for n in range(10)]


def location(tst: float, lat: float = 29.08) -> bytes:
    return json.dumps({"_type": "location", "lat": lat, "lon": 119.65, "tst": int(tst)}).encode()


@pytest.fixture
def cli_env(broker, logins, redis_service, prefix, tmp_path, monkeypatch) -> None:
    """The `yiwang` CLI pointed at this test's Redis keys, broker root and data folder."""
    environment = {
        "redis_url": redis_service.url,
        "key_prefix": prefix,
        "topic_root": prefix,
        "mqtt_port": str(broker.port),
        "data_dir": str(tmp_path / "var"),
        **logins.settings,
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"YIWANG_{name.upper()}", value)


def test_ten_officers_whose_phones_are_all_named_phone_are_stored_and_verified_apart(
    broker, logins, store, prefix, start_ingest, cli_env, capsys
) -> None:
    start_ingest()
    now = time.time()
    # Each officer's phone reports 12 fixes; every officer's track is a little further north.
    messages = [
        (f"{prefix}/{officer}/phone", location(now - 60 + n, lat=29.08 + i * 1e-3 + n * 1e-6))
        for n in range(12)
        for i, officer in enumerate(OFFICERS)
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, messages)
    wait_until(lambda: verdicts(store) == len(messages), what="a verdict for every fix")
    client.loop_stop()
    assert store.ingest.stats().get("accepted") == len(messages), store.ingest.deadletters()
    # Registered as ten pairs; the bare name `phone` is nobody's.
    bindings = store.registry.bindings()
    assert sorted(bindings) == [f"{officer}/phone" for officer in OFFICERS]
    assert all(b.auto and b.pair for b in bindings.values())
    heads = set()
    for i, officer in enumerate(OFFICERS):
        dev = DeviceKey(f"{officer}/phone")
        links = [link for _, link, _ in store.tracks.chain_links(dev)]
        assert len(links) == 12
        assert {round(json.loads(link.canonical)["lat"], 3) for link in links} == {
            round(29.08 + i * 1e-3, 3)
        }
        heads.add(verify_chain(dev, links))
        assert yiwang(["devices", "verify", dev]) == 0
        assert f"OK {dev}: 12 links" in capsys.readouterr().out
    assert len(heads) == len(OFFICERS)  # ten chains, not one
    assert sorted(store.officer_positions(now=now, stale_after_s=60, offline_after_s=300)) == (
        OFFICERS
    )
    assert store.registry.devices_of("officer03") == ["phone"]


def test_two_phones_of_one_name_get_broker_accounts_of_their_own(
    broker, store, prefix, start_ingest, cli_env, capsys
) -> None:
    passwords = {}
    for officer in ("zhang3", "li4"):
        command = ["devices", "bind", f"{officer}/phone", "--team", "t1", "--issue-credentials"]
        assert yiwang(command) == 0
        printed = capsys.readouterr().out
        assert f"pubTopicBase {prefix}/{officer}/phone" in printed
        assert f"username  {officer}/phone" in printed
        passwords[officer] = next(
            line.split()[1] for line in printed.splitlines() if "password " in line
        )
        assert store.registry.credentials(f"{officer}/phone").officer == officer
    start_ingest(replace(ingest_config(prefix), unknown_devices=UnknownDevicePolicy.QUARANTINE))
    now = time.time()
    zhang3 = Session(broker.port, f"{prefix}-z", ("zhang3/phone", passwords["zhang3"]))
    li4 = Session(broker.port, f"{prefix}-l", ("li4/phone", passwords["li4"]))
    assert zhang3.publish(f"{prefix}/zhang3/phone", location(now - 2)).value == 0
    assert li4.publish(f"{prefix}/li4/phone", location(now - 1, lat=29.09)).value == 0
    assert zhang3.publish(f"{prefix}/li4/phone", location(now)).value == NOT_AUTHORIZED
    wait_until(lambda: verdicts(store) == 2, what="both phones' fixes")
    assert store.ingest.stats() == {"accepted": 2}
    assert float(store.tracks.device_record("li4/phone")["lat"]) == 29.09
    # Revoking one phone leaves the other connected.
    assert yiwang(["devices", "revoke-credentials", "li4/phone"]) == 0
    wait_until(lambda: li4.disconnects, 5, "the broker to close the revoked session")
    assert zhang3.publish(f"{prefix}/zhang3/phone", location(now + 1)).value == 0
    zhang3.close()
    li4.close()


def test_a_terminal_serial_bound_to_one_officer_is_refused_under_another(
    broker, logins, store, prefix, start_ingest
) -> None:
    store.registry.bind([Binding("BC-0042", "zhang3", "wucheng-01")])
    start_ingest()  # registering unknown devices on sight, which must not take this serial
    now = time.time()
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(
        client,
        [
            (f"{prefix}/zhang3/BC-0042", location(now - 2)),
            (f"{prefix}/li4/BC-0042", location(now - 1)),
        ],
    )
    wait_until(lambda: verdicts(store) == 2)
    client.loop_stop()
    assert store.ingest.stats() == {"accepted": 1, "rejected:wrong_officer": 1}
    (letter,) = store.ingest.deadletters()
    assert letter["device"] == "li4/BC-0042"
    assert letter["detail"] == (
        "device 'BC-0042' is bound to officer 'zhang3' but published as 'li4'"
    )
    assert sorted(store.registry.bindings()) == ["BC-0042"]


def test_a_quarantined_center_accepts_a_pair_imported_from_csv(
    broker, logins, store, prefix, start_ingest, cli_env, tmp_path, capsys
) -> None:
    roster = tmp_path / "devices.csv"
    roster.write_text("user,device,team\nwang5,phone,wucheng-02\n", encoding="utf-8")
    assert yiwang(["devices", "import", str(roster)]) == 0
    assert yiwang(["devices", "list"]) == 0
    assert "wang5/phone\twang5\twucheng-02" in capsys.readouterr().out
    # A pair's officer is its user; a serial needs its officer.
    assert yiwang(["devices", "bind", "wang5/phone", "--officer", "zhao6"]) == 1
    assert "a pair's officer is its user" in capsys.readouterr().err
    assert yiwang(["devices", "bind", "BC-9"]) == 1
    assert "either a user (a pair) or an officer" in capsys.readouterr().err
    assert sorted(store.registry.bindings()) == ["wang5/phone"]
    start_ingest(replace(ingest_config(prefix), unknown_devices=UnknownDevicePolicy.QUARANTINE))
    now = time.time()
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(
        client,
        [
            (f"{prefix}/wang5/phone", location(now - 2)),
            (f"{prefix}/zhao6/phone", location(now - 1)),  # the same name, another user
        ],
    )
    wait_until(lambda: verdicts(store) == 2)
    client.loop_stop()
    assert store.ingest.stats() == {"accepted": 1, "rejected:unknown_device": 1}
    (letter,) = store.ingest.deadletters()
    assert letter["device"] == "zhao6/phone"
    assert "yiwang devices bind zhao6/phone --team TEAM" in letter["detail"]
    assert store.tracks.officers_near("wucheng-02", 119.65, 29.08, 100) == ["wang5"]


def test_devices_registered_by_serial_alone_become_pairs_once(
    broker, logins, store, prefix, start_ingest
) -> None:
    # As the registry stored them before it knew pairs: every field a bare serial.
    old = {
        "car": {"officer": "taxi1", "team": "", "auto": True},
        "BC-0042": {"officer": "zhang3", "team": "wucheng-01", "auto": False},
        "phone": {"officer": "li4", "team": "", "auto": True},
    }
    store.redis.hset(store.keys.registry, mapping={k: json.dumps(v) for k, v in old.items()})
    record = CredentialRecord("phone", "phone", "li4", issued_at=1_700_000_000.0)
    store.registry.record_credentials(record)
    # li4 had also been bound as a pair by hand: that binding is kept as it is.
    store.registry.bind([Binding("phone", "li4", "wucheng-03", pair=True)])

    store.upgrade()
    after = store.registry.bindings()
    assert after == {
        "taxi1/car": Binding("car", "taxi1", auto=True, pair=True),
        "BC-0042": Binding("BC-0042", "zhang3", "wucheng-01"),
        "li4/phone": Binding("phone", "li4", "wucheng-03", pair=True),
    }
    moved = store.registry.credentials("li4/phone")
    assert (moved.username, moved.officer) == ("phone", "li4")
    assert store.registry.credentials("phone") is None
    store.upgrade()  # a second start, or a second worker: nothing more to do
    assert store.registry.upgrade() == 0
    assert store.registry.bindings() == after

    # Every vehicle's `car` now gets in; the serial terminal still belongs to zhang3.
    start_ingest()
    now = time.time()
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    cars = [(f"{prefix}/taxi{n}/car", location(now - 5 + n)) for n in range(1, 4)]
    publish_all(client, [*cars, (f"{prefix}/li4/BC-0042", location(now))])
    wait_until(lambda: verdicts(store) == 4)
    client.loop_stop()
    assert store.ingest.stats() == {"accepted": 3, "rejected:wrong_officer": 1}
    assert sorted(k for k in store.registry.bindings() if k.endswith("/car")) == [
        "taxi1/car",
        "taxi2/car",
        "taxi3/car",
    ]


def test_a_recorded_feed_whose_vehicles_all_publish_as_car_replays_into_separate_devices(
    broker, store, prefix, start_ingest, cli_env, tmp_path, capsys
) -> None:
    # Three vehicles recorded weeks apart (beyond the center's horizon), each as `{vehicle}/car`.
    feed = tmp_path / "fleet.csv"
    rows = ["user,device,time,lon,lat"]
    for n in range(1, 4):
        ends = time.time() - n * 10 * 86400
        rows += [
            f"taxi{n},car,{ends - 40 + 10 * k:.0f},119.65,{29.08 + n * 1e-3 + k * 1e-5:.6f}"
            for k in range(5)
        ]
    feed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    start_ingest()
    command = ["replay", "csv", str(feed), "--align", "--client-per-device"]
    assert yiwang(command) == 0
    assert "published 15 fixes of 3 devices" in capsys.readouterr().out
    wait_until(lambda: verdicts(store) == 15, what="a verdict for every replayed fix")
    # Each recording was moved to end now on its own, so none is too old to keep.
    assert store.ingest.stats() == {"accepted": 15}, store.ingest.deadletters()
    assert sorted(store.registry.bindings()) == ["taxi1/car", "taxi2/car", "taxi3/car"]
    for n in range(1, 4):
        dev = DeviceKey(f"taxi{n}/car")
        links = [link for _, link, _ in store.tracks.chain_links(dev)]
        assert len(links) == 5
        verify_chain(dev, links)
        assert abs(int(store.tracks.device_record(dev)["fix_at"]) - time.time()) < 60
