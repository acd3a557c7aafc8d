"""Street and place names on the command page's offline basemap, in Debian's Chromium: at
street zoom MapLibre draws the streets' names (Latin glyphs from the server's /glyphs route,
Chinese from the local font) and the places' names, with no console error and no request
leaving 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pytest
from playwright.sync_api import Browser

from dispatch.api.app import create_app
from dispatch.basemap import BASEMAP, build_basemap
from dispatch.core.access import Role
from dispatch.settings import Settings
from harness.daemons import free_port
from tests.browser.conftest import SHOTS
from tests.integration.helpers import bearer, serving
from tests.unit.test_basemap import named_city

pytestmark = pytest.mark.timeout(240)

DISPATCHER = "dispatcher-labels"
PASSWORD = "a long test password"  # what `bearer` gives the accounts it adds
CENTRE = (119.647, 29.080)  # the middle of named_city's lattice


class Center(NamedTuple):
    base: str


@pytest.fixture(scope="module")
def center(redis_service, postgres, tmp_path_factory) -> Iterator[Center]:
    workdir = tmp_path_factory.mktemp("basemap-labels")
    areas, roster, streets, places = named_city(workdir / "city")
    basemap = build_basemap(areas, streets, workdir / "city" / BASEMAP, places)
    database_url = postgres.create_database("basemap_labels", template="yiwang_template")
    bearer(database_url, Role.DISPATCHER, name=DISPATCHER)
    settings = Settings(
        redis_url=redis_service.url,
        key_prefix="basemaplabels",
        database_url=database_url,
        areas_file=areas,
        roster_file=roster,
        basemap_file=basemap,
        data_dir=workdir / "var",
        engine_id="basemap-labels-engine",
        http_port=free_port(),
    )
    with serving(create_app(settings, workers=("engine",)), settings.http_port) as base:
        yield Center(base)


def test_street_and_place_names_are_drawn_at_street_zoom(center, browser: Browser) -> None:
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    requests: list[str] = []
    errors: list[str] = []
    glyphs: list[tuple[str, int]] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: glyphs.append((r.url, r.status)) if "/glyphs/" in r.url else None)
    page.goto(center.base + "/")
    page.wait_for_selector("#login", timeout=30_000)
    page.fill("#name", DISPATCHER)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(center.base + "/", timeout=30_000)
    page.wait_for_function("() => window.__yiwang && window.__yiwang.mapLoaded", timeout=60_000)
    page.evaluate(f"window.__yiwang.map.jumpTo({{center: [{CENTRE[0]}, {CENTRE[1]}], zoom: 15}})")
    rendered = """(layer) => { const map = window.__yiwang.map;
        if (!map.loaded() || !map.areTilesLoaded()) return null;
        const names = map.queryRenderedFeatures({layers: [layer]}).map((f) => f.properties.name);
        return names.length ? [...new Set(names)].sort() : null; }"""
    streets = page.wait_for_function(rendered, arg="street-names", timeout=60_000).json_value()
    places = page.wait_for_function(rendered, arg="place-names", timeout=60_000).json_value()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "basemap-labels.png"))
    # Several streets labelled, each by its name, with Latin and Chinese in one label.
    assert len(streets) >= 3
    assert {"Bayi St 八一街", "Xinhua St 新华街"} <= set(streets)
    assert places == ["No. 4 Middle School 第四中学", "Wucheng Hospital 婺城医院"]
    # Latin and digits came from the glyph route; CJK ranges never asked for (drawn locally).
    assert any("/0-255.pbf" in url for url, _ in glyphs)
    assert all(status == 200 for _, status in glyphs), glyphs
    assert not any("/19968-20223.pbf" in url or "/20224-20479.pbf" in url for url, _ in glyphs)
    assert errors == []
    assert page.evaluate("window.__yiwang.errors") == []
    assert [u for u in requests if not u.startswith("http://127.0.0.1")] == []
