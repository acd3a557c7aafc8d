"""The dispatcher's console in Debian's Chromium against a whole local center: clicks land
while 200 officers stream their positions at 1 Hz, the map answers hover and click, a selection
off screen is flown to, only the allowed actions show and cancel asks for a reason, a refusal
reads as a sentence, a warning flashes and sounds until acknowledged on every screen and after a
reload, an incident is created from a click on the map and from a place search (once per ticket),
and replay takes no action while live alerts keep their true time. Screenshots are kept under
var/screenshots."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dispatch.store import Store
from harness.center import LocalCenter
from tests.browser import test_screens
from tests.browser.conftest import SHOTS
from tests.browser.test_screens import Device, call, open_page, phase, post, wait_for

center = test_screens.center  # a whole local center for this module, set up as the screens tests do

UNITS = 200
VIEW = {"width": 1500, "height": 900}
PRESS_MS = 110  # a person's click: pressed, held, released


class Stream:
    """UNITS officers moving about the test area, each reporting once a second: written into
    the screens' feed as the ingest writes a positions update, so the page sees the load of a
    busy center without 200 devices being registered first."""

    def __init__(self, running: LocalCenter, centre: tuple[float, float]) -> None:
        settings = running.settings
        self.store = Store.from_url(settings.redis_url, settings.key_prefix)
        rng = random.Random(7)
        self.places = [
            [centre[0] + rng.uniform(-0.01, 0.01), centre[1] + rng.uniform(-0.01, 0.01)]
            for _ in range(UNITS)
        ]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        rng = random.Random(8)
        while not self.stop.is_set():
            started = time.monotonic()
            fix_at = int(time.time())
            rows = []
            for n, place in enumerate(self.places):
                place[0] += rng.uniform(-5e-5, 5e-5)
                place[1] += rng.uniform(-5e-5, 5e-5)
                rows.append([f"unit{n:03d}/cam{n:03d}", place[0], place[1], fix_at, 5.0, None])
            self.store.redis.xadd(
                self.store.keys.events, {"type": "positions", "body": json.dumps(rows)}, maxlen=1000
            )
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(autouse=True)
def close_pages(browser) -> Iterator[None]:
    """Each test's pages closed after it: a map left open keeps the software renderer busy and
    slows every later test."""
    yield
    for context in browser.contexts:
        context.close()


@pytest.fixture
def streaming(center) -> Iterator[Stream]:
    stream = Stream(center.local, center.centre)
    yield stream
    stream.close()


def console(browser, center, requests: list[str]) -> Page:
    page = open_page(browser, center, "/", requests, viewport=VIEW)
    page.wait_for_function(
        "() => window.__yiwang && window.__yiwang.mapLoaded && window.__yiwang.frames > 2",
        timeout=60_000,
    )
    return page


def report(center, lon: float, lat: float, title: str) -> str:
    incident = post(
        center,
        "/api/incidents",
        {"category": "street_vending", "lon": lon, "lat": lat, "title": title},
    )["incident"]
    wait_for(lambda: phase(center, incident) is not None)
    return incident


def press(page: Page, selector: str) -> None:
    """Mouse down, hold PRESS_MS, up, at the element's centre: what a person's click does."""
    item = page.wait_for_selector(selector, timeout=10_000)
    item.evaluate("(e) => e.scrollIntoView({block: 'center'})")
    box = item.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(PRESS_MS)
    page.mouse.up()


def selected_within(page: Page, expression: str, value: str, timeout_ms: int = 1500) -> bool:
    try:
        page.wait_for_function(f"(v) => {expression} === v", arg=value, timeout=timeout_ms)
    except PlaywrightTimeout:  # a lost click is counted, not raised
        return False
    return True


def map_point(page: Page, pixel: dict) -> tuple[float, float]:
    box = page.query_selector("#map").bounding_box()
    return box["x"] + pixel["x"], box["y"] + pixel["y"]


def test_clicks_land_while_200_officers_stream(center, browser, streaming) -> None:
    lon, lat = center.centre
    incidents = [report(center, lon + 0.002 * k, lat - 0.002 * k, f"占道{k}") for k in range(4)]
    requests: list[str] = []
    page = console(browser, center, requests)
    page.wait_for_function(f"() => window.__yiwang.officers.size >= {UNITS}", timeout=60_000)
    page.wait_for_selector(f"#queue [data-id='{incidents[-1]}']", timeout=30_000)
    received = page.evaluate("window.__yiwang.received.length")
    hits = 0
    for n in range(20):
        incident = incidents[n % len(incidents)]
        press(page, f"#queue [data-id='{incident}']")
        hits += selected_within(page, "window.__yiwang.selected", incident)
    assert hits == 20, f"{hits} of 20 clicks on queue items selected them"
    page.wait_for_selector(f"#queue [data-id='{incidents[-1]}'].selected", timeout=2_000)
    assert page.locator("#queue .selected").count() == 1
    units = [f"unit{n:03d}/cam{n:03d}" for n in (0, 1, 2, 3, 4)]
    hits = 0
    for n in range(20):
        dev = units[n % len(units)]
        press(page, f"#officers [data-dev='{dev}']")
        hits += selected_within(page, "window.__yiwang.selectedOfficer", dev)
    assert hits == 20, f"{hits} of 20 clicks on units selected them"
    # Positions kept streaming the whole time (1 Hz).
    assert page.evaluate("window.__yiwang.received.length") >= received + 5
    # A double-click on the incident id selects the whole id, as text to copy.
    page.dblclick(f"#queue [data-id='{incidents[0]}'] .incident-id")
    assert page.evaluate("getSelection().toString()") == incidents[0]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-streaming.png"))
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_the_map_answers_hover_and_click_and_flies_to_a_selection(
    center, browser, streaming
) -> None:
    lon, lat = center.centre
    incident = report(center, lon - 0.004, lat + 0.004, "地图点选")
    requests: list[str] = []
    page = console(browser, center, requests)
    page.wait_for_function(f"() => window.__yiwang.officers.size >= {UNITS}", timeout=60_000)
    page.wait_for_selector(f"#queue [data-id='{incident}']", timeout=30_000)
    dev = "unit010/cam010"
    # Close in, where 200 officers no longer cover each other.
    page.evaluate(
        "(dev) => { const o = window.__yiwang.officers.get(dev);"
        " window.__yiwang.map.jumpTo({center: [o.lon, o.lat], zoom: 17}); }",
        dev,
    )
    page.wait_for_timeout(1500)
    x, y = map_point(page, page.evaluate(f"window.__officerPixel('{dev}')"))
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y, steps=4)  # a pointer arriving, as a hand moves it
    page.wait_for_function(
        "(name) => { const tip = document.querySelector('#tooltip');"
        " return !tip.hidden && tip.dataset.kind === 'officer' && tip.textContent.includes(name); }",
        arg="unit010",
        timeout=10_000,
    )
    tip = page.inner_text("#tooltip")
    assert "km/h" in tip or "速度" in tip, tip
    page.screenshot(path=str(SHOTS / "console-tooltip.png"))
    # A click on the incident on the map selects it in the queue.
    page.evaluate(
        "(p) => window.__yiwang.map.jumpTo({center: p, zoom: 15})", [lon - 0.004, lat + 0.004]
    )
    page.wait_for_timeout(1500)
    page.mouse.click(*map_point(page, page.evaluate(f"window.__incidentPixel('{incident}')")))
    page.wait_for_function("(id) => window.__yiwang.selected === id", arg=incident, timeout=10_000)
    page.wait_for_selector(f"#queue [data-id='{incident}'].selected", timeout=5_000)
    page.wait_for_selector(f"#detail[data-incident='{incident}']", timeout=5_000)
    # Far away and close in, the incident is off screen: selecting it flies the map there.
    page.evaluate(
        "([lon, lat]) => window.__yiwang.map.jumpTo({center: [lon, lat], zoom: 16})",
        [lon + 0.2, lat + 0.2],
    )
    page.wait_for_timeout(300)
    flights = page.evaluate("window.__yiwang.flights")
    page.click(f"#queue [data-id='{incident}'] b")
    page.wait_for_function(f"() => window.__yiwang.flights > {flights}", timeout=5_000)
    page.wait_for_function(
        "(p) => !window.__yiwang.map.isMoving() && window.__yiwang.map.getBounds().contains(p)",
        arg=[lon - 0.004, lat + 0.004],
        timeout=15_000,
    )
    page.screenshot(path=str(SHOTS / "console-flown.png"))
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_only_allowed_actions_show_and_cancel_needs_a_reason(center, browser) -> None:
    lon, lat = center.centre
    incident = report(center, lon + 0.003, lat + 0.003, "撤销测试")
    requests: list[str] = []
    page = console(browser, center, requests)
    page.click(f"#queue [data-id='{incident}']", timeout=30_000)
    page.wait_for_selector("#actions", timeout=10_000)
    served = call(center, "GET", f"/api/incidents/{incident}")["actions"]
    assert "cancel" in served and "resolve" not in served, served
    shown = page.eval_on_selector_all("#actions button", "bs => bs.map((b) => b.dataset.action)")
    assert sorted(shown) == sorted(a for a in served if a not in ("assign", "merge"))
    assert all(
        page.inner_text(f"#actions [data-action='{a}']").strip() not in (a, "") for a in shown
    )
    page.click("#actions [data-action='cancel']")
    page.wait_for_selector("#reason-form", timeout=5_000)
    assert page.is_disabled("#reason-submit")
    page.fill("#reason", "   ")
    assert page.is_disabled("#reason-submit")
    page.press("#reason", "Enter")  # a blank reason cannot be submitted by keyboard either
    assert phase(center, incident) == "reported"
    page.fill("#reason", "重复来电")
    assert not page.is_disabled("#reason-submit")
    page.screenshot(path=str(SHOTS / "console-cancel-reason.png"))
    page.click("#reason-submit")
    wait_for(lambda: phase(center, incident) == "cancelled")
    # A cancelled incident offers nothing more to do.
    page.wait_for_function(
        "() => document.querySelectorAll('#actions button').length === 0", timeout=10_000
    )
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_a_refusal_reads_as_a_sentence(center, browser) -> None:
    lon, lat = center.centre
    incident = report(center, lon - 0.003, lat - 0.003, "拒绝测试")
    requests: list[str] = []
    page = console(browser, center, requests)
    page.click(f"#queue [data-id='{incident}']", timeout=30_000)
    page.wait_for_selector("#actions", timeout=10_000)
    # Resolving a reported incident is refused by the timeline (409): play the button in, again
    # whenever a live update replaces the incident before the button is pressed.
    pressed = page.evaluate(
        """async (id) => {
          for (let k = 0; k < 250; k++) {
            const button = document.querySelector("#actions [data-action='resolve']");
            if (button) { button.click(); return true; }
            const shown = window.__yiwang.incidents.get(id);
            if (!shown.actions || !shown.actions.includes("resolve")) {
              shown.actions = ["resolve"];
              window.__store.notify();
            }
            await new Promise((next) => setTimeout(next, 20));
          }
          return false;
        }""",
        incident,
    )
    assert pressed, "the resolve button never showed"
    page.click("#reason-submit")
    page.wait_for_selector("#action-result.refused", timeout=10_000)
    text = page.inner_text("#action-result")
    assert "409" not in text and '{"detail"' not in text and len(text) > 6, text
    # In the console's language: the phase and the refused action by their Chinese names.
    assert "待受理" in text and "办结" in text and "reported" not in text, text
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_a_warning_flashes_and_sounds_until_acknowledged(center, browser) -> None:
    lon, lat = center.centre
    requests: list[str] = []
    page = console(browser, center, requests)
    sounds = page.evaluate("window.__yiwang.sounds")
    incident = report(center, lon + 0.001, lat - 0.004, "预警测试")
    # Policy: respond in 8 s, warned at half: an alert for this incident arrives.
    item = f"#alerts li.new:has(.incident-id:text-is('{incident}'))"
    page.wait_for_selector(item, timeout=30_000)
    page.wait_for_function(f"() => window.__yiwang.sounds > {sounds}", timeout=5_000)
    assert page.get_attribute("#alert-sound", "src") == "/static/alert.wav"
    page.screenshot(path=str(SHOTS / "console-alert.png"))
    alert = page.get_attribute(item, "data-alert")
    other = console(browser, center, requests)  # a second dispatcher's screen
    other.wait_for_selector(f"#alerts li.new[data-alert='{alert}']", timeout=10_000)
    page.click(f"#alerts [data-ack='{alert}']")
    page.wait_for_selector(f"#alerts li.acknowledged[data-alert='{alert}']", timeout=10_000)
    other.wait_for_selector(f"#alerts li.acknowledged[data-alert='{alert}']", timeout=10_000)
    # Kept by the server: a reload shows the alert, acknowledged.
    page.reload()
    page.wait_for_selector(f"#alerts li.acknowledged[data-alert='{alert}']", timeout=30_000)
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_an_incident_is_created_from_a_place_search_once_per_ticket(center, browser) -> None:
    requests: list[str] = []
    page = console(browser, center, requests)
    page.click("#intake summary")
    page.wait_for_selector("#intake-category option:nth-child(2)", state="attached", timeout=10_000)
    page.select_option("#intake-category", "street_vending")
    page.fill("#intake-ticket", "12345-20261203-0001")
    page.fill("#intake-caller-name", "王先生")
    page.fill("#intake-place", "农贸市场")
    chosen = page.wait_for_selector("#intake-places li", timeout=10_000)
    place = chosen.get_attribute("data-place")
    chosen.click()
    page.wait_for_function(
        "() => document.querySelector('#intake-lon').value !== ''", timeout=5_000
    )
    page.click("#intake-submit")
    page.wait_for_selector("#intake-answer.sent", timeout=10_000)
    incident = page.get_attribute("#intake-answer", "data-incident")
    wait_for(lambda: phase(center, incident) is not None)
    record = call(center, "GET", f"/api/incidents/{incident}")
    assert record["area"] and record["team"] and record["caller_name"] == "王先生", record
    assert record["ticket"] == "12345-20261203-0001"
    assert place in record["address"], record["address"]
    # The owning team's officer reports from the place: the console recommends them.
    officer = next(
        o["officer"]
        for o in call(center, "GET", "/api/roster")["officers"]
        if o["team"] == record["team"] and o["on_duty"]
    )
    device = Device(center.broker, officer, officer.replace("officer", "bodycam"))
    device.tst = int(time.time()) - 300  # its next fix is now
    device.at(*record["location"])
    page.wait_for_function(
        "(dev) => window.__yiwang.officers.get(dev) !== undefined",
        arg=f"{officer}/{officer.replace('officer', 'bodycam')}",
        timeout=30_000,
    )
    page.click(f"#queue [data-id='{incident}']", timeout=30_000)
    page.wait_for_selector(f"#recommendations [data-assign='{officer}']", timeout=30_000)
    # The same ticket again opens nothing new: the page says which incident it already is.
    page.click("#intake-submit")
    page.wait_for_selector("#intake-answer.duplicate", timeout=10_000)
    assert page.get_attribute("#intake-answer", "data-incident") == incident
    opened = [i for i in call(center, "GET", "/api/incidents") if i["ticket"] == record["ticket"]]
    assert len(opened) == 1
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_an_incident_is_created_from_a_click_on_the_map(center, browser) -> None:
    lon, lat = center.centre
    requests: list[str] = []
    page = console(browser, center, requests)
    page.click("#intake summary")
    page.wait_for_selector("#intake-category option:nth-child(2)", state="attached", timeout=10_000)
    page.select_option("#intake-category", "illegal_parking")
    page.click("#intake-pick")
    page.evaluate("(p) => window.__yiwang.map.jumpTo({center: p, zoom: 14})", [lon, lat])
    page.wait_for_timeout(300)
    box = page.query_selector("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => document.querySelector('#intake-lon').value !== ''", timeout=5_000
    )
    picked = (float(page.input_value("#intake-lon")), float(page.input_value("#intake-lat")))
    assert math.dist(picked, (lon, lat)) < 1e-3, picked
    page.click("#intake-submit")
    page.wait_for_selector("#intake-answer.sent", timeout=10_000)
    incident = page.get_attribute("#intake-answer", "data-incident")
    page.wait_for_selector(f"#queue [data-id='{incident}']", timeout=30_000)
    page.screenshot(path=str(SHOTS / "console-intake.png"))
    record = call(center, "GET", f"/api/incidents/{incident}")
    assert record["category"] == "illegal_parking"
    assert math.dist(record["location"], picked) < 1e-5
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []


def test_replay_takes_no_action_and_keeps_live_alerts_at_their_true_time(center, browser) -> None:
    lon, lat = center.centre
    past = report(center, lon - 0.004, lat + 0.002, "回放测试")
    reported_at = call(center, "GET", f"/api/incidents/{past}")["reported_at"]
    requests: list[str] = []
    page = console(browser, center, requests)
    alert_of = "#alerts li:has(.incident-id:text-is('{}'))"
    page.wait_for_selector(alert_of.format(past), timeout=30_000)
    page.click("#replay-toggle")
    zone = ZoneInfo("Asia/Shanghai")
    for field, at in (("#replay-from", reported_at - 120), ("#replay-to", reported_at + 120)):
        page.fill(field, datetime.fromtimestamp(at, zone).strftime("%Y-%m-%dT%H:%M"))
    page.click("#replay-load")
    page.wait_for_selector("#replay-banner", timeout=30_000)
    page.evaluate(f"window.__replayAt({reported_at + 5})")
    page.click(f"#queue [data-id='{past}']", timeout=10_000)
    page.wait_for_function("(id) => window.__yiwang.selected === id", arg=past, timeout=5_000)
    assert page.query_selector_all("#actions button, #recommendations [data-assign]") == []
    # An incident reported now, while the replay shows the past: its alert is a live one,
    # stamped with its true time, and it waits for the return to live.
    live = report(center, lon + 0.004, lat + 0.002, "回放中新警情")
    page.wait_for_function(
        "(id) => window.__yiwang.alerts.some((a) => a.incident === id)", arg=live, timeout=30_000
    )
    raised_at = page.evaluate(
        "(id) => window.__yiwang.alerts.find((a) => a.incident === id).raised_at", live
    )
    assert abs(raised_at - time.time()) < 60, raised_at
    assert page.query_selector(alert_of.format(live)) is None
    page.screenshot(path=str(SHOTS / "console-replay.png"))
    page.click("#replay-toggle")
    page.wait_for_selector("#replay-banner", state="detached", timeout=10_000)
    page.wait_for_selector(alert_of.format(live), timeout=10_000)
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []
