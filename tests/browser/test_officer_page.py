"""The officer page on a phone-sized screen (360 × 800) in Debian's Chromium, against a whole
local center: an order ordered to the officer shows on a map with the way there, accepting
it is taken, an answer that no longer applies shows the server's reason, and the SOS button
raises an alarm after a confirmation. The screenshot is kept under var/screenshots."""

from __future__ import annotations

import json
import math
import re
import time

from playwright.sync_api import Page

from dispatch.core.access import Role
from tests.browser import test_screens
from tests.browser.conftest import SHOTS
from tests.browser.test_screens import OFFICER, Device, Screens, call, open_page, post

center = test_screens.center  # the whole local center the screens tests run against

PHONE = {"viewport": {"width": 360, "height": 800}, "is_mobile": True, "has_touch": True}


def ordered(center: Screens, lon: float, lat: float) -> str:
    """A new incident at (lon, lat), ordered to the test officer once the engine opened it."""
    for other in call(center, "GET", "/api/incidents"):
        if other["order"] and OFFICER in other["order"]["officers"]:
            post(center, f"/api/incidents/{other['id']}/cancel", {"reason": "next test"})
    body = {"category": "illegal_parking", "lon": lon, "lat": lat, "title": "违章停车 堵塞消防通道"}
    incident = post(center, "/api/incidents", body)["incident"]
    deadline = time.monotonic() + 20
    while True:
        try:
            post(center, f"/api/incidents/{incident}/assign", {"officers": [OFFICER]})
            return incident
        except Exception:  # the engine has not opened it yet (404)
            assert time.monotonic() < deadline, f"{incident} was never opened"
            time.sleep(0.3)


def freeze_orders(page: Page) -> None:
    """Answer the page's reads of its orders with what it holds now: a page gone stale while
    the officer answered on the body camera instead."""
    held = json.dumps(page.evaluate("window.__yiwang.orders"))
    page.route(
        "**/api/orders/mine",
        lambda route: route.fulfill(status=200, content_type="application/json", body=held),
    )


def test_the_officer_page_shows_the_way_takes_answers_and_shows_refusals(center, browser) -> None:
    lon, lat = center.centre
    west = lon - 600 / (111_320 * math.cos(math.radians(lat)))
    device = Device(center.broker)
    device.tst = int(time.time()) - 300
    device.at(west, lat)  # online, 600 m west of the incident
    incident = ordered(center, lon, lat)
    requests: list[str] = []
    phone = open_page(browser, center, "/officer", requests, Role.OFFICER, **PHONE,
                      geolocation={"longitude": west, "latitude": lat},
                      permissions=["geolocation"])  # fmt: skip
    phone.wait_for_selector(f"#order-title[data-incident='{incident}']", timeout=30_000)
    order = phone.evaluate("window.__yiwang.orders[0]")
    assert abs(order["me"]["lon"] - west) < 1e-6 and len(order["route"]) >= 2
    assert order["distance_m"] > 550 and order["eta_s"] > 0
    # The map draws the incident inside its frame, on the phone's width.
    phone.wait_for_function(
        "() => { const m = window.__incidentOnMap(); return m && m.drawn > 0; }", timeout=60_000
    )
    where = phone.evaluate("window.__incidentOnMap()")
    assert 0 <= where["x"] <= where["width"] <= 360 and 0 <= where["y"] <= where["height"]
    assert re.fullmatch(r"距离 [\d.]+ (米|公里)", phone.inner_text("#distance"))
    assert re.fullmatch(r"约 \d+ 分钟", phone.inner_text("#eta"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # nothing overflows
    assert phone.evaluate("window.__yiwang.attention.played") >= 1  # the new order rang

    phone.click("button[data-status='accepted']")
    phone.wait_for_selector("#result.ok", timeout=30_000)
    assert "已提交" in phone.inner_text("#result")
    phone.wait_for_selector("button[data-status='enroute']", timeout=30_000)
    phone.wait_for_selector("button[data-status='accepted']", state="detached", timeout=30_000)

    # The body camera reports the arrival while the page still offers setting out.
    freeze_orders(phone)
    order_id = phone.evaluate("window.__yiwang.orders[0].order.id")
    ack = {"_type": "ack", "order_id": order_id, "status": "arrived", "tst": int(time.time())}
    device.client.publish(f"{device.topic}/ack", json.dumps(ack), qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 20
    while call(center, "GET", f"/api/incidents/{incident}")["phase"] != "on_scene":
        assert time.monotonic() < deadline, "the arrival never reached the engine"
        time.sleep(0.2)
    phone.click("button[data-status='enroute']")
    phone.wait_for_selector("#result.refused", timeout=30_000)
    refusal = phone.inner_text("#result")
    # Worded in Chinese from the server's code: the phase and the answer by name, no raw key.
    assert "操作被拒绝" in refusal and "到场" in refusal and "出发" in refusal, refusal
    assert "on_scene" not in refusal and "OfficerDeparted" not in refusal, refusal
    assert "{" not in refusal  # the reason, not the raw JSON
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "officer-page.png"), full_page=True)

    # Fresh again: now only finishing is offered.
    phone.unroute("**/api/orders/mine")
    phone.wait_for_selector("button[data-status='done']", timeout=30_000)
    assert phone.query_selector("button[data-status='enroute']") is None

    phone.click("#sos")
    phone.wait_for_selector("#sos-confirm", timeout=5_000)
    phone.click("#sos-confirm")
    phone.wait_for_selector("#sos-result.ok", timeout=30_000)
    sos = phone.inner_text("#sos-result").split("（", 1)[1].split("）", 1)[0]
    deadline = time.monotonic() + 20
    while not any(i["id"] == sos for i in call(center, "GET", "/api/incidents")):
        assert time.monotonic() < deadline, f"{sos} was never opened"
        time.sleep(0.3)
    assert phone.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []
