"""Soak: the simulated city at ×30 for N minutes against the center as separate processes
(engine, ingest, history worker, archiver, API), watching what must stay flat.

Every 30 s: each process's resident memory (VmRSS), Redis' `used_memory` and key count, the
length of the engine's streams, and the incidents in Redis against those in PostgreSQL (Redis
must hold only what is live, so its count stays bounded while PostgreSQL's grows). At the end:
each series' slope over the second half in MB (or entries) per 10 minutes, from a least-squares
fit, and its last value as a ratio to the first sample; and where Redis' memory is at the end,
by key family. The clock is pinned to 08:00 local at the start, so the city's daily profile is
the same whenever the bench runs. Last line: JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dispatch.db import Database
from dispatch.settings import Settings
from dispatch.store import Store
from harness.daemons import free_port
from harness.split import SplitCenter, city_running, pinned_anchor, split_center
from simulators.cityfiles import build_demo_city

_RATE = 30.0
_EVERY_S = 30.0
_PER_HOUR = 120.0  # simulated incidents an hour, on the daily profile
_MB = 1024 * 1024


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sample(split: SplitCenter, store: Store, db: Database) -> dict[str, float]:
    keys = store.keys
    row: dict[str, float] = {f"rss_{name}_mb": _rss_mb(pid) for name, pid in split.pids().items()}
    memory = store.redis.info("memory")
    row["redis_used_mb"] = memory["used_memory"] / _MB
    row["redis_keys"] = float(store.redis.dbsize())
    for name in ("inbox", "positions", "events", "audit", "outbox"):
        row[f"xlen_{name}"] = float(store.redis.xlen(getattr(keys, name)))
    row["incidents_redis"] = float(store.redis.hlen(keys.incidents))
    with db.transaction() as conn:
        counted = conn.execute("SELECT count(*) AS n FROM incident").fetchone()
    row["incidents_pg"] = float(counted["n"] if counted else 0)
    return row


def _families(store: Store, sample: int = 50) -> list[tuple[str, str, int, float]]:
    """Where Redis' memory is: (family, type, keys, MB) for each key family (the key's first
    part after the prefix), the memory estimated from up to `sample` keys of each."""
    keys: dict[tuple[str, str], list[str]] = {}
    for name in store.redis.scan_iter(count=1000):
        family = name.split(":")[1] if ":" in name else name
        keys.setdefault((family, str(store.redis.type(name))), []).append(name)
    rows = []
    for (family, kind), names in keys.items():
        measured = [store.redis.memory_usage(n) or 0 for n in names[:sample]]
        rows.append((family, kind, len(names), sum(measured) / len(measured) * len(names) / _MB))
    return sorted(rows, key=lambda row: -row[3])


def _slope_per_10_min(times: list[float], values: list[float]) -> float:
    """Least-squares slope over the second half of the samples, per 10 wall-clock minutes."""
    half = len(times) // 2
    xs, ys = np.array(times[half:]), np.array(values[half:])
    if len(xs) < 2 or float(np.ptp(xs)) == 0.0:
        return 0.0
    return float(np.polyfit(xs, ys, 1)[0]) * 600


def _table(rows: list[dict[str, float]], names: list[str]) -> str:
    width = max(len(n) for n in names)
    lines = [f"{'':<{width}}  " + "  ".join(f"{int(r['t_s']):>8}s" for r in rows)]
    for name in names:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{r[name]:>9.1f}" for r in rows))
    return "\n".join(lines)


def main(minutes: int = 30) -> int:
    with tempfile.TemporaryDirectory(prefix="yiwang-soak-") as tmp:
        workdir = Path(tmp)
        city_dir = build_demo_city(workdir / "city", officers_per_team=4)
        settings = Settings(
            http_port=free_port(), data_dir=workdir, clock_rate=_RATE,
            clock_anchor=pinned_anchor(_RATE, 8, "Asia/Shanghai", time.time()),
            engine_id="soak-engine", ingest_name="soak-ingest",
        )  # fmt: skip
        print(
            f"soak bench: the demo city at ×{_RATE:.0f} for {minutes} min "
            f"({minutes * _RATE / 60:.1f} simulated hours from 08:00), {_PER_HOUR:.0f} incidents "
            f"an hour; engine, ingest, history, archiver and API as processes; a sample every {_EVERY_S:.0f} s"
        )
        rows: list[dict[str, float]] = []
        with split_center(settings, city_dir, workdir / "center") as split:
            store = Store.from_url(split.settings.redis_url, split.settings.key_prefix)
            db = Database(split.settings.database_url, max_size=1)
            try:
                with city_running(split.center, per_hour=_PER_HOUR) as driver:
                    started = time.monotonic()
                    samples = int(minutes * 60 / _EVERY_S) + 1
                    for n in tqdm(range(samples), desc="soak", unit="sample", file=sys.stderr):
                        time.sleep(max(0.0, started + n * _EVERY_S - time.monotonic()))
                        rows.append(
                            {"t_s": time.monotonic() - started, **_sample(split, store, db)}
                        )
                    errors = len(driver.errors)
                families = _families(store)
            finally:
                db.close()
                store.close()
    names = [n for n in rows[0] if n != "t_s"]
    print(_table(rows, names))
    print("Redis at the end, by key family:")
    for family, kind, count, mb in families[:12]:
        print(f"  {family:<24} {kind:<8} {count:>7} keys {mb:>9.1f} MB")
    times = [r["t_s"] for r in rows]
    summary: dict[str, object] = {"minutes": minutes, "samples": len(rows), "city_errors": errors}
    print("second half: slope per 10 min, last / first sample")
    for name in names:
        values = [r[name] for r in rows]
        slope = round(_slope_per_10_min(times, values), 2)
        ratio = round(values[-1] / values[0], 2) if values[0] else None
        summary[name] = {"first": round(values[0], 1), "last": round(values[-1], 1),
                         "slope_per_10_min": slope, "last_vs_first": ratio}  # fmt: skip
        print(f"  {name:<22} {slope:>+9.2f} / 10 min   ×{ratio}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
