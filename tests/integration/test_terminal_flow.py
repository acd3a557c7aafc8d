"""End to end over real Mosquitto and Redis: an officer's terminal receives an order,
acknowledges it, drives there, and the center sees the departure and the arrival in its fixes.
An order nobody acknowledges goes back for re-dispatch and the clock escalates on time."""

from __future__ import annotations

import json
import math
import time

import msgspec
import paho.mqtt.client as mqtt
import yaml
from fastapi.testclient import TestClient

from devices.registry import Binding
from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.core.model import Incident, Milestone
from dispatch.settings import Settings
from dispatch.store import Store
from tests.integration.helpers import bearer, mqtt_client, store_fix, wait_until

INCIDENT = (119.6500, 29.0800)
M_LAT = 1 / 111_320.0
POLICY = {
    "respond_s": 6,
    "turn_out_s": 30,
    "handle_s": 120,
    "accept_within_s": 6,
    "arrive_radius_m": 40,
    "warn_at": 0.5,
}


def city_files(tmp_path) -> tuple[str, str]:
    """Two adjacent grid cells; the east one (holding the incident) is team east's."""
    cells = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": name, "name": name},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[w, 29.07], [e, 29.07], [e, 29.09], [w, 29.09], [w, 29.07]]],
                },
            }
            for name, w, e in (("west", 119.64, 119.645), ("east", 119.645, 119.655))
        ],
    }
    areas = tmp_path / "areas.geojson"
    areas.write_text(json.dumps(cells))
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        yaml.safe_dump(
            {
                "teams": [
                    {"id": "team-east", "areas": ["east"]},
                    {"id": "team-west", "areas": ["west"]},
                ],
                "shifts": [
                    {"team": "team-east", "officers": ["zhang3", "li4"], "daily": "00:00-00:00"},
                    {"team": "team-west", "officers": ["wang5"], "daily": "00:00-00:00"},
                ],
            }
        )
    )
    return str(areas), str(roster)


def app(broker, logins, redis_service, prefix, tmp_path, database_url) -> TestClient:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump({"default": POLICY, "categories": {"fire_hazard": {"auto_dispatch": True}}})
    )
    areas, roster = city_files(tmp_path)
    settings = Settings(
        areas_file=areas,
        roster_file=roster,
        redis_url=redis_service.url,
        key_prefix=prefix,
        mqtt_port=broker.port,
        **logins.settings,
        topic_root=prefix,
        policy_file=policy,
        engine_id=f"engine-{prefix}",
        ingest_name=f"ingest-{prefix}",
        engine_lease_ms=3000,
        database_url=database_url,
    )
    client = TestClient(create_app(settings))
    client.headers.update(bearer(database_url, Role.DISPATCHER, name="d7"))
    return client


def incident_of(client: TestClient, incident_id: str) -> Incident:
    return msgspec.json.decode(
        json.dumps(client.get(f"/api/incidents/{incident_id}").json()), type=Incident
    )


