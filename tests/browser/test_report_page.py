"""The citizens' report page (随手拍) on a phone-sized Chromium against a served center (real
Redis and PostgreSQL, a leading engine): a report made without signal waits in the page and
leaves once the signal is back, or once the page is opened again after it was closed offline,
and opens an incident where the phone was. No request leaves 127.0.0.1. Screenshots are kept
under var/screenshots for review."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from playwright.sync_api import BrowserContext, Page

from dispatch.api.app import create_app
from dispatch.core.access import Role
from dispatch.settings import Settings
from harness.daemons import free_port
from tests.browser.conftest import SHOTS
from tests.integration.helpers import bearer, serving, wait_until
from tests.integration.test_terminal_flow import city_files
from tests.photo_fixtures import jpeg

pytestmark = pytest.mark.timeout(240)

PHONE_AT = (119.6503, 29.0801)  # where the phone's GPS puts it: city_files' east cell
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


class Center(NamedTuple):
    base: str
    admin: dict[str, str]


@pytest.fixture(scope="module")
def center(redis_service, postgres, tmp_path_factory) -> Iterator[Center]:
    workdir = tmp_path_factory.mktemp("report-page")
    areas, roster = city_files(workdir)
    database_url = postgres.create_database("report_page", template="yiwang_template")
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix="reportpage",
        database_url=database_url,
        areas_file=areas,
        roster_file=roster,
        data_dir=workdir / "var",
        engine_id="report-page-engine",
        http_port=free_port(),
    )
    with serving(create_app(settings, workers=("engine",)), settings.http_port) as base:
        yield Center(base, bearer(database_url, Role.ADMIN, name="admin-1"))


def get(center: Center, path: str) -> Any:
    request = urllib.request.Request(center.base + path, headers=center.admin)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def open_report_page(context: BrowserContext, center: Center, requests: list[str]) -> Page:
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(center.base + "/report")
    page.wait_for_function("() => window.__report && window.__report.ready", timeout=30_000)
    return page


def fill_report(page: Page, photo: Path, description: str) -> None:
    page.set_input_files("#photo", str(photo))
    page.click("#locate")
    page.wait_for_function(
        "() => document.querySelector('#place').textContent.startsWith('已定位')"
    )
    page.select_option("#category", "street_vending")
    page.fill("#description", description)
    page.fill("#contact", "138 0000 0000")
    page.click("#send")


def sent_incident(page: Page) -> str:
    page.wait_for_function("() => window.__report.status === 'sent'", timeout=30_000)
    return str(page.evaluate("() => window.__report.incident"))


def test_a_report_made_offline_leaves_when_the_signal_is_back(center, browser, tmp_path) -> None:
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(jpeg())  # no position in the photo: the phone's is sent
    context = browser.new_context(
        **PHONE,
        geolocation={"longitude": PHONE_AT[0], "latitude": PHONE_AT[1]},
        permissions=["geolocation"],
    )
    requests: list[str] = []
    page = open_report_page(context, center, requests)
    categories = page.eval_on_selector_all("#category option", "os => os.map(o => o.value)")
    assert "street_vending" in categories and "sos" not in categories

    # No signal: the report waits in the page.
    context.set_offline(True)
    fill_report(page, photo, "地下通道口有流动摊贩")
    page.wait_for_function("() => window.__report.status === 'queued'", timeout=10_000)
    assert page.is_disabled("#send")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report-queued.png"), full_page=True)

    # The signal is back: it leaves by itself and opens the incident where the phone was.
    context.set_offline(False)
    first = sent_incident(page)
    page.screenshot(path=str(SHOTS / "report-sent.png"), full_page=True)
    wait_until(lambda: get(center, "/api/incidents") != [], 10, "the engine to open it")
    incident = get(center, f"/api/incidents/{first}")
    assert incident["location"] == pytest.approx(list(PHONE_AT), abs=1e-9)
    assert (incident["source"], incident["title"]) == ("citizen", "地下通道口有流动摊贩")
    (kept,) = get(center, f"/api/incidents/{first}/photos")
    assert (kept["place_from"], kept["contact"]) == ("form", "13800000000")

    # Made offline and the page closed before any signal: sent when it is opened again.
    context.set_offline(True)
    fill_report(page, photo, "又来了")
    page.wait_for_function("() => window.__report.status === 'queued'", timeout=10_000)
    page.close()
    context.set_offline(False)
    reopened = open_report_page(context, center, requests)
    second = sent_incident(reopened)
    assert second != first
    assert reopened.input_value("#contact") == "138 0000 0000"  # remembered for next time
    assert reopened.input_value("#description") == ""  # the sent draft is gone
    wait_until(lambda: len(get(center, "/api/incidents")) == 2, 10, "the second incident")
    # The photo's preview is a blob: URL of the page's own origin.
    local = ("http://127.0.0.1", "blob:http://127.0.0.1")
    assert [u for u in requests if not u.startswith(local)] == []
    context.close()
