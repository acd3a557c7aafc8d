"""Every intake channel into one server (real Mosquitto and Redis): `yiwang serve` runs the
JT/T 808 gateway beside the ingest when YIWANG_JT808_PORT is set, and the ingest statistics
count what each channel accepted — MQTT, OsmAnd, JT/T 808 and IoT sensors apart."""

from __future__ import annotations

import json
import socket
import time

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient

from devices.jt808.messages import Result
from devices.jt808.terminals import Terminal
from devices.osmand import key_digest
from devices.registry import Binding
from dispatch.api.app import create_app
from dispatch.core.sensors import Sensor
from dispatch.settings import Settings
from gis.coords import LonLat
from harness.daemons import free_port
from tests.integration.helpers import bearer, mqtt_client, publish_all, wait_until
from tests.integration.test_api import api_settings
from tests.integration.test_jt808 import TestTerminal, report

PHONE = "013800138077"
TRACKER = "353861053849681"
HTTP_KEY = "a-key-for-the-tracker-long-enough"


def test_serve_runs_the_gateway_and_counts_each_channels_accepted_messages(
    broker, logins, redis_service, store, prefix, database_url
) -> None:
    now = time.time()
    store.registry.bind(
        [Binding("BC-1", "zhang3"), Binding(PHONE, "li4"), Binding(TRACKER, "wang5")]
    )
    store.registry.record_http_key(TRACKER, key_digest(HTTP_KEY), issued_at=now)
    store.terminals.save(Terminal(PHONE, auth_code="k1"))
    store.sensors.register(Sensor("SM-1", "smoke", LonLat(119.65, 29.08), now))
    port = free_port()
    settings = api_settings(broker, logins, redis_service, prefix, database_url).model_copy(
        update={"jt808_host": "127.0.0.1", "jt808_port": port, "jt808_gateway_id": prefix}
    )
    with TestClient(create_app(settings, workers=("ingest", "jt808"))) as client:
        client.headers.update(bearer(database_url))
        wait_until(lambda: client.get("/api/health").json()["jt808_listening"], 10, "the gateway")
        wait_until(lambda: client.get("/api/health").json()["ingest_connected"], 10, "ingest")
        terminal = TestTerminal(port, PHONE)
        terminal.sign_in("k1")
        assert terminal.result(report(now - 30)) is Result.SUCCESS  # answered once stored
        assert terminal.result(report(now - 20, 1)) is Result.SUCCESS
        publisher = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
        fix = {"_type": "location", "lat": 29.08, "lon": 119.65, "tst": int(now - 10)}
        reading = {"sensor_type": "smoke", "value": 0.01, "unit": "dB/m", "state": "alarm"}
        publish_all(
            publisher,
            [
                (f"{prefix}/zhang3/BC-1", json.dumps(fix).encode()),
                (f"{prefix}/iot/SM-1/alarm", json.dumps({**reading, "tst": now}).encode()),
            ],
        )
        query = f"id={TRACKER}&lat=29.08&lon=119.65&timestamp={int(now - 5)}&key={HTTP_KEY}"
        assert client.get(f"/api/osmand?{query}").status_code == 200

        def by_channel() -> dict[str, int]:
            return client.get("/api/ingest/stats").json()["accepted_by_channel"]

        wait_until(lambda: sum(by_channel().values()) == 5, 10, "five accepted messages")
        assert by_channel() == {"jt808": 2, "mqtt": 1, "iot": 1, "osmand": 1}
        assert client.get("/api/ingest/stats").json()["accepted"] == 5
        terminal.close()
        publisher.loop_stop()
    # The gateway stopped with the server.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        still_listening = True
    except OSError:
        still_listening = False
    assert not still_listening


def test_without_a_port_serve_runs_no_gateway(redis_service, prefix, database_url) -> None:
    settings = Settings(redis_url=redis_service.url, key_prefix=prefix, database_url=database_url)
    assert settings.jt808_port == 0
    with TestClient(create_app(settings, workers=("jt808",))) as client:
        assert client.get("/api/health").json()["jt808_listening"] is None
