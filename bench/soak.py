"""Soak: 2,000 devices reporting every second (the load generator) beside the simulated city
with 60 incidents an hour, for N minutes, against the center as separate processes (engine,
ingest, history worker, archiver, API), watching what must stay flat.

The center's clock runs at ×30 from 08:00 local, so the city's daily profile is the same
whenever the bench runs and windows kept on the center's clock fill within a run (a
device's 6 h index of stored fixes: 12 minutes); the generator sends its fixes' times on
that clock. Every minute: each process's resident memory (RSS) and proportional set
size (PSS: PostgreSQL's shared buffers counted once over its backends) — engine, ingest,
history, archiver, API, redis-server, mosquitto, postgres —, Redis' `used_memory`, keys and
memory by key family (the key's first part after the prefix; those that never reach 1 MB
summed in one series), the length of the engine's
streams, and the incidents in Redis against those in PostgreSQL (Redis must hold only what is
live, so its count stays bounded while PostgreSQL's grows). At the end: the per-minute table,
each series' slope over the last 10 minutes (over the whole run but its first sample,
taken as the load starts, when shorter) and whether it is flat within ±10 % there
(bench.steady), and the fixes sent, acknowledged by the broker, stored and lost. Last line:
JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from bench.steady import FLAT_TOLERANCE, trend, verdict
from dispatch.db import Database
from dispatch.settings import Settings
from dispatch.store import Store
from harness.daemons import free_port
from harness.split import SplitCenter, city_running, pinned_anchor, split_center
from simulators.cityfiles import build_demo_city
from simulators.scenario import verdicts

_RATE = 30.0
_EVERY_S = 60.0
_WINDOW_S = 600.0  # the slope and the verdict read the last 10 minutes
_PER_HOUR = 60.0  # simulated incidents an hour, on the daily profile
_DEVICES = 2_000
_SETTLE_S = 60.0  # for the ingest to give its verdict on the last fixes
_FAMILY_SAMPLE = 50  # keys of each family whose memory is measured
_SMALL_MB = 1.0  # families that never reach it are one series
_FAMILY = "redis_family_"
_MB = 1024 * 1024


def _kb(pid: int, table: str, field: str) -> int:
    """A kB figure of /proc/PID/`table` (status, smaps_rollup); 0 for a process gone."""
    try:
        for line in Path(f"/proc/{pid}/{table}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:  # gone between the listing and the read
        pass
    return 0


def _with_children(pid: int) -> list[int]:
    """`pid` and its children: PostgreSQL's memory is in its backends."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            children.append(int(stat.parent.name))
    return [pid, *children]


def _memory(split: SplitCenter) -> dict[str, float]:
    row: dict[str, float] = {}
    for name, pid in split.pids().items():
        tree = _with_children(pid) if name == "postgres" else [pid]
        row[f"rss_{name}_mb"] = sum(_kb(p, "status", "VmRSS:") for p in tree) / 1024
        row[f"pss_{name}_mb"] = sum(_kb(p, "smaps_rollup", "Pss:") for p in tree) / 1024
    return row


def _families(store: Store) -> dict[str, float]:
    """Redis' memory by key family in MB, each estimated from up to `_FAMILY_SAMPLE` keys."""
    names: dict[str, list[str]] = {}
    for key in store.redis.scan_iter(count=1000):
        names.setdefault(key.split(":")[1] if ":" in key else key, []).append(key)
    pipe = store.redis.pipeline(transaction=False)
    for keys in names.values():
        for key in keys[:_FAMILY_SAMPLE]:
            pipe.memory_usage(key)
    measured = iter(pipe.execute())
    out = {}
    for family, keys in names.items():
        sampled = [next(measured) or 0 for _ in keys[:_FAMILY_SAMPLE]]
        out[f"{_FAMILY}{family}_mb"] = sum(sampled) / len(sampled) * len(keys) / _MB
    return out


def _small_families_summed(rows: list[dict[str, float]]) -> None:
    """The key families that never reach `_SMALL_MB`, summed into one series: a verdict on a
    few kB of noise says nothing."""
    families = {name for row in rows for name in row if name.startswith(_FAMILY)}
    small = {name for name in families if max(row.get(name, 0.0) for row in rows) < _SMALL_MB}
    for row in rows:
        row[f"{_FAMILY}smaller_families_mb"] = sum(row.pop(name, 0.0) for name in small)


def _sample(split: SplitCenter, store: Store, db: Database) -> dict[str, float]:
    keys = store.keys
    row = _memory(split)
    row["redis_used_mb"] = store.redis.info("memory")["used_memory"] / _MB
    row["redis_keys"] = float(store.redis.dbsize())
    row.update(_families(store))
    for name in ("inbox", "positions", "events", "audit", "outbox"):
        row[f"xlen_{name}"] = float(store.redis.xlen(getattr(keys, name)))
    row["incidents_redis"] = float(store.redis.hlen(keys.incidents))
    with db.transaction() as conn:
        counted = conn.execute("SELECT count(*) AS n FROM incident").fetchone()
    row["incidents_pg"] = float(counted["n"] if counted else 0)
    return row


def _generator(split: SplitCenter, seconds: int) -> subprocess.Popen[str]:
    """The load generator's devices on the center's clock, as the simulator logs in."""
    settings = split.settings
    return subprocess.Popen(
        [sys.executable, "-m", "simulators.load", "--port", str(settings.mqtt_port),
         "--root", settings.topic_root, "--devices", str(_DEVICES), "--seconds", str(seconds),
         "--clock-rate", str(settings.clock_rate), "--clock-anchor", repr(settings.clock_anchor)],
        stdout=subprocess.PIPE, text=True, env=split.env,
    )  # fmt: skip


