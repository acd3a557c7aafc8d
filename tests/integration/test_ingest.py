"""Ingest over a real Mosquitto into a real Redis: every client gets through, junk gets a
reason, duplicates and late fixes are handled, and nothing is lost when Redis dies."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import paho.mqtt.client as mqtt
import pytest

from devices import mqttwire
from devices.batch import BatchWriter
from devices.ingest import IngestWorker
from devices.registry import Binding, UnknownDevicePolicy
from dispatch.core.track import DeviceKey, verify_chain
from gis.service_area import box_area
from harness.center import center_accounts
from harness.daemons import ManagedMosquitto
from simulators.load import RawPublisher, payload
from tests.conftest import Logins, RunningIngest, ingest_config, session_left_behind
from tests.integration.helpers import mqtt_client, publish_all, verdicts, wait_until
from tests.owntracks_fixtures import ACCEPTED, REJECTED, TRANSITION

WORLD = box_area(-180.0, -90.0, 180.0, 90.0)


def location(tst: float, lat: float = 29.08, lon: float = 119.65, **extra) -> bytes:
    return json.dumps(
        {"_type": "location", "lat": lat, "lon": lon, "tst": int(tst), **extra}
    ).encode()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5])
def test_owntracks_fixtures_accepted_and_negatives_rejected(
    broker, logins, store, prefix, start_ingest, protocol
) -> None:
    # The fixtures were recorded in Europe in 2015-2023: widen the horizon and service area.
    start_ingest(ingest_config(prefix, max_age_s=20 * 365 * 86400.0, service_area=WORLD))
    messages = [(f"{prefix}/jane/{name}", payload) for name, payload in ACCEPTED.items()]
    messages.append((f"{prefix}/jane/phone/event", TRANSITION))
    messages += [
        (f"{prefix}/jane/phone{'/' + suffix if suffix else ''}", payload)
        for _name, suffix, payload, _reason in REJECTED
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", protocol, logins.simulator)
    publish_all(client, messages)
    wait_until(lambda: verdicts(store) == len(messages), what="a verdict for every fixture")
    stats = store.ingest.stats()
    assert stats["accepted"] == len(ACCEPTED) + 1
    assert stats["msg:lwt"] == 2 and stats["msg:transition"] == 1
    expected_reasons = sorted(reason for *_, reason in REJECTED)
    assert sorted(d["reason"] for d in store.ingest.deadletters()) == expected_reasons
    record = store.tracks.device_record("jane/location-5s")
    assert (float(record["lon"]), float(record["lat"]), int(record["fix_at"])) == (
        5.112126,
        53.430722,
        1701263310,
    )
    assert [e["kind"] for e in store.incidents.inbox_entries()] == ["lwt", "lwt", "transition"]
    client.loop_stop()


def test_duplicates_backfill_and_bad_values_each_get_their_verdict(
    broker, logins, store, prefix, start_ingest
) -> None:
    start_ingest()
    now = time.time()
    topic = f"{prefix}/zhang3/BC-0042"
    messages = [
        (topic, location(now - 30, acc=5)),
        (topic, location(now - 30, acc=5)),  # redelivered copy
        (topic, location(now - 20, lat=29.0801)),
        (topic, location(now - 60, lat=29.0799)),  # arrives late: backfill
        (topic, location(now - 10, lat=29.5)),  # 46 km in 10 s
        (topic, location(now - 5, lat=0, lon=0)),
        (topic, location(now * 1000)),  # milliseconds
        (topic, b'{"_type":"location","lat":29.1'),
        (topic, b'{"_type":"location","lat":29.1'),  # the same junk again: one verdict each
        (topic, location(now - 3, lat=29.0802, crs="gcj02")),
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, messages)
    wait_until(lambda: verdicts(store) == len(messages))
    stats = store.ingest.stats()
    assert (stats["accepted"], stats["backfill"]) == (4, 1)
    assert (stats["rejected:malformed_json"], stats["rejected:duplicate"]) == (1, 2)
    assert {d["reason"] for d in store.ingest.deadletters()} == {
        "duplicate",
        "implausible_jump",
        "zero_coordinate",
        "tst_in_future",
        "malformed_json",
    }
    dev = DeviceKey("zhang3/BC-0042")
    record = store.tracks.device_record(dev)
    assert int(record["fix_at"]) == int(now - 3)  # the backfilled fix never became live
    assert float(record["lon"]) < 119.65  # GCJ-02 input converted back to WGS-84
    links = [link for _, link, _ in store.tracks.chain_links(dev)]
    assert len(links) == 4
    assert verify_chain(dev, links) == record["head"]
    assert [flag for *_, flag in store.tracks.chain_links(dev)] == [False, False, True, False]
    # Screens see live positions only: never the backfilled one.
    shown = [
        p for e in store.recent_events() if e["type"] == "positions" for p in json.loads(e["body"])
    ]
    assert sorted(p[3] for p in shown) == [int(now - 30), int(now - 20), int(now - 3)]
    client.loop_stop()


def test_registry_quarantines_unknown_devices_and_never_merges(
    broker, logins, store, prefix, start_ingest
) -> None:
    store.registry.bind([Binding("BC-1", "zhang3", "wucheng-01")])
    config = replace(ingest_config(prefix), unknown_devices=UnknownDevicePolicy.QUARANTINE)
    start_ingest(config)
    now = time.time()
    messages = [
        (f"{prefix}/zhang3/BC-1", location(now - 2)),
        (f"{prefix}/li4/BC-1", location(now - 1)),
        (f"{prefix}/li4/BC-2", location(now - 1)),
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
    publish_all(client, messages)
    wait_until(lambda: verdicts(store) == 3)
    assert store.ingest.stats()["accepted"] == 1
    assert sorted(d["reason"] for d in store.ingest.deadletters()) == [
        "unknown_device",
        "wrong_officer",
    ]
    assert store.tracks.officers_near("wucheng-01", 119.65, 29.08, 100) == ["zhang3"]
    client.loop_stop()


def test_presence_clips_and_sos_are_routed(broker, logins, store, prefix, start_ingest) -> None:
    start_ingest()
    now = time.time()
    base = f"{prefix}/zhang3/BC-0042"
    clip = {"_type": "clip", "clip_id": "BC-0042-0001", "start": int(now) - 120, "end": int(now)}
    messages = [
        (base, location(now - 1)),
        (f"{base}/clip", json.dumps(clip).encode()),
        (
            f"{base}/sos",
            json.dumps({"_type": "sos", "tst": int(now), "alarm": "fallDown"}).encode(),
        ),
        (
            f"{base}/hb",
            json.dumps({"_type": "devstat", "tst": int(now), "batt": 41, "rec": True}).encode(),
        ),
        (f"{base}/conn", json.dumps({"_type": "conn", "online": False, "tst": int(now)}).encode()),
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, messages)
    wait_until(lambda: verdicts(store) == len(messages))
    assert store.clips.clip("BC-0042-0001")["end"] == int(now)
    assert store.clips.clip_ids_for_officer("zhang3", now - 200, now) == ["BC-0042-0001"]
    assert [e["kind"] for e in store.incidents.inbox_entries()] == ["sos", "conn"]
    assert store.tracks.connection("zhang3/BC-0042")["online"] is False
    client.loop_stop()


def test_redis_killed_mid_stream_loses_nothing(
    broker, logins, redis_service, store, prefix, start_ingest
) -> None:
    running = start_ingest()
    now = time.time()
    first = [
        (f"{prefix}/u{n % 20}/d{n % 20}", location(now - 300 + n // 20, lat=29.08 + n * 1e-6))
        for n in range(2000)
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, first)
    wait_until(lambda: verdicts(store) == 2000)
    redis_service.kill()
    second = [
        (f"{prefix}/u{n % 20}/d{n % 20}", location(now - 100 + n // 20, lat=29.09 + n * 1e-6))
        for n in range(2000)
    ]
    publish_all(client, second)  # the broker takes them while Redis is down
    redis_service.start()
    store.load_functions()
    wait_until(lambda: verdicts(store) == 4000, timeout_s=60, what="ingest to recover")
    assert store.ingest.stats()["accepted"] == 4000
    for n in range(20):
        dev = DeviceKey(f"u{n}/d{n}")
        links = [link for _, link, _ in store.tracks.chain_links(dev)]
        assert len(links) == 200
        verify_chain(dev, links)
    assert running.worker.connected.is_set()
    client.loop_stop()


def test_ingest_over_mqtt_311_for_brokers_without_version_5(
    broker, logins, store, prefix, start_ingest
) -> None:
    running = start_ingest(protocol=mqttwire.MQTT_311)
    assert running.worker.session.protocol == mqttwire.MQTT_311
    now = time.time()
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
    publish_all(
        client,
        [(f"{prefix}/zhang3/BC-7", location(now - n, lat=29.08 + n * 1e-5)) for n in range(5)],
    )
    wait_until(lambda: verdicts(store) == 5)
    assert (store.ingest.stats()["accepted"], store.ingest.stats()["backfill"]) == (5, 4)
    client.loop_stop()


def test_load_generator_publishes_at_qos_1_and_counts_every_puback(broker, logins, prefix) -> None:
    received: list[tuple[str, bytes]] = []
    subscriber = mqtt_client(broker.port, f"{prefix}-sub", mqtt.MQTTv311, logins.simulator)
    subscriber.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    subscriber.subscribe(f"{prefix}/#", qos=1)
    time.sleep(0.3)
    publisher = RawPublisher("127.0.0.1", broker.port, f"{prefix}-raw", logins.simulator)
    for k in range(2_000):
        publisher.publish(
            f"{prefix}/load{k:05d}/load{k:05d}".encode(), payload(k, 1_795_000_000, 0)
        )
    wait_until(lambda: publisher.acknowledged == 2_000, 10, "every PUBACK")
    publisher.close()
    wait_until(lambda: len(received) == 2_000, 10, "every message delivered")
    subscriber.loop_stop()
    topic, body = received[1234]
    assert topic == f"{prefix}/load01234/load01234"
    assert json.loads(body)["tst"] == 1_795_000_000


def test_a_lagging_ingest_shows_each_devices_newest_fix_first_and_stores_the_rest_once(
    broker, logins, store, prefix, start_ingest
) -> None:
    config = replace(ingest_config(prefix), batch_max=100, live_after_s=0.0)
    session_left_behind(logins.worker("ingest"), prefix, f"ingest-{prefix}")
    now = time.time()
    devices, per_device = 40, 50
    queued = [
        (f"{prefix}/u{d}/d{d}", location(now - per_device + step, lat=29.08 + step * 1e-5))
        for step in range(per_device)
        for d in range(devices)
    ]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, queued)
    client.loop_stop()

    running = start_ingest(config)  # 2,000 messages waiting: far more than one batch
    wait_until(lambda: verdicts(store) == len(queued), what="the backlog stored")
    stats = store.ingest.stats()
    assert stats["accepted"] == len(queued)
    newest = int(now) - 1
    live_rows = [
        row
        for _, fields in store.redis.xrange(store.keys.positions)
        for row in json.loads(fields["body"])
    ]
    # In arrival order every fix would have been live (2,000 rows); carried ahead, the
    # newest of each device came first and most older fixes were stored as backfill.
    assert len(live_rows) < len(queued) / 4
    assert stats["backfill"] == len(queued) - len(live_rows)
    assert running.worker.backlog.carried_ahead >= devices
    for d in range(devices):
        dev = DeviceKey(f"u{d}/d{d}")
        assert int(store.tracks.device_record(dev)["fix_at"]) == newest
        mine = [row[3] for row in live_rows if row[0] == dev]
        assert mine == sorted(mine) and mine[-1] == newest
        links = [link for _, link, _ in store.tracks.chain_links(dev)]
        assert len(links) == per_device
        verify_chain(dev, links)
    assert store.ingest.backlog() is not None  # reported with each batch


def test_a_broker_restarted_without_its_sessions_gets_the_ingests_subscriptions_again(
    tmp_path, store, prefix
) -> None:
    broker = ManagedMosquitto(tmp_path / "mosquitto")  # this test's own, to kill
    broker.start()
    try:
        logins = Logins(broker, prefix, center_accounts(broker, prefix, prefix))
        worker = IngestWorker(
            BatchWriter(store.ingest, ingest_config(prefix)),
            broker=logins.worker("ingest"),
            name=f"ingest-{prefix}",
            roll=store.members,
            session_expiry_s=600,
        )
        running = RunningIngest(worker)
        broker.kill()  # SIGKILL: the broker saves nothing, the ingest's session is gone
        wait_until(lambda: not worker.connected.is_set(), what="the ingest to notice")
        broker.start()  # its accounts are in the dynamic-security file and survive
        wait_until(worker.connected.is_set, timeout_s=30, what="the ingest back")
        now = time.time()
        client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
        publish_all(client, [(f"{prefix}/u1/d1", location(now - n)) for n in range(20, 0, -1)])
        client.loop_stop()
        wait_until(lambda: verdicts(store) == 20, what="the fixes published after the restart")
        assert store.ingest.stats()["accepted"] == 20
        running.stop()
    finally:
        broker.stop()
