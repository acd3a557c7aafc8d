"""The REST API over a real Redis, fed by its own ingest worker from a real broker."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient

from devices.registry import Binding
from dispatch.api.app import create_app
from dispatch.settings import Settings
from tests.integration.helpers import bearer, mqtt_client, publish_all, wait_until


def api_settings(broker, logins, redis_service, prefix, database_url) -> Settings:
    return Settings(
        redis_url=redis_service.url,
        key_prefix=prefix,
        mqtt_port=broker.port,
        **logins.settings,
        topic_root=prefix,
        ingest_name=f"api-{prefix}",
        database_url=database_url,
    )


def test_devices_tracks_and_stats(
    broker, logins, redis_service, store, prefix, database_url
) -> None:
    store.registry.bind([Binding("BC-0042", "zhang3")])
    settings = api_settings(broker, logins, redis_service, prefix, database_url)
    now = int(time.time())
    topic = f"{prefix}/zhang3/BC-0042"
    fixes = [
        (
            topic,
            json.dumps(
                {
                    "_type": "location",
                    "lat": 29.08 + n * 1e-4,
                    "lon": 119.65,
                    "tst": now - 60 + n * 10,
                }
            ).encode(),
        )
        for n in range(5)
    ]
    fixes.append((topic, b'{"_type":"location","lat":95,"lon":119.65,"tst":%d}' % now))
    with TestClient(create_app(settings, workers=("ingest",))) as client:
        client.headers.update(bearer(database_url))
        wait_until(lambda: client.get("/api/health").json()["ingest_connected"], what="ingest")
        publisher = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
        publish_all(publisher, fixes)
        wait_until(lambda: client.get("/api/ingest/stats").json()["rejected_total"] == 1)

        health = client.get("/api/health").json()
        assert health == {
            "status": "ok",
            "redis": True,
            "database": True,
            "ingest_connected": True,
            "ingest_consuming": True,
            "ingest_backlog": 0,
            "ingest_workers": [f"api-{prefix}"],
            "ingest_workers_dead": [],
            "engine_leading": None,
            "engine_inbox_waiting_s": 0.0,
            "delivery_connected": None,
            "jt808_listening": None,
        }

        listed = client.get("/api/devices").json()
        assert [(d["user"], d["device"], d["status"]) for d in listed] == [
            ("zhang3", "BC-0042", "online")
        ]

        device = client.get("/api/devices/zhang3/BC-0042").json()
        assert (device["lon"], device["lat"], device["tst"]) == (119.65, 29.0804, now - 20)
        assert device["received_at"] >= now - 20 and device["fixes_stored"] == 5
        assert device["time"].endswith("+08:00")

        window = {"from": str(now - 45), "to": str(now - 25)}
        track = client.get("/api/devices/zhang3/BC-0042/track", params=window).json()
        points = [f for f in track["features"] if f["geometry"]["type"] == "Point"]
        assert [p["properties"]["fix_at"] for p in points] == [now - 40, now - 30]
        assert track["features"][0]["geometry"]["type"] == "LineString"

        local_from = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 45 + 8 * 3600))
        by_iso = client.get(
            "/api/devices/zhang3/BC-0042/track", params={"from": local_from, "to": str(now)}
        )
        assert by_iso.json()["properties"]["points"] == 3

        stats = client.get("/api/ingest/stats").json()
        assert (stats["accepted"], stats["rejected"], stats["broker_dropped"]) == (
            5,
            {"lat_out_of_range": 1},
            0,
        )
        assert stats["lag_s"] is not None and stats["lag_s"] < 5
        assert stats["most_rejected"] == [
            {"device": "zhang3/BC-0042", "reason": "lat_out_of_range", "count": 1}
        ]

        letters = client.get("/api/ingest/deadletters").json()
        assert letters[0]["reason"] == "lat_out_of_range" and '"lat":95' in letters[0]["payload"]

        assert client.get("/api/devices/nobody/none").status_code == 404
        bad = client.get("/api/devices/zhang3/BC-0042/track", params={"from": "yesterday"})
        assert bad.status_code == 422 and "ISO 8601" in bad.json()["detail"]
        assert client.get("/openapi.json").status_code == 200
        publisher.loop_stop()


def test_health_reports_an_inbox_nobody_consumes(
    broker, logins, redis_service, store, prefix, database_url
) -> None:
    settings = api_settings(broker, logins, redis_service, prefix, database_url)
    with TestClient(create_app(settings, workers=("ingest",))) as client:
        wait_until(lambda: client.get("/api/health").json()["ingest_consuming"], what="ingest")
        assert client.get("/api/health").json()["status"] == "ok"
        # An entry a minute old that no engine has taken: the engine is not consuming.
        written_ms = int(time.time() * 1000) - 60_000
        store.redis.xadd(store.keys.inbox, {"kind": "conn", "body": "{}"}, id=f"{written_ms}-0")
        health = client.get("/api/health").json()
    assert health["status"] == "degraded" and health["ingest_consuming"] is True
    assert 60 <= health["engine_inbox_waiting_s"] < 70


def test_pages_and_bundle_are_served_from_the_screens_dir(
    broker, logins, redis_service, prefix, database_url, tmp_path
) -> None:
    # An installed package has no frontend/ beside it: the image points YIWANG_SCREENS_DIR at
    # the bundle it copied in, and both the pages and /static must come from there.
    bundle = tmp_path / "screens"
    bundle.mkdir()
    (bundle / "login.html").write_text("<title>login from the image</title>", encoding="utf-8")
    (bundle / "login.js").write_text("export const bundled = 1;", encoding="utf-8")
    settings = api_settings(broker, logins, redis_service, prefix, database_url)
    with TestClient(
        create_app(settings.model_copy(update={"screens_dir": bundle}), workers=())
    ) as client:
        login = client.get("/login")
        assert login.status_code == 200 and "login from the image" in login.text
        script = client.get("/static/login.js")
        assert script.status_code == 200 and script.text == "export const bundled = 1;"

    missing = settings.model_copy(update={"screens_dir": tmp_path / "not-built"})
    with TestClient(create_app(missing, workers=())) as client:
        refused = client.get("/login")
        assert client.get("/static/login.js").status_code == 404
    assert refused.status_code == 503
    assert "YIWANG_SCREENS_DIR" in refused.json()["detail"]
    assert str(tmp_path / "not-built" / "login.html") in refused.json()["detail"]
