"""Scale-out on one machine: fixes per second through the ingest pipeline with one and then
two `yiwang ingest` processes on the shared subscription, and the device → screen latency
with two ingest workers and two API nodes, each against its baseline in the same run.

Throughput: each phase on fresh Redis and Mosquitto, with the same load. The workers'
sessions are made first and left behind (as `yiwang bench ingest` does), the load is
queued there by the broker, round robin, then the workers start and drain it. The rate is
read between 10 % and 90 % of the verdicts in Redis, so the processes' start is not in it; the
CPU seconds each process (ingest workers, redis-server, mosquitto) spends over the same
stretch, per fix, and how busy the whole machine was, say where the time goes when two
workers do not reach 1.7× one. Every fix counts as done once its worker reports it stored and
acknowledged.

Latency: a plain MQTT subscriber on the broker alone, then the center with one ingest and one
API, then with two of each (the live-feed clients spread over the nodes), at half the one
worker's rate as devices × 1 Hz (see bench/e2e.py). Last line: JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.e2e import broker_alone, cpu_seconds, through_center
from bench.ingest import bench_logins, location_messages, publish_acknowledged, session_left_behind
from devices.membership import client_id_for
from devices.topics import DEFAULT_ROOT
from dispatch.store import Store
from harness.daemons import ManagedMosquitto, ManagedRedis
from simulators.scenario import verdicts

TARGET_RATIO = 1.7
_E2E_SHARE = 0.5  # of the one worker's rate, as devices × 1 Hz
_DRAIN_TIMEOUT_S = 300.0
_ACK_TIMEOUT_S = 15.0  # a worker reports what it acknowledged on its beat (every 2 s)


@dataclass(frozen=True)
class _Moment:
    at: float  # monotonic
    verdicts: int
    cpu_s: dict[str, float]  # per process
    busy_jiffies: int  # the whole machine's, all CPUs
    total_jiffies: int


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot, from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def _moment(store: Store, pids: dict[str, int]) -> _Moment:
    busy, total = _machine_jiffies()
    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    return _Moment(time.monotonic(), verdicts(store.ingest.stats()), cpu, busy, total)


def _wait_for(store: Store, pids: dict[str, int], count: int, deadline: float) -> _Moment:
    while time.monotonic() < deadline:
        now = _moment(store, pids)
        if now.verdicts >= count:
            return now
        time.sleep(0.02)
    return _moment(store, pids)


def drain(
    tmp: Path, workers: int, messages: list[tuple[str, bytes]], devices: int
) -> dict[str, object]:
    """Fixes per second `workers` ingest processes drain from the broker into Redis."""
    folder = tmp / f"drain{workers}"
    redis_service, broker = ManagedRedis(folder / "redis"), ManagedMosquitto(folder / "mqtt")
    redis_service.start()
    broker.start()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        store = Store.from_url(redis_service.url)
        login, simulator = bench_logins(broker)
        names = [f"scale-{n}" for n in range(1, workers + 1)]
        for name in names:
            session_left_behind(login, client_id_for(name))
        publish_acknowledged(login, messages, simulator)
        env = {
            **os.environ,
            "YIWANG_REDIS_URL": redis_service.url,
            "YIWANG_MQTT_HOST": "127.0.0.1",
            "YIWANG_MQTT_PORT": str(broker.port),
            "YIWANG_INGEST_MQTT_USERNAME": str(login.username),
            "YIWANG_INGEST_MQTT_PASSWORD": str(login.password),
            "YIWANG_TOPIC_ROOT": DEFAULT_ROOT,
            "YIWANG_UNKNOWN_DEVICES": "register",
            "YIWANG_REGISTRATIONS_PER_MIN": str(devices),
        }
        started = time.monotonic()
        for name in names:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "dispatch.cli", "ingest"],
                env={**env, "YIWANG_INGEST_NAME": name},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        pids = {
            **{name: p.pid for name, p in processes.items()},
            "redis-server": redis_service.process.pid,
            "mosquitto": broker.process.pid,
        }
        total = len(messages)
        deadline = started + _DRAIN_TIMEOUT_S
        first = _wait_for(store, pids, total // 10, deadline)
        last = _wait_for(store, pids, total * 9 // 10, deadline)
        done = _wait_for(store, pids, total, deadline)
        shares = _acknowledged(store, names, total)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(15)
        broker.stop()
        redis_service.stop()
    counted = last.verdicts - first.verdicts
    elapsed = last.at - first.at
    busy = (last.busy_jiffies - first.busy_jiffies) / (last.total_jiffies - first.total_jiffies)
    cores = os.cpu_count() or 1
    cpu_cores = {name: (last.cpu_s[name] - first.cpu_s[name]) / elapsed for name in pids}
    return {
        "workers": workers,
        "per_s": round(counted / elapsed),
        "drain_s": round(done.at - started, 1),
        "stored": done.verdicts,
        "acknowledged": sum(shares.values()),
        "lost": total - done.verdicts,
        "shares": shares,
        "cpu_us_per_fix": {
            name: round(cpu_cores[name] * elapsed / counted * 1e6, 1) for name in pids
        },
        "cpu_cores": {name: round(share, 2) for name, share in cpu_cores.items()},
        "machine_busy": round(busy, 3),
        # Busy cores our processes do not account for: other work on the machine, or the bench.
        "other_cores": round(busy * cores - sum(cpu_cores.values()), 2),
    }


def _acknowledged(store: Store, names: list[str], total: int) -> dict[str, int]:
    """What each worker reports stored and acknowledged, once they add up to `total` (or
    when the wait ends)."""
    deadline = time.monotonic() + _ACK_TIMEOUT_S
    while True:
        reported = {m.name: m.stored for m in store.members.members() if m.name in names}
        if sum(reported.values()) >= total or time.monotonic() > deadline:
            return reported
        time.sleep(0.2)


def _where_time_goes(phase: dict[str, object]) -> str:
    per_fix: dict[str, float] = phase["cpu_us_per_fix"]  # type: ignore[assignment]
    cores = os.cpu_count() or 1
    spent = sum(per_fix.values())
    parts = ", ".join(f"{name} {us:.1f}" for name, us in per_fix.items())
    return (
        f"CPU µs per fix: {parts} (all {spent:.1f}: at most {cores / spent * 1e6:,.0f} fixes/s "
        f"on {cores} cores); machine busy {phase['machine_busy']:.0%}, "
        f"{phase['other_cores']} cores busy outside these processes"
    )


def main(messages: int = 100_000, devices: int = 2_000, seconds: int = 30) -> int:
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="yiwang-scale-") as tmp:
        workdir = Path(tmp)
        load = location_messages(messages, devices, time.time())
        print(
            f"scale bench: {messages:,} QoS 1 fixes from {devices:,} devices drained by 1 and "
            f"then 2 ingest processes on the shared subscription; {os.cpu_count()} cores"
        )
        phases = [drain(workdir, workers, load, devices) for workers in (1, 2)]
        for phase in phases:
            print(
                f"  {phase['workers']} ingest worker(s)  {phase['per_s']:>8,} fixes/s  "
                f"(drained in {phase['drain_s']} s with the start; stored {phase['stored']:,}, "
                f"acknowledged {phase['acknowledged']:,}, lost {phase['lost']}; "
                f"shares {phase['shares']})"
            )
            print(f"      {_where_time_goes(phase)}")
        one, two = phases
        ratio = round(two["per_s"] / one["per_s"], 2)  # type: ignore[operator]
        reached = ratio >= TARGET_RATIO
        print(
            f"  2 workers / 1 worker  ×{ratio} (target ×{TARGET_RATIO}: {'met' if reached else 'not met'})"
        )
        results.update(one_worker=one, two_workers=two, ratio=ratio, target=TARGET_RATIO)

        fleet = round(one["per_s"] * _E2E_SHARE)  # type: ignore[operator]
        print(
            f"e2e at {fleet:,} devices × 1 Hz ({_E2E_SHARE:.0%} of one worker's rate), "
            f"{seconds} s per phase, publish → live-feed client"
        )
        broker = ManagedMosquitto(workdir / "broker-alone")
        broker.start()
        try:
            base = broker_alone(broker, fleet, seconds)
        finally:
            broker.stop()
        print(f"  broker alone           p50 {base['p50_ms']} ms  p99 {base['p99_ms']} ms")
        latency: dict[str, object] = {"devices": fleet, "broker_alone": base}
        for ingests, apis in ((1, 1), (2, 2)):
            ours = through_center(workdir, fleet, seconds, ingests=ingests, apis=apis)
            versus = round(ours["p99_ms"] / base["p99_ms"], 1) if base["p99_ms"] else None  # type: ignore[operator]
            stored = ours["stored"]
            print(
                f"  {ingests} ingest + {apis} API     p50 {ours['p50_ms']} ms  p99 {ours['p99_ms']} ms  "
                f"live p99 {ours['live_p99_ms']} ms  (×{versus} the broker's p99); stored "
                f"{stored['accepted']:,} of {stored['published']:,}, not shown {ours['not_shown']}; "  # type: ignore[index]
                f"CPU cores {ours['cpu_cores']}"
            )
            latency[f"{ingests}x{apis}"] = {**ours, "p99_vs_broker": versus}
        results["e2e"] = latency
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
