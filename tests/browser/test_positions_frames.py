"""The command page with `?positions=binary`: the live client asks for positions frames, the
officer is drawn where its fixes put it and follows it when it moves, and the page's
JavaScript cost per update is measured."""

from __future__ import annotations

import math

from tests.browser.test_screens import Device, center, officer_on_screen, open_page

__all__ = ["center"]  # the whole local center of the screens' tests, shared


def test_positions_arrive_as_frames_and_move_the_officer(center, browser) -> None:
    (lon, lat) = center.centre
    device = Device(center.broker)
    device.at(lon, lat)
    requests: list[str] = []
    page = open_page(browser, center, "/", requests, viewport={"width": 1400, "height": 850})
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(center.base + "/?positions=binary")
    before = officer_on_screen(page, lon, lat)
    assert before["picked"] == "officer001/bodycam001"
    east = lon + 2000 / (111_320 * math.cos(math.radians(lat)))
    device.at(east, lat, cog=45)
    after = officer_on_screen(page, east, lat)
    assert after["picked"] == "officer001/bodycam001"
    assert after["pixel"]["x"] > before["pixel"]["x"] + 5
    look = page.evaluate("window.__officerLook('officer001/bodycam001')")
    assert look["heading"] == 45
    # The trail runs from where the officer was to where it is now (lon, lat pairs).
    trail = look["trail"]
    assert len(trail) >= 4
    assert math.isclose(trail[0], lon, abs_tol=1e-5) and math.isclose(trail[-2], east, abs_tol=1e-5)
    assert any("positions=binary" in url for url in sockets), sockets
    # The move came as a frame: its handling is measured under the positions name.
    measured = page.evaluate("performance.getEntriesByName('yiwang:positions').length")
    assert measured >= 1
    assert page.evaluate("window.__yiwang.errors") == []
