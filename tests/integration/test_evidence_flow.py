"""A simulated incident end to end, then its evidence: the officer's track (half sealed in
the archive, half live) and the body-cam clip the simulator recorded are in the package, it
verifies, and changing one coordinate anywhere makes it fail. Sealed segments hold up to the
same tampering."""

from __future__ import annotations

import io
import json
import time
import zipfile

import geopandas
import paho.mqtt.client as mqtt
import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from devices.registry import Binding
from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.core.track import DeviceKey
from dispatch.evidence.archive import full_track, seal_due, verify_archive, verify_segment
from dispatch.evidence.verify import verify_package
from dispatch.settings import Settings
from dispatch.store import Store
from simulators.bodycam import clip_message, record_clip
from tests.integration.helpers import bearer, mqtt_client, wait_until
from tests.integration.test_terminal_flow import INCIDENT, M_LAT, POLICY, city_files, incident_of


def test_incident_package_holds_track_and_clip_and_detects_tampering(
    broker, logins, redis_service, store: Store, prefix, tmp_path, database_url
) -> None:
    areas, roster = city_files(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"default": POLICY}))
    settings = Settings(
        areas_file=areas, roster_file=roster, redis_url=redis_service.url, key_prefix=prefix,
        mqtt_port=broker.port, **logins.settings, topic_root=prefix, policy_file=policy, engine_id=f"engine-{prefix}",
        ingest_name=f"ingest-{prefix}", engine_lease_ms=3000, data_dir=tmp_path / "var", database_url=database_url,
    )  # fmt: skip
    store.registry.bind([Binding("BC-1", "zhang3", "team-east")])
    terminal = mqtt_client(broker.port, f"{prefix}-bc1", mqtt.MQTTv311, logins.simulator)
    base = f"{prefix}/zhang3/BC-1"
    t0 = int(time.time()) - 60
    published: list[tuple[int, float, float]] = []

    def fix(metres_south: float, n: int) -> None:
        lat = round(INCIDENT[1] - metres_south * M_LAT, 7)
        payload = {"_type": "location", "lon": INCIDENT[0], "lat": lat, "tst": t0 + n, "acc": 5}
        terminal.publish(base, json.dumps(payload), qos=1).wait_for_publish(5)
        published.append((t0 + n, INCIDENT[0], lat))

    dev = DeviceKey("zhang3/BC-1")
    with TestClient(create_app(settings)) as client:
        client.headers.update(bearer(database_url, Role.COMMANDER, name="d7"))
        zhang3 = bearer(database_url, Role.OFFICER, name="zhang3")
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        for n in range(10):  # on patrol before the call
            fix(600 - n * 5, n)
        incident = client.post(
            "/api/incidents",
            json={
                "category": "street_vending",
                "lon": INCIDENT[0],
                "lat": INCIDENT[1],
                "title": "占道经营",
            },
        ).json()["incident"]
        wait_until(lambda: client.get(f"/api/incidents/{incident}").status_code == 200, 10)
        wait_until(
            lambda: client.get("/api/devices/zhang3/BC-1").status_code == 200, 10, "zhang3 heard"
        )
        order = client.post(
            f"/api/incidents/{incident}/assign", json={"officers": ["zhang3"]}
        ).json()["order"]
        wait_until(lambda: incident_of(client, incident).order is not None, 10, "the order")
        client.post(f"/api/orders/{order}/ack", json={"status": "accepted"}, headers=zhang3)
        wait_until(lambda: store.ingest.stats().get("accepted", 0) >= 10, 10, "the patrol stored")
        # Seal what is stored so far: the package must span the archive and the live track.
        sealed = seal_due(
            store,
            settings.archive(),
            settings.signer(),
            time.time(),
            settings.seal_policy(),
            force=True,
        )
        assert len(sealed.sealed) == 1 and not sealed.failed
        clip = record_clip(tmp_path / "clips", badge="330702012", start=time.time(), seconds=2)
        terminal.publish(
            f"{base}/clip", json.dumps(clip_message(clip, device="BC-1", badge="330702012")), qos=1
        ).wait_for_publish(5)
        for n, metres in enumerate(range(560, -1, -40), start=10):
            fix(metres, n)
        wait_until(lambda: incident_of(client, incident).phase.value == "on_scene", 20, "arrival")
        client.post(f"/api/orders/{order}/ack", json={"status": "done"}, headers=zhang3)
        wait_until(lambda: incident_of(client, incident).phase.value == "resolved", 10, "resolved")
        wait_until(lambda: store.clips.clip(clip.clip_id) is not None, 10, "the clip record")
        # The camera's own GPS, 8 m north of the terminal's, as `yiwang video import` keeps it.
        camera = [[at, lon, lat + 8 / 111_320, 40.0] for at, lon, lat in published[10:]]
        store.clips.save_file_track(
            clip.clip_id, {"source": "file", "file_name": clip.path.name, "points": camera}
        )

        track = client.get("/api/devices/zhang3/BC-1/track", params={"from": t0 - 1}).json()
        assert track["properties"]["points"] == len(published), "the track query spans the archive"
        reply = client.get(f"/api/incidents/{incident}/evidence")
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/zip"
        package = reply.content

    verdict = verify_package(package, trusted_key=settings.signer().public_hex)
    assert verdict.ok, verdict.problems
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    features = json.loads(files["tracks/zhang3_BC-1.geojson"])["features"]
    assert [
        (
            f["properties"]["fix_at"],
            f["geometry"]["coordinates"][0],
            f["geometry"]["coordinates"][1],
        )
        for f in features
    ] == published
    parquet = geopandas.read_parquet(io.BytesIO(files["tracks/zhang3_BC-1.parquet"]))
    assert len(parquet) == len(published) and parquet.crs.to_epsg() == 4326
    assert "<trkpt" in files["tracks/zhang3_BC-1.gpx"].decode()
    clips = json.loads(files["clips.json"])
    assert [(c["clip_id"], c["sha256"], c["officer"]) for c in clips] == [
        (clip.clip_id, clip.sha256, "zhang3")
    ]
    report = files["report.html"].decode()
    assert incident in report and "<svg" in report and clip.clip_id in report
    from_file = json.loads(files[f"tracks/files/{clip.clip_id}.geojson"])
    assert from_file["properties"]["source"] == "file" and len(from_file["features"]) == len(camera)
    assert "15 of 15 points compared: median 8.0 m" in report, "the cross-check is in the report"
    assert "https://" not in files["map.html"].decode()

    # One coordinate changed in the chain excerpt: the digest, the signature and the chain say so.
    chain = files["chains/zhang3_BC-1.jsonl"].decode().splitlines()
    record = json.loads(chain[12])
    record["canonical"] = record["canonical"].replace(
        f'"lat":{published[12][2]}', f'"lat":{published[12][2] + 0.001}'
    )
    chain[12] = json.dumps(record)
    tampered = dict(files, **{"chains/zhang3_BC-1.jsonl": ("\n".join(chain) + "\n").encode()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in tampered.items():
            archive.writestr(name, data)
    problems = verify_package(buffer.getvalue()).problems
    assert (
        "chains/zhang3_BC-1.jsonl: sha256 differs from the manifest (the file was changed)"
        in problems
    )
    assert any("chains/zhang3_BC-1.jsonl: record 12" in p for p in problems), problems

    # The whole chain, from the genesis through the sealed segment into the live stream.
    count, chain_problems = verify_archive(store, settings.archive(), dev)
    assert (count, chain_problems) == (len(published), [])
    assert len(full_track(store, settings.archive(), dev)) == len(published)
    assert len(list(store.tracks.chain_links(dev))) == len(published) - 10, (
        "Redis dropped what was sealed"
    )


def sealed_segment(store: Store, broker, logins, prefix: str, tmp_path, count: int):
    """`count` fixes of one walker stored through the ingest, then sealed: (settings, manifest)."""
    client = mqtt_client(broker.port, f"{prefix}-seg", mqtt.MQTTv311, logins.simulator)
    t0 = int(time.time()) - 100
    for n in range(count):
        payload = {
            "_type": "location",
            "lon": 119.65,
            "lat": round(29.08 + n * 1e-4, 7),
            "tst": t0 + n,
        }
        client.publish(f"{prefix}/li4/BC-9", json.dumps(payload), qos=1).wait_for_publish(5)
    wait_until(lambda: store.ingest.stats().get("accepted", 0) == count, 10, "stored")
    settings = Settings(data_dir=tmp_path)
    policy = settings.seal_policy()
    (manifest_path,) = seal_due(
        store, settings.archive(), settings.signer(), time.time(), policy, force=True
    ).sealed
    return settings, manifest_path


@pytest.mark.parametrize(
    "tamper", ["byte", "delete", "swap", "substitute", "coordinate", "manifest"]
)
def test_sealed_segment_tampering_is_named(
    store: Store, prefix, tmp_path, start_ingest, broker, logins, tamper
) -> None:
    start_ingest()
    settings, manifest_path = sealed_segment(store, broker, logins, prefix, tmp_path, 30)
    assert verify_segment(manifest_path, settings.signer().public_hex) == []
    segment = manifest_path.parent / json.loads(manifest_path.read_text())["manifest"]["file"]
    if tamper == "byte":
        data = bytearray(segment.read_bytes())
        data[len(data) // 2] ^= 0x10
        segment.write_bytes(bytes(data))
        expected = f"{segment.name}: sha256 differs"
    elif tamper == "manifest":
        signed = json.loads(manifest_path.read_text())
        signed["manifest"]["count"] = 29
        manifest_path.write_text(json.dumps(signed))
        expected = f"{manifest_path.name}: the signature does not match"
    else:
        table = geopandas.read_parquet(segment)
        if tamper == "delete":
            table = table.drop(index=7).reset_index(drop=True)
        elif tamper == "swap":
            table.iloc[[7, 8]] = table.iloc[[8, 7]].to_numpy()
        elif tamper == "substitute":
            table.iloc[7] = table.iloc[20]
        else:
            table.loc[7, "lat"] = 29.5
        table.to_parquet(segment)
        expected = (
            f"{segment.name}: row 7" if tamper == "coordinate" else f"{segment.name}: record 7"
        )
    problems = verify_segment(manifest_path)
    assert any(p.startswith(expected) for p in problems), problems


def test_any_changed_byte_of_a_sealed_segment_fails(
    store: Store, prefix, tmp_path, start_ingest, broker, logins
) -> None:
    start_ingest()
    _, manifest_path = sealed_segment(store, broker, logins, prefix, tmp_path, 20)
    segment = manifest_path.parent / json.loads(manifest_path.read_text())["manifest"]["file"]
    originals = {path: path.read_bytes() for path in (segment, manifest_path)}

    @settings_(max_examples=120, deadline=None)
    @given(st.data())
    def flip(data) -> None:
        path = data.draw(st.sampled_from(sorted(originals)))
        body = bytearray(originals[path])
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] ^= data.draw(st.integers(1, 255))
        path.write_bytes(bytes(body))
        try:
            problems = verify_segment(manifest_path)
            assert problems and any(
                p.startswith((segment.name, manifest_path.name)) for p in problems
            ), problems
        finally:
            path.write_bytes(originals[path])

    flip()
    assert verify_segment(manifest_path) == []