def _table(rows: list[dict[str, float]], names: list[str]) -> str:
    width = max(len(n) for n in names)
    lines = [f"{'minute':<{width}}  " + "  ".join(f"{r['t_s'] / 60:>7.0f}" for r in rows)]
    for name in names:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{r.get(name, 0.0):>7.1f}" for r in rows))
    return "\n".join(lines)


def _fixes(store: Store, load: dict[str, float], city_acknowledged: int) -> dict[str, int]:
    """Fixes sent and acknowledged by the broker (the generator's and the city's), and what the
    ingest made of them, once it has a verdict for every acknowledged one (or the wait ends)."""
    acknowledged = int(load["acknowledged"]) + city_acknowledged
    deadline = time.monotonic() + _SETTLE_S
    while verdicts(store.ingest.stats()) < acknowledged and time.monotonic() < deadline:
        time.sleep(0.5)
    stats = store.ingest.stats()
    judged = verdicts(stats)
    return {
        "load_sent": int(load["sent"]),
        "load_acknowledged": int(load["acknowledged"]),
        "city_acknowledged": city_acknowledged,
        "stored": stats.get("accepted", 0),
        "backfill": stats.get("backfill", 0),
        "rejected": judged - stats.get("accepted", 0),
        "lost": acknowledged - judged,
    }


def main(minutes: int = 30) -> int:
    seconds = minutes * 60
    with tempfile.TemporaryDirectory(prefix="yiwang-soak-") as tmp:
        workdir = Path(tmp)
        city_dir = build_demo_city(workdir / "city", officers_per_team=4)
        settings = Settings(
            http_port=free_port(), data_dir=workdir, clock_rate=_RATE,
            clock_anchor=pinned_anchor(_RATE, 8, "Asia/Shanghai", time.time()),
            engine_id="soak-engine", ingest_name="soak-ingest",
            # The generator's devices turn up on first sight, all in the first minute.
            registrations_per_min=_DEVICES * 2,
        )  # fmt: skip
        print(
            f"soak bench: {_DEVICES:,} devices × 1 Hz and the demo city at ×{_RATE:.0f} for "
            f"{minutes} min ({minutes * _RATE / 60:.1f} simulated hours from 08:00), "
            f"{_PER_HOUR:.0f} incidents an hour; engine, ingest, history, archiver and API as "
            f"processes; a sample every {_EVERY_S:.0f} s; {os.cpu_count()} cores"
        )
        rows: list[dict[str, float]] = []
        with split_center(settings, city_dir, workdir / "center") as split:
            store = Store.from_url(split.settings.redis_url, split.settings.key_prefix)
            db = Database(split.settings.database_url, max_size=1)
            generator = _generator(split, seconds)
            try:
                with city_running(split.center, per_hour=_PER_HOUR) as driver:
                    started = time.monotonic()
                    samples = int(seconds / _EVERY_S) + 1
                    for n in tqdm(range(samples), desc="soak", unit="sample", file=sys.stderr):
                        time.sleep(max(0.0, started + n * _EVERY_S - time.monotonic()))
                        rows.append(
                            {"t_s": time.monotonic() - started, **_sample(split, store, db)}
                        )
                    errors = len(driver.errors)
                load = json.loads(generator.communicate(timeout=120)[0].strip().splitlines()[-1])
                fixes = _fixes(store, load, len(driver.publisher.ledger))
            finally:
                if generator.poll() is None:
                    generator.kill()
                db.close()
                store.close()
    _small_families_summed(rows)
    names = sorted({name for row in rows for name in row if name != "t_s"})
    print(_table(rows, names))
    # The first sample is taken as the load starts: the trends read the run from the next.
    running = rows[1:]
    times = [r["t_s"] for r in running]
    summary: dict[str, object] = {
        "minutes": minutes,
        "samples": len(rows),
        "city_errors": errors,
        "fixes": fixes,
        "generator": load,
    }
    print(
        f"last {_WINDOW_S / 60:.0f} minutes (or the whole run from minute 1 if shorter): "
        "slope, verdict"
    )
    flat = 0
    for name in names:
        values = [r.get(name, 0.0) for r in running]
        found = trend(times, values, window_s=_WINDOW_S, tolerance=FLAT_TOLERANCE)
        flat += found.flat
        summary[name] = {
            "first": round(rows[0].get(name, 0.0), 1),
            "last": round(rows[-1].get(name, 0.0), 1),
            "slope_per_min": round(found.slope_per_min, 3),
            "flat": found.flat,
        }
        print(f"  {name:<28} {found.slope_per_min:>+10.3f} / min   {verdict(found)}")
    print(f"{flat} of {len(names)} series flat within ±{FLAT_TOLERANCE:.0%}")
    print(
        f"fixes: generator sent {fixes['load_sent']:,}, broker acknowledged "
        f"{fixes['load_acknowledged']:,} (+ {fixes['city_acknowledged']:,} from the city); "
        f"stored {fixes['stored']:,} ({fixes['backfill']:,} as backfill), refused "
        f"{fixes['rejected']:,}, lost {fixes['lost']:,}; generator lag p99 "
        f"{load['lag_p99_ms']} ms; city errors {errors}"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
