"""A dispatcher scoped to one area of a running simulated city, watched for a minute: every
live-feed message and every REST answer it gets holds only its own area's incidents and its
own teams' officers, while the whole city runs around it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import websockets

from dispatch.core.access import AreaScope, Role
from dispatch.settings import Settings
from gis.coords import LonLat
from harness.center import local_center, simulator_login
from harness.daemons import free_port
from simulators.city import Behaviour, CityModel
from simulators.cityfiles import build_demo_city, load_sim_city
from simulators.driver import Api, CityDriver
from simulators.incidents import DispatcherBot, DispatcherPlan, IncidentArrivals
from simulators.publisher import Publisher
from tests.integration.helpers import bearer

WATCH_S = 60.0


def get(base: str, path: str, headers: dict[str, str]):
    request = urllib.request.Request(base + path, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


async def watch(url: str, token: str, seconds: float) -> list[dict]:
    messages = []
    async with websockets.connect(
        url, additional_headers={"authorization": f"Bearer {token}"}
    ) as ws:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
            except TimeoutError:
                break
    return messages


def test_a_scoped_dispatcher_sees_only_its_area_for_a_minute(tmp_path: Path) -> None:
    city_dir = build_demo_city(tmp_path / "city", officers_per_team=2)
    settings = Settings(
        http_port=free_port(), data_dir=tmp_path, clock_rate=10.0, clock_anchor=time.time(),
        engine_id="scoped-engine", ingest_name="scoped-ingest",
    )  # fmt: skip
    with local_center(settings, city_dir, tmp_path) as center:
        settings = center.settings
        clock = settings.clock()
        model = CityModel(load_sim_city(city_dir), behaviour=Behaviour(), seed=3, now=clock())
        served = settings.city(datetime.now(ZoneInfo(settings.timezone)))
        assert served is not None
        own = sorted(served.areas.areas, key=lambda a: a.id)[0]
        scope = AreaScope(own.id, served.areas, served.roster)
        mine = scope.officers()
        headers = bearer(settings.database_url, Role.DISPATCHER, name="west-d", scope=own.id)
        token = headers["authorization"].split()[1]
        login = simulator_login(settings)
        broker = (settings.mqtt_host, settings.mqtt_port)
        stop = threading.Event()
        with Publisher(*broker, client_id="scoped-city", login=login) as publisher:
            driver = CityDriver(
                model, Api(center.base_url, center.token), publisher, settings.topic_root, clock,
                broker, login=login,
                arrivals=IncidentArrivals(
                    model.street_points(), per_hour=400, seed=3, now=clock()
                ),
                dispatcher=DispatcherBot(DispatcherPlan()),
            )  # fmt: skip
            city = threading.Thread(target=driver.run, args=(stop,), daemon=True)
            city.start()
            # One report inside the scope for certain, among the city's random ones.
            inside = own.geometry.representative_point()
            Api(center.base_url, center.token).call(
                "POST",
                "/api/incidents",
                {"category": "street_vending", "lon": inside.x, "lat": inside.y},
            )
            url = f"ws://127.0.0.1:{settings.http_port}/ws/live"
            messages = asyncio.run(watch(url, token, WATCH_S))
            incidents = get(center.base_url, "/api/incidents?open_only=false", headers)
            devices = get(center.base_url, "/api/devices", headers)
            roster = get(center.base_url, "/api/roster", headers)
            whole_roster = get(center.base_url, "/api/roster", {
                "authorization": f"Bearer {center.token}"
            })  # fmt: skip
            everything = get(center.base_url, "/api/incidents?open_only=false", {
                "authorization": f"Bearer {center.token}"
            })  # fmt: skip
            stop.set()
            city.join(10)

    def in_scope(location: list[float]) -> bool:
        return scope.covers_point(LonLat(*location))

    shown: set[str] = set()
    kinds = {m["type"] for m in messages}
    positions = 0
    for message in messages:
        if message["type"] == "snapshot":
            assert all(in_scope(i["location"]) for i in message["incidents"])
            assert {d[0].split("/")[0] for d in message["devices"]} <= mine
            shown |= {i["id"] for i in message["incidents"]}
        elif message["type"] == "incident":
            assert in_scope(message["body"]["location"]), message
            shown.add(message["body"]["id"])
        elif message["type"] == "positions":
            owners = {row[0].split("/")[0] for row in message["body"]}
            assert owners <= mine, owners - mine
            positions += len(message["body"])
        else:  # alerts and every other incident-bound event
            assert message["body"]["incident"] in shown, message
    assert shown and positions > 0 and "incident" in kinds, kinds
    assert incidents and all(in_scope(i["location"]) for i in incidents)
    assert {d["user"] for d in devices} <= mine and devices
    # The units board's roster: this scope's officers and teams, each officer with a team.
    assert {o["officer"] for o in roster["officers"]} == mine
    assert {o["team"] for o in roster["officers"]} == {t["id"] for t in roster["teams"]}
    assert len(whole_roster["officers"]) > len(roster["officers"])
    # The city did run elsewhere: most of its incidents were out of this scope.
    assert len(everything) > 3 * len(incidents)
