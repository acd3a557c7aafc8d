"""The live map's cost per positions update in headless Chromium (SwiftShader WebGL), with
positions as JSON rows (the baseline) and as binary frames (`?positions=binary`).

The API serves the command page for the demo city; this bench writes a positions update for
N officers into the screens' stream once a second (as the ingest does) and reads back from the
page, per update: the JavaScript time (the page's performance measures: parse and store update
"yiwang:positions", of which "yiwang:parse" is the parse alone, plus the layer update
"yiwang:layers" of the frame that drew it; raster excluded, it is the software GL here) and
when deck.gl finished drawing it, counted from the stream entry's time (Redis' clock at XADD).
Measured at 2,000 and 10,000 officers, each in both modes in the same run. Last line: JSON
keyed by officer count; `ratio` is JSON's js_ms_p99 over binary's (how many times less
JavaScript work per update the frames take).
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
from tqdm import tqdm

from dispatch.api.app import create_app
from dispatch.basemap import BASEMAP, PLACES, build_basemap
from dispatch.core.access import Role
from dispatch.core.feed import stream_order
from dispatch.settings import Settings
from harness.center import demo_accounts
from harness.daemons import ManagedRedis, free_port
from harness.postgres import ManagedPostgres
from simulators.cityfiles import AREAS, ROSTER, STREETS, build_demo_city

_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # fmt: skip
# The first updates after the page loads compile deck.gl's shaders and warm the JIT; a console
# is judged by the updates after that.
_WARMUP = 5


def _feed(
    client: redis.Redis,
    key: str,
    officers: int,
    seconds: int,
    stop: threading.Event,
    progress: tqdm[None],
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
        progress.update(1)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def _ms(pairs: list[list[object]]) -> list[float]:
    return [at - int(str(seq).split("-")[0]) for seq, at in pairs]  # type: ignore[operator]


_JS_MS = """() => {
  const first = (name) => {
    const by = {};
    for (const m of performance.getEntriesByName(name)) if (!(m.detail in by)) by[m.detail] = m.duration;
    return by;
  };
  const handled = first("yiwang:positions"), parsed = first("yiwang:parse"), layers = first("yiwang:layers");
  return Object.keys(handled).filter((seq) => seq in layers)
    .map((seq) => [seq, handled[seq] + layers[seq], parsed[seq] ?? 0]);
}"""


def _p(values: list[float], q: int) -> float | None:
    """The q-th percentile, or None (JSON null) when no update got that far."""
    return round(float(np.percentile(values, q)), 2) if values else None


def _run(
    base: str,
    login: tuple[str, str],
    client: redis.Redis,
    key: str,
    officers: int,
    seconds: int,
    positions: str,
    progress: tqdm[None],
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
        page.goto(f"{base}/?positions={positions}")
        page.wait_for_function(
            "() => window.__yiwang && window.__yiwang.mapLoaded && window.__yiwang.frames > 2",
            timeout=120_000,
        )
        feeder = threading.Thread(
            target=_feed, args=(client, key, officers, seconds, stop, progress)
        )
        feeder.start()
        feeder.join()
        page.wait_for_timeout(3000)
        state = page.evaluate(
            "({received: window.__yiwang.received, renders: window.__yiwang.renders, officers: window.__yiwang.officers.size, errors: window.__yiwang.errors})"
        )
        js = page.evaluate(_JS_MS)
        browser.close()
    received, drawn = _ms(state["received"])[_WARMUP:], _ms(state["renders"])[_WARMUP:]
    in_order = sorted(js, key=lambda e: stream_order(e[0]))[_WARMUP:]
    js_ms, parse_ms = [ms for _seq, ms, _parse in in_order], [parse for *_, parse in in_order]
    return {
        "officers_on_map": state["officers"],
        "updates": len(received),
        "drawn": len(drawn),
        "js_ms_p50": _p(js_ms, 50),
        "js_ms_p99": _p(js_ms, 99),
        "parse_ms_p50": _p(parse_ms, 50),
        "parse_ms_p99": _p(parse_ms, 99),
        "arrive_p99_ms": _p(received, 99),
        "drawn_p50_ms": _p(drawn, 50),
        "drawn_p99_ms": _p(drawn, 99),
        "errors": state["errors"],
    }


_MODES = ("json", "binary")


def main(loads: tuple[int, ...] = (2_000, 10_000), seconds: int = 20) -> int:
    results: dict[str, object] = {}
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
                f"screen bench: positions of N officers once a second for {seconds} s, "
                "JSON rows then binary frames, headless Chromium"
            )
            progress = tqdm(total=len(loads) * len(_MODES) * seconds, unit="update")
            for officers in loads:
                by_mode: dict[str, dict[str, object]] = {}
                for mode in _MODES:
                    progress.set_description(f"{officers:,} officers, {mode}")
                    client.delete("screen:events")
                    by_mode[mode] = _run(
                        f"http://127.0.0.1:{port}",
                        logins[Role.DISPATCHER],
                        client,
                        "screen:events",
                        officers,
                        seconds,
                        mode,
                        progress,
                    )
                json_p99, binary_p99 = by_mode["json"]["js_ms_p99"], by_mode["binary"]["js_ms_p99"]
                ratio = (
                    round(json_p99 / max(binary_p99, 0.01), 1)  # type: ignore[operator]
                    if json_p99 is not None and binary_p99 is not None
                    else None
                )
                for mode, result in by_mode.items():
                    tqdm.write(
                        f"  {officers:>6,} officers, {mode:>6}: JavaScript per update p50 "
                        f"{result['js_ms_p50']} ms, p99 {result['js_ms_p99']} ms | drawn p50 "
                        f"{result['drawn_p50_ms']} ms, p99 {result['drawn_p99_ms']} ms; "
                        f"{result['drawn']} of {result['updates']} updates drawn"
                    )
                tqdm.write(f"  {officers:>6,} officers: JSON's JavaScript p99 is ×{ratio} binary's")
                results[str(officers)] = {**by_mode, "ratio": ratio}
            progress.close()
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
