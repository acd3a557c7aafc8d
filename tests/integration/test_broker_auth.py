"""Who may publish and subscribe, over a real Mosquitto with its dynamic-security plugin: a
device only under its own topics, a revoked device and an anonymous client not at all; and
what the ingest still refuses or bounds when a trusted account sends it junk."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.reasoncodes import ReasonCode

from devices.registry import Binding, UnknownDevicePolicy
from dispatch.api.app import create_app
from dispatch.cli import main as yiwang
from dispatch.settings import Settings
from gis.service_area import box_area
from tests.conftest import ingest_config
from tests.integration.helpers import mqtt_client, publish_all, verdicts, wait_until
from tests.owntracks_fixtures import ACCEPTED

WORLD = box_area(-180.0, -90.0, 180.0, 90.0)
NOT_AUTHORIZED = 135  # MQTT 5 reason code in PUBACK, SUBACK and CONNACK


class Session:
    """An MQTT 5 client that records every acknowledgement's reason code."""

    def __init__(self, port: int, client_id: str, login: tuple[str, str] | None) -> None:
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: list[list[ReasonCode]] = []
        self.connack: ReasonCode | None = None
        self.disconnects: list[ReasonCode] = []
        self.answered = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if login is not None:
            client.username_pw_set(*login)
        client.on_connect = self._on_connect
        client.on_publish = lambda c, u, mid, reason, p: self.acks.__setitem__(mid, reason)
        client.on_subscribe = lambda c, u, mid, reasons, p: self.subacks.append(reasons)
        client.on_disconnect = lambda c, u, f, reason, p: self.disconnects.append(reason)
        # One try: a refused client must stay refused, not reconnect in the background.
        client.reconnect_delay_set(60, 60)
        self.client = client
        client.connect("127.0.0.1", port, keepalive=30)
        client.loop_start()
        wait_until(self.answered.is_set, 10, "a CONNACK")

    def _on_connect(self, c: mqtt.Client, u: object, f: object, reason: ReasonCode, p: object):
        self.connack = reason
        self.answered.set()

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.acks, 10, f"PUBACK for {topic}")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> ReasonCode:
        count = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        wait_until(lambda: len(self.subacks) > count, 10, f"SUBACK for {topic}")
        return self.subacks[-1][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def location(tst: float, lat: float = 29.08) -> bytes:
    return json.dumps({"_type": "location", "lat": lat, "lon": 119.65, "tst": int(tst)}).encode()


def test_a_device_publishes_and_reads_only_its_own_topics(
    broker, logins, store, prefix, start_ingest
) -> None:
    device = f"BC-{prefix}"
    store.registry.bind([Binding(device, "zhang3", "wucheng-01")])
    start_ingest()
    session = Session(broker.port, f"{prefix}-bc", logins.device(device, "zhang3"))
    own = f"{prefix}/zhang3/{device}"
    now = time.time()
    assert session.publish(own, location(now - 2)).value == 0
    assert session.publish(f"{own}/hb", b'{"_type":"devstat","tst":%d}' % now).value == 0
    for foreign in (
        f"{prefix}/li4/{device}",  # another officer's name
        f"{prefix}/zhang3/BC-other",  # a teammate's device
        f"{own}/dispatch",  # the center's downlinks are not the device's to write
        f"{own}/cmd",
        f"{own}/a/b",
    ):
        assert session.publish(foreign, location(now - 1)).value == NOT_AUTHORIZED, foreign
    for refused in ("#", f"{prefix}/#", f"{prefix}/zhang3/BC-other/dispatch", f"{own}/ack"):
        assert session.subscribe(refused).value == NOT_AUTHORIZED, refused
    assert session.subscribe(f"{own}/dispatch").value == 1
    assert session.subscribe(f"{own}/cmd").value == 1
    wait_until(lambda: verdicts(store) == 2, what="verdicts for the two allowed messages")
    time.sleep(0.5)  # nothing else arrives late
    assert store.ingest.stats() == {"accepted": 2, "msg:devstat": 1}
    assert store.ingest.deadletters() == []
    session.close()


def test_owntracks_fixtures_published_with_issued_credentials_are_stored(
    broker, logins, store, prefix, start_ingest
) -> None:
    start_ingest(ingest_config(prefix, max_age_s=20 * 365 * 86400.0, service_area=WORLD))
    store.registry.bind([Binding(name, "jane") for name in ACCEPTED])
    for name, payload in ACCEPTED.items():
        client = mqtt_client(
            broker.port, f"{prefix}-{name}", mqtt.MQTTv31, logins.device(name, "jane")
        )
        publish_all(client, [(f"{prefix}/jane/{name}", payload)])
        client.disconnect()
        client.loop_stop()
    wait_until(lambda: verdicts(store) == len(ACCEPTED), what="a verdict for every fixture")
    assert store.ingest.stats()["accepted"] == len(ACCEPTED)
    assert store.tracks.device_record("jane/location-5s")["fix_at"] == "1701263310"


def test_revoked_device_is_disconnected_and_refused_and_anonymous_never_gets_in(
    broker, logins, redis_service, store, prefix, monkeypatch, capsys
) -> None:
    environment = {
        "redis_url": redis_service.url,
        "key_prefix": prefix,
        "topic_root": prefix,
        "mqtt_port": str(broker.port),
        **logins.settings,
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"YIWANG_{name.upper()}", value)
    device = f"BC-{prefix}"
    # The CLI binds, issues and prints the credentials once, with the OwnTracks settings.
    assert yiwang(["devices", "bind", device, "--officer", "li4", "--issue-credentials"]) == 0
    printed = capsys.readouterr().out
    password = next(line.split()[1] for line in printed.splitlines() if "password " in line)
    assert f"pubTopicBase {prefix}/li4/{device}" in printed
    assert store.registry.credentials(device).officer == "li4"

    session = Session(broker.port, f"{prefix}-bc", (device, password))
    assert session.connack.value == 0
    assert yiwang(["devices", "revoke-credentials", device]) == 0
    wait_until(lambda: session.disconnects, 5, "the broker to close the revoked session")
    session.close()
    assert store.registry.credentials(device).revoked_at is not None

    again = Session(broker.port, f"{prefix}-bc2", (device, password))
    assert again.connack.value == NOT_AUTHORIZED
    again.close()
    anonymous = Session(broker.port, f"{prefix}-anon", None)
    assert anonymous.connack.value == NOT_AUTHORIZED
    anonymous.close()


def test_ingest_rejects_a_topic_that_does_not_match_the_binding(
    broker, logins, store, prefix, start_ingest
) -> None:
    # The simulator's account may publish anywhere under the root: the ingest checks again.
    store.registry.bind([Binding("BC-1", "zhang3", "wucheng-01")])
    start_ingest(replace(ingest_config(prefix), unknown_devices=UnknownDevicePolicy.QUARANTINE))
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
    publish_all(client, [(f"{prefix}/li4/BC-1", location(time.time() - 1))])
    wait_until(lambda: verdicts(store) == 1)
    assert store.ingest.stats() == {"rejected:wrong_officer": 1}
    (letter,) = store.ingest.deadletters()
    assert letter["detail"] == "device 'BC-1' is bound to officer 'zhang3' but published as 'li4'"
    assert store.ingest.rejected_by_device() == {"li4/BC-1|wrong_officer": 1}
    client.loop_stop()


def test_a_device_registered_on_sight_spends_one_registration_not_one_a_message(
    broker, logins, store, prefix, start_ingest
) -> None:
    start_ingest(replace(ingest_config(prefix), registrations_per_min=5))
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    now = time.time()
    fixes = [(f"{prefix}/u{d}/phone", location(now - 40 + n)) for n in range(30) for d in range(5)]
    publish_all(client, fixes)
    wait_until(lambda: verdicts(store) == 150, what="a verdict for every fix")
    assert store.ingest.stats()["accepted"] == 150
    client.loop_stop()


def test_junk_and_invented_devices_grow_redis_only_so_far(
    broker, logins, store, prefix, start_ingest
) -> None:
    start_ingest(replace(ingest_config(prefix), registrations_per_min=5))
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    now = time.time()
    junk = [(f"{prefix}/zhang3/BC-1", b'{"_type":"location","lat":%d' % n) for n in range(600)]
    invented = [(f"{prefix}/u{n}/fake{n}", location(now - 1)) for n in range(20)]
    long_topic = [(f"{prefix}/{'x' * 30_000}/d", location(now - 1))]
    publish_all(client, junk + invented + long_topic)
    wait_until(lambda: verdicts(store) == 621, what="a verdict for every message")
    stats = store.ingest.stats()
    assert stats["rejected:malformed_json"] == 600
    assert (stats["accepted"], stats["rejected:registration_limit"]) == (5, 15)
    assert len(store.registry.bindings()) == 5
    assert stats["rejected:bad_topic"] == 1
    letters = store.ingest.deadletters(10_000)
    # 500 dead letters a device an hour; beyond that a rejection is only counted.
    assert sum(d["device"] == "zhang3/BC-1" for d in letters) == 500
    assert stats["deadletters_dropped"] == 100
    (bad,) = [d for d in letters if d["reason"] == "bad_topic"]
    assert len(bad["topic"]) < 300 and len(bad["detail"]) < 600
    client.loop_stop()


def test_health_is_degraded_while_delivery_cannot_log_in(
    broker, logins, redis_service, prefix, database_url
) -> None:
    settings = Settings(
        redis_url=redis_service.url,
        database_url=database_url,
        key_prefix=prefix,
        mqtt_port=broker.port,
        topic_root=prefix,
        **{**logins.settings, "delivery_mqtt_password": "wrong"},
    )
    with TestClient(create_app(settings, workers=("delivery",))) as client:
        time.sleep(1.0)
        health = client.get("/api/health").json()
    assert health["status"] == "degraded" and health["delivery_connected"] is False
