"""The screens in Debian's Chromium (SwiftShader WebGL), against a whole local center: the
live map shows an officer where the fixes put it, an incident's clock turns amber then red
on time, and an order assigned on the command page reaches the officer page, whose answer
moves the incident on the command page. No request leaves 127.0.0.1. Screenshots are kept
under var/screenshots for review."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from playwright.sync_api import Browser, Page

from dispatch.core.access import Role
from dispatch.settings import Settings
from harness.center import LocalCenter, local_center, simulator_login
from harness.daemons import free_port
from simulators.cityfiles import build_demo_city, load_sim_city
from tests.browser.conftest import SHOTS
from tests.photo_fixtures import jpeg

POLICY = {"default": {"respond_s": 8, "turn_out_s": 40, "handle_s": 120, "warn_at": 0.5}}
OFFICER, DEVICE = "officer001", "bodycam001"


class Screens(NamedTuple):
    base: str
    broker: Broker
    centre: tuple[float, float]  # inside the test officer's home area
    local: LocalCenter


@pytest.fixture(scope="module")
def center(tmp_path_factory) -> Iterator[Screens]:
    workdir = tmp_path_factory.mktemp("center")
    city = build_demo_city(workdir / "city", officers_per_team=1)
    policy = workdir / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    settings = Settings(http_port=free_port(), policy_file=policy, data_dir=workdir,
                        engine_id="screens-engine", ingest_name="screens-ingest")  # fmt: skip
    sim = load_sim_city(city)
    home = next(o for o in sim.officers if o.officer == OFFICER).area
    centre = sim.areas.get(home).geometry.representative_point()
    with local_center(settings, city, workdir) as running:
        assert running.logins[Role.OFFICER][0] == OFFICER
        broker = Broker(running.settings.mqtt_port, simulator_login(running.settings))
        yield Screens(running.base_url, broker, (centre.x, centre.y), running)


@dataclass(frozen=True)
class Broker:
    port: int
    login: tuple[str, str] | None  # the simulator's account: it may publish for any device


class Device:
    def __init__(self, broker: Broker, officer: str = OFFICER, device: str = DEVICE) -> None:
        self.topic = f"owntracks/{officer}/{device}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"screens-{device}")
        if broker.login is not None:
            self.client.username_pw_set(*broker.login)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.tst = int(time.time()) - 1500

    def at(self, lon: float, lat: float, cog: float | None = None) -> None:
        self.tst += 300
        payload = {"_type": "location", "lon": lon, "lat": lat, "tst": self.tst, "acc": 5}
        if cog is not None:
            payload["cog"] = cog
        self.client.publish(self.topic, json.dumps(payload), qos=1).wait_for_publish(5)


def post(center: Screens, path: str, body: dict) -> dict:
    return call(center, "POST", path, body)


def call(center: Screens, method: str, path: str, body: dict | None = None):
    headers = {"content-type": "application/json", "authorization": f"Bearer {center.local.token}"}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(center.base + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def open_page(
    browser: Browser,
    center: Screens,
    path: str,
    requests: list[str],
    role: Role = Role.DISPATCHER,
    **options,
) -> Page:
    """A page opened as a person would: sent to the login page, signed in, brought back."""
    page = browser.new_context(**options).new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(center.base + path)
    page.wait_for_selector("#login", timeout=30_000)
    name, password = center.local.logins[role]
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#submit")
    page.wait_for_url(center.base + path, timeout=30_000)
    return page


def officer_on_screen(page: Page, lon: float, lat: float) -> dict:
    dev = f"{OFFICER}/{DEVICE}"
    page.wait_for_function(
        f"""() => {{ const o = window.__yiwang.officers.get('{dev}');
                   return window.__yiwang.mapLoaded && o && Math.abs(o.lon - {lon}) < 1e-6 && Math.abs(o.lat - {lat}) < 1e-6; }}""",
        timeout=60_000,
    )
    page.wait_for_timeout(600)  # a redraw after the move
    pixel = page.evaluate(f"window.__officerPixel('{dev}')")
    return {"pixel": pixel, "picked": page.evaluate(f"window.__pick({pixel['x']}, {pixel['y']})")}


def test_live_map_draws_an_officer_where_its_fixes_put_it(center, browser) -> None:
    broker, (lon, lat) = center.broker, center.centre
    device = Device(broker)
    device.at(lon, lat)
    requests: list[str] = []
    page = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    before = officer_on_screen(page, lon, lat)
    assert before["picked"] == f"{OFFICER}/{DEVICE}"
    look = f"window.__officerLook('{OFFICER}/{DEVICE}')"
    # The device's clock says 20 minutes ago; the center heard it just now: it is online.
    assert page.evaluate(look)["status"] == "available"
    east = lon + 2000 / (111_320 * math.cos(math.radians(lat)))
    device.at(east, lat, cog=45)
    after = officer_on_screen(page, east, lat)
    assert after["picked"] == f"{OFFICER}/{DEVICE}"
    # The arrow follows the device's own course, not the bearing of the move (due east).
    assert page.evaluate(look)["heading"] == 45
    assert after["pixel"]["x"] > before["pixel"]["x"] + 5
    assert page.evaluate(f"window.__pick({before['pixel']['x']}, {before['pixel']['y']})") is None
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "command.png"))
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []
    assert "区" in page.inner_text("body") or page.evaluate(
        "window.__yiwang.city.labels[0].name"
    ).startswith("婺城区")


def test_an_incident_clock_turns_amber_then_red_on_time(center, browser) -> None:
    lon, lat = center.centre
    requests: list[str] = []
    page = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    page.wait_for_function("() => window.__yiwang && window.__yiwang.frames > 2", timeout=60_000)
    reported = time.monotonic()
    incident = post(
        center,
        "/api/incidents",
        {"category": "street_vending", "lon": lon, "lat": lat, "title": "占道经营"},
    )["incident"]
    chip = f"[data-id='{incident}'] .chip[data-milestone='respond']"
    page.wait_for_selector(chip, timeout=30_000)
    assert "running" in page.get_attribute(chip, "class")
    page.wait_for_selector(f"{chip}.warning", timeout=30_000)
    amber = time.monotonic() - reported
    page.wait_for_selector(f"{chip}.breached", timeout=30_000)
    red = time.monotonic() - reported
    # Policy: respond in 8 s, warning at half of it; the page redraws every 0.25 s.
    assert 3.0 <= amber <= 6.0 and 7.0 <= red <= 10.5, (amber, red)
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_an_order_assigned_on_the_map_is_answered_on_the_officer_page(center, browser) -> None:
    broker, (lon, lat) = center.broker, center.centre
    Device(broker).at(lon, lat)
    requests: list[str] = []
    command = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    phone = open_page(browser, center, "/officer", requests, Role.OFFICER,
                      viewport={"width": 390, "height": 844}, is_mobile=True)  # fmt: skip
    incident = post(
        center,
        "/api/incidents",
        {"category": "illegal_parking", "lon": lon, "lat": lat, "title": "违章停车"},
    )["incident"]
    command.click(f"[data-id='{incident}']", timeout=30_000)
    command.click(f"#recommendations button[data-assign='{OFFICER}']", timeout=30_000)
    phone.wait_for_selector(f"#order-title[data-incident='{incident}']", timeout=30_000)
    phone.click("button[data-status='accepted']")
    phone.wait_for_selector("button[data-status='enroute']", timeout=30_000)
    phone.click("button[data-status='enroute']")
    command.wait_for_selector("#detail-phase[data-phase='en_route']", timeout=30_000)
    phone.wait_for_selector("#order-title[data-phase='en_route']", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "officer.png"))
    command.screenshot(path=str(SHOTS / "command-order.png"))
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_a_replayed_window_shows_officers_where_they_were(center, browser) -> None:
    broker, (lon, lat) = center.broker, center.centre
    device = Device(broker, "officer002", "bodycam002")
    device.tst = int(time.time()) - 1200  # a past window, fixes 5 minutes apart
    north = lat + 2500 / 111_320
    device.at(lon, lat)
    first = device.tst
    device.at(lon, north)
    second = device.tst
    requests: list[str] = []
    page = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    page.wait_for_function(
        "() => window.__yiwang && window.__yiwang.mapLoaded && window.__yiwang.frames > 2",
        timeout=60_000,
    )
    page.click("#replay-toggle")
    zone = ZoneInfo("Asia/Shanghai")
    page.fill("#replay-from", datetime.fromtimestamp(first - 60, zone).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#replay-to", datetime.fromtimestamp(second + 60, zone).strftime("%Y-%m-%dT%H:%M"))
    page.click("#replay-load")
    page.wait_for_function(
        "() => window.__yiwang.replay !== null && window.__yiwang.replay !== undefined",
        timeout=30_000,
    )
    dev = "officer002/bodycam002"
    places = []
    for moment in (first + 1, second + 1):
        page.evaluate(f"window.__replayAt({moment})")
        page.wait_for_timeout(700)
        pixel = page.evaluate(f"window.__officerPixel('{dev}')")
        places.append(pixel)
        assert page.evaluate(f"window.__pick({pixel['x']}, {pixel['y']})") == dev, moment
    assert places[1]["y"] < places[0]["y"] - 20, (
        "north is up: later, the officer is higher on screen"
    )
    assert page.evaluate(f"window.__pick({places[0]['x']}, {places[0]['y']})") is None
    assert "回放" in page.inner_text("#now")
    page.screenshot(path=str(SHOTS / "replay.png"))
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_markup_in_a_report_shows_as_text_and_never_runs(center, browser) -> None:
    lon, lat = center.centre
    requests: list[str] = []
    page = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    title = '<img src=x onerror="window.__injected=1">占道'
    incident = post(
        center,
        "/api/incidents",
        {"category": "street_vending", "lon": lon, "lat": lat, "title": title},
    )["incident"]
    # Read in the page in one go: the queue is redrawn while the clocks run.
    page.wait_for_function(
        "([id, title]) => document.querySelector(`[data-id='${id}'] b`)?.textContent === title",
        arg=[incident, title],
        timeout=30_000,
    )
    assert page.query_selector_all("#queue img") == []
    assert page.evaluate("window.__injected") is None
    # An officer whose name (the user level of a device's topic) is markup: listed as text.
    name = '<img src=x onerror="window.__injected=2">'
    Device(center.broker, name, "cam-markup").at(lon, lat)
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('#officers li')]"
        ".some((li) => li.textContent.startsWith(name))",
        arg=name,
        timeout=30_000,
    )
    assert page.query_selector_all("#officers img") == []
    # The same report, ordered to the officer, on the phone: text again, and nothing ran. The
    # phone shows one order at a time, so the officer's earlier orders are cancelled first.
    for other in call(center, "GET", "/api/incidents"):
        if other["order"] and OFFICER in other["order"]["officers"]:
            post(center, f"/api/incidents/{other['id']}/cancel", {"reason": "next test"})
    phone = open_page(browser, center, "/officer", requests, Role.OFFICER,
                      viewport={"width": 390, "height": 844}, is_mobile=True)  # fmt: skip
    online = Device(center.broker)  # an order goes only to an officer heard from lately
    online.tst = int(time.time()) - 300
    online.at(lon, lat)
    post(center, f"/api/incidents/{incident}/assign", {"officers": [OFFICER]})
    phone.wait_for_function(
        "([id, title]) => { const h = document.querySelector('#order-title');"
        " return h && h.dataset.incident === id && h.textContent === title; }",
        arg=[incident, title],
        timeout=30_000,
    )
    assert phone.query_selector_all("#order img") == []
    assert phone.evaluate("window.__injected") is None
    assert page.evaluate("window.__injected") is None
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_a_citizens_photo_shows_in_the_incident_detail(center, browser) -> None:
    lon, lat = center.centre
    requests: list[str] = []
    page = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    form = {"category": "street_vending", "contact": "13800000000", "description": "随手拍：占道"}
    place = {"lon": str(lon), "lat": str(lat), "crs": "wgs84"}
    answer = httpx.post(
        center.base + "/api/reports",
        data={**form, **place},
        files={"photo": ("IMG_0001.jpg", jpeg(), "image/jpeg")},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    incident, sha256 = answer.json()["incident"], answer.json()["photo"]
    page.wait_for_selector(f"[data-id='{incident}']", timeout=30_000)
    page.click(f"[data-id='{incident}']")
    # The photo is drawn from the incident's own authenticated route, at its stored size.
    page.wait_for_function(
        "(sha) => { const img = document.querySelector(`#photos [data-sha256='${sha}'] img`);"
        " return img && img.complete && img.naturalWidth === 64 && img.naturalHeight === 48; }",
        arg=sha256,
        timeout=30_000,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "citizen-photo-detail.png"))
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_the_supervision_page_shows_the_months_figures_and_drills_down_to_an_audit(
    center, browser
) -> None:
    lon, lat = center.centre
    incident = post(
        center,
        "/api/incidents",
        {"category": "construction_noise", "lon": lon, "lat": lat, "title": "噪音"},
    )["incident"]
    wait_for(lambda: phase(center, incident) == "reported")
    post(center, f"/api/incidents/{incident}/cancel", {"reason": "duplicate call"})
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    month = now.strftime("%Y-%m")
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    after = (first + timedelta(days=32)).replace(day=1)
    span = f"since={first:%Y-%m-%dT%H:%M:%S}&until={after:%Y-%m-%dT%H:%M:%S}"
    # The history copies within a second; figures are read once they include the report.
    wait_for(lambda: call(center, "GET", f"/api/stats/summary?{span}")["incidents"] > 0)
    requests: list[str] = []
    page = open_page(browser, center, "/supervision", requests, Role.ADMIN,
                     viewport={"width": 1400, "height": 900})  # fmt: skip
    page.wait_for_function("() => window.__yiwang.loaded > 0", timeout=30_000)
    assert page.input_value("#month") == month

    def shown_as_the_api_says() -> bool:
        # Other tests' incidents may still be copied: reload the page's figures until both
        # were read at the same state of the history.
        expected = call(center, "GET", f"/api/stats/summary?{span}")
        handle = expected["milestones"]["handle"]["on_time_share"]
        tiles = (
            page.inner_text("[data-kpi='incidents'] b"),
            page.inner_text("[data-kpi='handle'] b"),
        )
        if tiles == (str(expected["incidents"]), "–" if handle is None else f"{handle * 100:.1f}%"):
            return True
        loaded = page.evaluate("window.__yiwang.loaded")
        page.dispatch_event("#month", "change")
        page.wait_for_function(f"() => window.__yiwang.loaded > {loaded}", timeout=30_000)
        return False

    wait_for(shown_as_the_api_says)
    # Click the map where the incident is: its area's incidents, then the incident's audit.
    pixel = page.evaluate(
        f"window.__yiwang.charts.map.convertToPixel({{seriesIndex: 0}}, [{lon}, {lat}])"
    )
    box = page.query_selector("#map").bounding_box()
    page.mouse.click(box["x"] + pixel[0], box["y"] + pixel[1])
    page.click(f"#drill li[data-incident='{incident}'] a", timeout=30_000)
    page.wait_for_selector("#audit li[data-kind='event']", timeout=30_000)
    assert page.get_attribute("#audit", "data-incident") == incident
    page.screenshot(path=str(SHOTS / "supervision.png"))
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def phase(center: Screens, incident: str) -> str | None:
    """The incident's phase; None until the engine has opened it (the API answers 404)."""
    try:
        return call(center, "GET", f"/api/incidents/{incident}")["phase"]
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return None


def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
