"""Patrol coverage from stored tracks: a shift's grids, visited or not, for supervisors in
scope. Fixes go through the real broker and ingest, as a patrolling officer's would."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from dispatch.clock import Clock
from dispatch.core.access import Role
from dispatch.patrol_report import patrol_setup
from dispatch.patrol_watch import PatrolWatch
from dispatch.settings import Settings
from tests.integration.helpers import bearer, mqtt_client, publish_all, wait_until
from tests.integration.test_access import running_center
from tests.integration.test_terminal_flow import city_files

ZONE = ZoneInfo("Asia/Shanghai")


def test_a_shift_shows_the_grid_patrolled_and_the_grid_left_alone(
    tmp_path, redis_service, prefix, database_url, logins
) -> None:
    # Yesterday 10:00 local, inside yesterday's all-day shift: zhang3 walks across east.
    yesterday = datetime.now(ZONE).replace(hour=10, minute=0, second=0) - timedelta(days=1)
    start = int(yesterday.timestamp())
    walk = [
        (
            f"{prefix}/zhang3/BC-1",
            json.dumps(
                {
                    "_type": "location",
                    "lon": 119.646 + n * 0.0004,
                    "lat": 29.08,
                    "tst": start + n * 10,
                }
            ).encode(),
        )
        for n in range(20)
    ]
    with running_center(tmp_path, redis_service, prefix, database_url, logins) as client:
        publisher = mqtt_client(
            logins.broker.port, f"{prefix}-walk", mqtt.MQTTv311, logins.simulator
        )
        publish_all(publisher, walk)
        publisher.disconnect()
        auditor = bearer(database_url, Role.AUDITOR, name="a-all")

        def stored() -> int:
            track = client.get(
                "/api/devices/zhang3/BC-1/track", params={"from": start - 1}, headers=auditor
            )
            return int(track.json()["properties"]["points"])

        wait_until(lambda: stored() == 20, 20, "the walk stored")
        since = (yesterday - timedelta(hours=9)).isoformat()  # 01:00: one shift ends after
        until = (yesterday + timedelta(hours=15)).isoformat()
        reply = client.get("/api/patrol", params={"since": since, "until": until}, headers=auditor)
        assert reply.status_code == 200, reply.text
        assert sorted(s["team"] for s in reply.json()) == ["team-east", "team-west"]
        shifts = {s["team"]: s for s in reply.json()}
        (east,) = shifts["team-east"]["grids"]
        assert east["grid"] == "east" and east["visits"] == 1 and east["standing"] == "no_target"
        assert 0 < east["covered_share"] < 1 and 180 <= east["patrol_s"] <= 200
        (west,) = shifts["team-west"]["grids"]
        assert west["standing"] == "not_visited" and not shifts["team-west"]["met"]
        assert "west" in shifts["team-west"]["summary"]
        # A supervisor of the west sees the west's shift only.
        west_only = bearer(database_url, Role.AUDITOR, name="a-west", scope="west")
        scoped = client.get(
            "/api/patrol", params={"since": since, "until": until}, headers=west_only
        )
        assert [s["team"] for s in scoped.json()] == ["team-west"]
        refused = client.get(
            "/api/patrol", params={"since": since, "until": until},
            headers=bearer(database_url, Role.DISPATCHER, name="d-x"),
        )  # fmt: skip
        assert refused.status_code == 403


def test_a_shift_ending_below_target_warns_the_screens_once(tmp_path, store) -> None:
    areas, roster = city_files(tmp_path)
    settings = Settings(areas_file=areas, roster_file=roster, data_dir=tmp_path)
    city = settings.city(datetime.now(ZONE))
    assert city is not None
    clock = Clock(1.0, time.time())
    watch = PatrolWatch(store, settings.archive(), city, patrol_setup(city, None), clock)
    assert watch.check_once() == []  # a new center starts looking from now
    last_midnight = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    store.incidents.check_until(last_midnight.timestamp() - 60)
    summaries = watch.check_once()
    # Nobody patrolled yesterday: both teams' shifts ended below target, each named once.
    assert sorted(s.split(":")[0] for s in summaries) == [
        "shift of team team-east",
        "shift of team team-west",
    ]
    alerts = [
        json.loads(f["body"])
        for _, f in store.redis.xrange(store.keys.events)
        if f["type"] == "patrol_shortfall"
    ]
    assert {a["team"]: list(a["grids"]) for a in alerts} == {
        "team-east": ["east"],
        "team-west": ["west"],
    }
    # Each an alert to acknowledge, raised as of the shift's end, once even if looked at again.
    shortfalls = [a for a in store.alerts.alerts() if a.kind == "patrol_shortfall"]
    assert sorted(a.team for a in shortfalls) == ["team-east", "team-west"]
    assert all(a.raised_at <= last_midnight.timestamp() for a in shortfalls)
    store.incidents.check_until(last_midnight.timestamp() - 60)
    assert len(watch.check_once()) == 2
    assert sum(e["type"] == "alert" for e in store.recent_events(1000)) == 2
    assert watch.check_once() == []
