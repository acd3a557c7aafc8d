"""Update-to-screen latency of the live map in headless Chromium (SwiftShader WebGL).

The API serves the command page for the demo city; this bench writes a positions update for
N officers into the screens' stream once a second (as the ingest does) and reads back, from
the page, when each update arrived over the WebSocket (the baseline: transport and parsing)
and when deck.gl finished drawing it. Latency counts from the stream entry's time (Redis'
clock at XADD). Measured at 200 and 10,000 officers. Last line: JSON.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis
import uvicorn
from playwright.sync_api import sync_playwright

from dispatch.api.app import create_app
from dispatch.basemap import BASEMAP, PLACES, build_basemap
from dispatch.core.access import Role
from dispatch.settings import Settings
from harness.center import demo_accounts
from harness.daemons import ManagedRedis, free_port
from harness.postgres import ManagedPostgres
from simulators.cityfiles import AREAS, ROSTER, STREETS, build_demo_city

_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # fmt: skip
_WARMUP = 3


def _feed(
    client: redis.Redis, key: str, officers: int, seconds: int, stop: threading.Event
) -> None:
    rng = random.Random(1)
    places = [[119.45 + rng.random() * 0.25, 28.85 + rng.random() * 0.3] for _ in range(officers)]
    for _ in range(seconds):
        if stop.is_set():
            return
        started = time.monotonic()
        fix_at = int(time.time())
        rows = []
        for k, place in enumerate(places):
            place[0] += rng.uniform(-2e-4, 2e-4)
            place[1] += rng.uniform(-2e-4, 2e-4)
            rows.append(
                [f"bench{k:05d}/cam{k:05d}", round(place[0], 7), round(place[1], 7), fix_at]
            )
        client.xadd(key, {"type": "positions", "body": json.dumps(rows)}, maxlen=10_000)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def _ms(pairs: list[list[object]]) -> list[float]:
    return [at - int(str(seq).split("-")[0]) for seq, at in pairs]  # type: ignore[operator]


def _run(
    base: str, login: tuple[str, str], client: redis.Redis, key: str, officers: int, seconds: int
) -> dict[str, object]:
    stop = threading.Event()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        page.goto(base + "/login")
        page.fill("#name", login[0])
        page.fill("#password", login[1])
        page.click("#submit")
        page.wait_for_url(base + "/")
        page.wait_for_function(
            "() => window.__yiwang && window.__yiwang.mapLoaded && window.__yiwang.frames > 2",
            timeout=120_000,
        )
        feeder = threading.Thread(target=_feed, args=(client, key, officers, seconds, stop))
        feeder.start()
        feeder.join()
        page.wait_for_timeout(3000)
        state = page.evaluate(
            "({received: window.__yiwang.received, renders: window.__yiwang.renders, officers: window.__yiwang.officers.size, errors: window.__yiwang.errors})"
        )
        browser.close()
    received, drawn = _ms(state["received"])[_WARMUP:], _ms(state["renders"])[_WARMUP:]
    return {
        "officers_on_map": state["officers"],
        "updates": len(received),
        "drawn": len(drawn),
        "arrive_p50_ms": round(float(np.percentile(received, 50)), 1),
        "arrive_p99_ms": round(float(np.percentile(received, 99)), 1),
        "screen_p50_ms": round(float(np.percentile(drawn, 50)), 1),
        "screen_p99_ms": round(float(np.percentile(drawn, 99)), 1),
        "errors": state["errors"],
    }


def main(loads: tuple[int, ...] = (200, 10_000), seconds: int = 20) -> int:
    results = {}
    with tempfile.TemporaryDirectory(prefix="yiwang-screen-") as tmp:
        city = build_demo_city(Path(tmp) / "city", officers_per_team=1)
        basemap = build_basemap(city / AREAS, city / STREETS, city / BASEMAP, city / PLACES)
        redis_service = ManagedRedis(Path(tmp) / "redis")
        postgres = ManagedPostgres(Path(tmp) / "postgres")
        redis_service.start()
        postgres.start()
        port = free_port()
        settings = Settings(
            redis_url=redis_service.url, key_prefix="screen", http_port=port, areas_file=city / AREAS,
            roster_file=city / ROSTER, streets_file=city / STREETS, basemap_file=basemap, data_dir=Path(tmp),
            database_url=postgres.database_url("postgres"),
        )  # fmt: skip
        logins, _token = demo_accounts(settings, "officer001")
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, workers=()), port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        client = redis.Redis.from_url(redis_service.url, decode_responses=True)
        try:
            print(
                f"screen bench: positions of N officers once a second for {seconds} s, headless Chromium"
            )
            for officers in loads:
                client.delete("screen:events")
                result = _run(
                    f"http://127.0.0.1:{port}",
                    logins[Role.DISPATCHER],
                    client,
                    "screen:events",
                    officers,
                    seconds,
                )
                ratio = round(result["screen_p99_ms"] / max(result["arrive_p99_ms"], 0.1), 1)  # type: ignore[operator]
                print(
                    f"  {officers:>6,} officers: drawn p50 {result['screen_p50_ms']} ms, p99 {result['screen_p99_ms']} ms "
                    f"| arrived (WebSocket, parsed) p50 {result['arrive_p50_ms']} ms, p99 {result['arrive_p99_ms']} ms "
                    f"(×{ratio}); {result['drawn']} of {result['updates']} updates drawn"
                )
                results[str(officers)] = {**result, "p99_vs_arrival": ratio}
        finally:
            server.should_exit = True
            thread.join(10)
            postgres.remove()
            redis_service.stop()
    bundle = Path(__file__).resolve().parents[1] / "frontend" / "dist" / "command.js"
    results["bundle_bytes"] = bundle.stat().st_size if bundle.exists() else None
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