def test_terminal_acknowledges_departs_and_arrives(
    broker, logins, redis_service, store: Store, prefix, tmp_path, database_url
) -> None:
    # Bound before the ingest starts: outside the demo an unbound device is quarantined.
    store.registry.bind(
        [Binding("BC-1", "zhang3", "wucheng-01"), Binding("BC-2", "li4"), Binding("BC-3", "wang5")]
    )
    received: list[mqtt.MQTTMessage] = []
    terminal = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-bc1", protocol=mqtt.MQTTv5
    )
    # The terminal logs in with its own credentials: its /dispatch and /cmd are all it may read.
    terminal.username_pw_set(*logins.device("BC-1", "zhang3"))
    terminal.on_message = lambda c, u, m: received.append(m)
    terminal.connect("127.0.0.1", broker.port)
    terminal.subscribe([(f"{prefix}/zhang3/BC-1/dispatch", 1), (f"{prefix}/zhang3/BC-1/cmd", 1)])
    terminal.loop_start()
    base = f"{prefix}/zhang3/BC-1"
    t0 = int(time.time())

    def fix(metres_south: float, n: int) -> None:
        payload = {
            "_type": "location",
            "lon": INCIDENT[0],
            "lat": INCIDENT[1] - metres_south * M_LAT,
            "tst": t0 + n,
            "acc": 5,
        }
        terminal.publish(base, json.dumps(payload), qos=1).wait_for_publish(5)

    with app(broker, logins, redis_service, prefix, tmp_path, database_url) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        fix(600, 0)  # the officer is 600 m south of where the incident will be
        # A teammate farther away, and an officer of the neighbouring team nearer still.
        others = mqtt_client(broker.port, f"{prefix}-others", mqtt.MQTTv311, logins.simulator)
        for user, device, lon, lat in (
            ("li4", "BC-2", INCIDENT[0], INCIDENT[1] - 0.012),
            ("wang5", "BC-3", 119.644, INCIDENT[1]),
        ):
            location = {"_type": "location", "lon": lon, "lat": lat, "tst": t0}
            others.publish(
                f"{prefix}/{user}/{device}", json.dumps(location), qos=1
            ).wait_for_publish(5)
        wait_until(lambda: len(client.get("/api/devices").json()) == 3, 10, "three officers")
        reply = client.post(
            "/api/incidents",
            json={
                "category": "street_vending",
                "priority": 2,
                "lon": INCIDENT[0],
                "lat": INCIDENT[1],
                "title": "占道经营",
            },
        )
        incident = reply.json()["incident"]
        wait_until(lambda: client.get(f"/api/incidents/{incident}").status_code == 200, 10)
        ranked = client.get(f"/api/incidents/{incident}/recommendations").json()
        assert [r["officer"] for r in ranked] == ["zhang3", "li4", "wang5"]
        assert "owning team" in ranked[0]["reason"] and "fallback" in ranked[2]["reason"]
        with client.websocket_connect("/ws/live?area=east") as ws:  # a district screen
            snapshot = ws.receive_json()
        assert [i["id"] for i in snapshot["incidents"]] == [incident]
        # The east team's officers, wherever they are (li4 is south); not the west's wang5.
        assert sorted(d[0] for d in snapshot["devices"]) == ["li4/BC-2", "zhang3/BC-1"]
        best = [ranked[0]["officer"]]
        order = client.post(f"/api/incidents/{incident}/assign", json={"officers": best}).json()[
            "order"
        ]

        wait_until(lambda: len(received) >= 3, 10, "the order on the terminal")
        dispatch = next(m for m in received if m.topic.endswith("/dispatch"))
        body = json.loads(dispatch.payload)
        assert (body["order_id"], body["incident"], body["rad"]) == (order, incident, 40)
        assert dispatch.properties.CorrelationData == order.encode()
        assert dispatch.properties.ResponseTopic == f"{base}/ack"
        # Kept by the broker past the deadlines for a terminal briefly offline.
        assert dispatch.properties.MessageExpiryInterval == Settings().order_min_expiry_s
        waypoints = [json.loads(m.payload) for m in received if m.topic.endswith("/cmd")]
        assert waypoints[0]["waypoints"]["waypoints"][0]["desc"] == f"order:{order}"

        ack = {"_type": "ack", "order_id": order, "status": "accepted", "tst": int(time.time())}
        terminal.publish(f"{base}/ack", json.dumps(ack), qos=1).wait_for_publish(5)
        # Drive north in 20 m steps, one fix a second (72 km/h at most).
        for n, metres in enumerate(range(580, -1, -20), start=1):
            fix(metres, n)
            time.sleep(0.05)
        wait_until(
            lambda: incident_of(client, incident).reached(Milestone.ARRIVE) is not None,
            20,
            "arrival",
        )
        seen = incident_of(client, incident)
        turn_out, arrive = seen.reached(Milestone.TURN_OUT), seen.reached(Milestone.ARRIVE)
        assert (turn_out.via, turn_out.by, turn_out.late_by_s) == ("gps", "zhang3", 0.0)
        assert (arrive.via, arrive.by) == ("gps", "zhang3")
        assert seen.reached(Milestone.RESPOND).late_by_s == 0.0

        done = {**ack, "status": "done", "reason": "vendor moved on"}
        terminal.publish(f"{base}/ack", json.dumps(done), qos=1).wait_for_publish(5)
        wait_until(
            lambda: incident_of(client, incident).phase.value == "resolved", 10, "resolution"
        )
        handle = incident_of(client, incident).reached(Milestone.HANDLE)
        assert handle.late_by_s == 0.0 and handle.by == "zhang3"

        # A category the policy dispatches by itself: the nearest free officer gets it at once.
        new = {"category": "fire_hazard", "priority": 1, "lon": INCIDENT[0], "lat": INCIDENT[1]}
        urgent = client.post("/api/incidents", json=new).json()["incident"]
        wait_until(lambda: client.get(f"/api/incidents/{urgent}").status_code == 200, 10)
        auto = incident_of(client, urgent)
        assert auto.phase.value == "dispatched" and auto.order.officers == ("zhang3",)
        assert auto.reached(Milestone.RESPOND).by == "auto"
        others.loop_stop()
    terminal.loop_stop()


def test_unacknowledged_order_is_redispatched_and_escalated_on_time(
    broker, logins, redis_service, store: Store, prefix, tmp_path, database_url
) -> None:
    with app(broker, logins, redis_service, prefix, tmp_path, database_url) as client:
        wait_until(lambda: client.get("/api/health").json()["engine_leading"], 15, "engine")
        reply = client.post(
            "/api/incidents",
            json={
                "category": "construction_noise",
                "priority": 3,
                "lon": INCIDENT[0],
                "lat": INCIDENT[1],
            },
        )
        incident = reply.json()["incident"]
        wait_until(lambda: client.get(f"/api/incidents/{incident}").status_code == 200, 10)
        store_fix(store, "li4", "BC-2", INCIDENT, received_at=time.time())  # online, never answers
        assigned = client.post(f"/api/incidents/{incident}/assign", json={"officers": ["li4"]})
        assert assigned.status_code == 202, assigned.text
        wait_until(
            lambda: client.get(f"/api/incidents/{incident}").json()["phase"] == "dispatched", 10
        )
        issued_at = incident_of(client, incident).order.issued_at
        wait_until(
            lambda: client.get(f"/api/incidents/{incident}").json()["phase"] == "acknowledged",
            15,
            "re-dispatch",
        )
        audit = client.get(f"/api/incidents/{incident}/audit").json()
        redispatch = next(r for r in audit if r["kind"] == "redispatch")
        assert json.loads(redispatch["detail"])["exclude"] == ["li4"]
        assert math.isclose(
            float(redispatch["at"]) - issued_at, POLICY["accept_within_s"], abs_tol=1.0
        )
        assert any(r["kind"] == "order_withdrawn" for r in audit)
        reported_at = incident_of(client, incident).reported_at
        wait_until(
            lambda: any(
                r["kind"] == "escalation"
                for r in client.get(f"/api/incidents/{incident}/audit").json()
            ),
            40,
            "the turn-out breach",
        )
        breach = next(
            r
            for r in client.get(f"/api/incidents/{incident}/audit").json()
            if r["kind"] == "escalation"
        )
        detail = json.loads(breach["detail"])
        assert (detail["milestone"], detail["level"]) == ("turn_out", 1)
        assert 0 <= float(breach["at"]) - (reported_at + POLICY["turn_out_s"]) < 1.5
