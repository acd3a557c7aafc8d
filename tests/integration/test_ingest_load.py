"""Ingest under a city's load, every part a real process: Mosquitto restarted twice under
1,000 devices, and two ingest workers under 2,000 devices of which one is stopped, one
killed and retired, while fixes keep coming once a second.

The devices are the load generator's (simulators.load, `--resend`): trackers that keep each
fix until the broker acknowledges it and send it again after a reconnect, counting per
device what the broker acknowledged. What Redis holds is read back per device and compared
with that count. The time a fix was due to leave is known from its device and `tst`
(`simulators.load.sent_at`), the time it was stored from its track entry's stream id (Redis's
own clock, on this machine): the difference is how late it was stored.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devices.backoff import longest_wait_s
from devices.membership import Member
from dispatch.api.app import create_app
from dispatch.core.track import DeviceKey, verify_chain
from dispatch.settings import Settings
from dispatch.store import Store
from harness.center import center_accounts
from harness.daemons import MOSQUITTO_PERSISTENCE_SETTINGS, ManagedMosquitto
from simulators.load import PREFIX, sent_at
from tests.conftest import Logins
from tests.integration.helpers import bearer, verdicts, wait_until
from tests.integration.ingest_processes import INGEST, ingest_env, ingest_process, roll

# Mosquitto writes its sessions and queues to disk after this many changes (each message
# queued for a subscriber is one): what a kill -9 may lose of what it had acknowledged.
AUTOSAVE_CHANGES = int(MOSQUITTO_PERSISTENCE_SETTINGS.split("autosave_interval ")[1].split()[0])


@dataclass(frozen=True, slots=True)
class StoredFix:
    fix_at: int
    received_at: float
    stored_at: float  # the track entry's stream id: Redis's clock when the batch was written
    backfill: bool


def device(k: int) -> DeviceKey:
    return DeviceKey(f"{PREFIX}{k:05d}/{PREFIX}{k:05d}")


def stored_fixes(store: Store, k: int) -> list[StoredFix]:
    """Device k's stored fixes in storage order; its chain verified on the way."""
    key = device(k)
    rows = list(store.tracks.chain_links(key))
    verify_chain(key, [link for _, link, _ in rows])
    fixes = []
    for entry_id, link, backfill in rows:
        fix = json.loads(link.canonical)
        stored_at = int(entry_id.split("-")[0]) / 1000
        fixes.append(StoredFix(fix["fix_at"], fix["received_at"], stored_at, backfill))
    return fixes


@contextmanager
def load(
    port: int, logins: Logins, root: str, devices: int, seconds: int, start: int
) -> Iterator[subprocess.Popen[str]]:
    """The load generator in a process of its own, its devices resending what was not
    acknowledged; the first round leaves at `start` (epoch s)."""
    command = [sys.executable, "-m", "simulators.load", "--resend", "--port", str(port)]
    command += ["--root", root, "--devices", str(devices), "--seconds", str(seconds)]
    command += ["--connections", "4", "--start", str(start)]
    username, password = logins.simulator
    env = {
        **os.environ,
        "YIWANG_SIMULATOR_MQTT_USERNAME": username,
        "YIWANG_SIMULATOR_MQTT_PASSWORD": password,
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def load_report(process: subprocess.Popen[str], timeout_s: float) -> dict:
    out, _ = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, out
    return dict(json.loads(out))


def sleep_until(at: float) -> None:
    time.sleep(max(0.0, at - time.time()))


def settle(store: Store, expected: int, timeout_s: float = 30.0) -> int:
    """Wait until `expected` fixes are accepted, or (some lost) none more came for 2 s."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        accepted = store.ingest.stats().get("accepted", 0)
        if accepted >= expected:
            return accepted
        if accepted != last:
            last, since = accepted, time.monotonic()
        elif time.monotonic() - since >= 2.0:
            return accepted
        time.sleep(0.1)
    return last


def missing_fixes(
    stored: list[list[StoredFix]], report: dict, start: int, seconds: int
) -> list[tuple[int, int]]:
    """(device, tst) of every fix the broker acknowledged to its device but Redis lacks
    (`stored`: each device's fixes); also checks that none is stored twice."""
    missing = []
    for k, acked in enumerate(report["acked_by_device"]):
        assert acked == seconds, f"{device(k)}: {acked} of {seconds} fixes acknowledged"
        fix_ats = {fix.fix_at for fix in stored[k]}
        assert len(fix_ats) == len(stored[k]), f"{device(k)} has a fix stored twice"
        missing += [(k, at) for at in range(start, start + seconds) if at not in fix_ats]
    return missing


def api_for(
    redis_url: str, port: int, logins: Logins, prefix: str, database_url: str
) -> TestClient:
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        mqtt_port=port,
        **logins.settings,
        topic_root=prefix,
        database_url=database_url,
    )
    return TestClient(create_app(settings, workers=()))


RESTART_DEVICES, RESTART_SECONDS = 1_000, 24
RESTARTS_AT_S = (6, 14)  # seconds into the load
# Connecting and subscribing on loopback, with the machine busy.
SUBSCRIBE_WITHIN_S = 0.5


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_broker_restarted_twice_under_1000_devices_loses_nothing_it_saved(
    tmp_path: Path, redis_service, store: Store, prefix: str, database_url: str, signal_name: str
) -> None:
    """Mosquitto stopped (SIGTERM) or killed (-9) and started again twice, 8 s apart, while
    1,000 devices send a fix a second.

    What the system guarantees, each asserted:
    - every device gets every fix acknowledged in the end: what the broker had not
      acknowledged when it went, the device sends again after reconnecting;
    - the ingest acknowledges a message only once Redis holds it with its verdict (no more
      messages acknowledged than verdicts stored; a batch stored whose acknowledgement died
      with the broker comes again and is filed a duplicate), and no fix is stored twice,
      however often the broker delivered it;
    - SIGTERM: the broker writes its sessions and queues to disk as it stops, so no fix it
      acknowledged to a device is missing;
    - SIGKILL: the broker loses what changed since its last save (every `autosave_interval`
      changes; `yiwang bench persistence` measures it). A fix it acknowledged to a device and
      had not yet handed to the ingest may be lost with it: the broker's persistence loss, not
      the ingest's, at most AUTOSAVE_CHANGES - 1 fixes per kill and only fixes due before a
      kill. A fix the ingest acknowledged is never among them: it is in Redis already;
    - the ingest subscribes again within what its backoff allows after an absence that long
      (devices.backoff.longest_wait_s: 0.2 s after 0.1 s away), both times: it starts its
      backoff short again after each session that subscribed.
    """
    broker = ManagedMosquitto(tmp_path / "mosquitto")  # this test's own, to restart
    broker.start()
    name = f"ingest-{prefix}"
    try:
        logins = Logins(broker, prefix, center_accounts(broker, prefix, prefix))
        env = ingest_env(redis_service.url, broker.port, logins, prefix, name)
        restarts = []
        with ExitStack() as stack:
            stack.enter_context(ingest_process(env, name, store, stderr=subprocess.DEVNULL))
            api = stack.enter_context(
                api_for(redis_service.url, broker.port, logins, prefix, database_url)
            )
            api.headers.update(bearer(database_url))
            start = math.ceil(time.time()) + 1
            gen = stack.enter_context(
                load(broker.port, logins, prefix, RESTART_DEVICES, RESTART_SECONDS, start)
            )
            for n, at_s in enumerate(RESTARTS_AT_S, start=1):
                sleep_until(start + at_s)
                went_at = time.time()
                if signal_name == "SIGTERM":
                    broker.stop()
                else:
                    broker.kill()
                broker.start()
                back_at = time.time()

                def subscribed_again(n: int = n) -> Member | None:
                    member = roll(store).named(name)
                    return member if member and member.sessions == n + 1 else None

                wait_until(lambda: subscribed_again() is not None, 15, f"session {n + 1}")
                member = subscribed_again()
                assert member is not None
                restarts.append((went_at, back_at, member))
            report = load_report(gen, RESTART_SECONDS + 60)
            sent = RESTART_DEVICES * RESTART_SECONDS
            accepted = settle(store, sent)
            settled_at = time.time()

            def beat_since_settled() -> Member | None:
                member = roll(store).named(name)
                return member if member and member.beat_at > settled_at else None

            wait_until(lambda: beat_since_settled() is not None, 10, "a beat after settling")
            final = beat_since_settled()
            workers = api.get("/api/ingest/stats").json()["workers"]

        assert (report["sent"], report["acknowledged"], report["unacknowledged"]) == (sent, sent, 0)
        stored = [stored_fixes(store, k) for k in range(RESTART_DEVICES)]
        missing = missing_fixes(stored, report, start, RESTART_SECONDS)
        stats = store.ingest.stats()
        assert stats["accepted"] == accepted == sent - len(missing)
        assert final is not None and final.stored <= verdicts(store)
        for went_at, back_at, member in restarts:
            reconnect_s = member.subscribed_at - back_at
            print(
                f"\n{signal_name}: broker down {back_at - went_at:.2f} s; ingest subscribed "
                f"again {max(0.0, reconnect_s):.2f} s after it was back (its gap "
                f"{member.gap_s:.2f} s, {member.received_before_gap} received before it)"
            )
            # What the backoff allows after an absence this long, and time to subscribe.
            allowed_s = longest_wait_s(back_at - went_at) + SUBSCRIBE_WITHIN_S
            assert reconnect_s <= allowed_s, "the ingest waited longer than its backoff allows"
        [worker] = workers
        assert (worker["name"], worker["sessions"]) == (name, len(RESTARTS_AT_S) + 1)
        assert worker["received_since_gap"] == worker["received"] - worker["received_before_gap"]
        assert worker["received_since_gap"] > 0
        last_went_at = restarts[-1][0]
        lost_due = [sent_at(at, k, RESTART_DEVICES) for k, at in missing]
        print(
            f"{signal_name}: {sent} fixes sent, {report['acknowledged']} acknowledged by the "
            f"broker, {accepted} stored, {len(missing)} lost; device reconnects "
            f"{report['reconnects']}; duplicates filed {stats.get('rejected:duplicate', 0)}; "
            f"verdicts {verdicts(store)}, acknowledged by the ingest {final.stored}; "
            f"generator lag max {report['lag_max_ms']} ms; lost fixes due "
            f"{[round(d - start, 2) for d in sorted(lost_due)[:5]]} s into the load"
        )
        if signal_name == "SIGTERM":
            assert missing == []
        else:
            assert len(missing) <= len(RESTARTS_AT_S) * (AUTOSAVE_CHANGES - 1)
            assert all(due <= last_went_at for due in lost_due), "lost after the last kill"
    finally:
        broker.stop()


SCALE_DEVICES, SCALE_SECONDS = 2_000, 60
STOP_A_AT_S, RESTART_A_AT_S, KILL_B_AT_S, RETIRE_B_AT_S = 12, 18, 28, 40
# A fix is stored within this of when it was due, but for the dead worker's share.
LATE_AFTER_S = 1.0


def test_two_workers_under_2000_devices_one_stopped_one_killed_and_retired_lose_nothing(
    broker, logins, redis_service, store: Store, prefix: str, database_url: str
) -> None:
    """Two `yiwang ingest` processes share the subscription under 2,000 devices × 1 Hz for
    60 s. Worker a is stopped (SIGTERM) and started again, a rolling restart; worker b is
    killed (-9) and not restarted: /api/health turns degraded naming it within 10 s, and
    `yiwang ingest --retire` stores what the broker queued in its session meanwhile.

    Asserted: every fix each device had acknowledged is stored once, its chain intact; none
    is stored more than 1 s after it was due, but those of b's share that waited in its
    session between the kill and the retirement, each stored by the retirement, as backfill
    wherever its device already had a newer fix.
    """
    a, b = f"a-{prefix}", f"b-{prefix}"
    env = {
        name: ingest_env(redis_service.url, broker.port, logins, prefix, name) for name in (a, b)
    }
    with ExitStack() as stack:
        api = stack.enter_context(
            api_for(redis_service.url, broker.port, logins, prefix, database_url)
        )
        api.headers.update(bearer(database_url))
        worker_a = stack.enter_context(ingest_process(env[a], a, store, stderr=subprocess.DEVNULL))
        worker_b = stack.enter_context(ingest_process(env[b], b, store, stderr=subprocess.DEVNULL))
        start = math.ceil(time.time()) + 1
        gen = stack.enter_context(
            load(broker.port, logins, prefix, SCALE_DEVICES, SCALE_SECONDS, start)
        )

        sleep_until(start + STOP_A_AT_S)
        stopping_at = time.monotonic()
        worker_a.terminate()
        assert worker_a.wait(15) == 0
        stop_s = time.monotonic() - stopping_at
        assert roll(store).named(a) is None, "a left: deregistered"

        sleep_until(start + RESTART_A_AT_S)
        stack.enter_context(ingest_process(env[a], a, store, stderr=subprocess.DEVNULL))

        sleep_until(start + KILL_B_AT_S)
        worker_b.kill()  # SIGKILL: its session, with its share, stays with the broker
        killed_at = time.time()
        wait_until(
            lambda: api.get("/api/health").json()["ingest_workers_dead"] == [b],
            10,
            "health to name the killed worker",
        )
        dead_s = time.time() - killed_at
        health = api.get("/api/health").json()
        assert (health["status"], health["ingest_workers"]) == ("degraded", [a])

        sleep_until(start + RETIRE_B_AT_S)
        retire_at = time.time()
        retired = subprocess.run(
            [*INGEST, "--retire", b],
            env=env[b],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        retired_at = time.time()
        assert retired.returncode == 0, retired.stderr
        health = api.get("/api/health").json()
        assert (health["status"], health["ingest_workers"], health["ingest_workers_dead"]) == (
            "ok",
            [a],
            [],
        )
        report = load_report(gen, SCALE_SECONDS + 60)

    sent = SCALE_DEVICES * SCALE_SECONDS
    assert (report["sent"], report["acknowledged"], report["unacknowledged"]) == (sent, sent, 0)
    accepted = settle(store, sent)
    stored = [stored_fixes(store, k) for k in range(SCALE_DEVICES)]
    assert missing_fixes(stored, report, start, SCALE_SECONDS) == []
    assert accepted == sent

    on_time, held = [], []  # lateness of fixes, apart from those b's session held
    held_window = (killed_at - LATE_AFTER_S, retired_at)
    backfill = 0
    for k in range(SCALE_DEVICES):
        newest = -1
        for fix in stored[k]:
            due = sent_at(fix.fix_at, k, SCALE_DEVICES)
            late_s = fix.stored_at - due
            if late_s > LATE_AFTER_S:
                assert held_window[0] <= due <= held_window[1], (device(k), fix, late_s)
                assert fix.stored_at >= retire_at, "stored late, but not from b's session"
                held.append(late_s)
            else:
                on_time.append(late_s)
            # Backfill exactly where the device already had a newer fix stored.
            assert fix.backfill == (fix.fix_at < newest), (device(k), fix)
            backfill += fix.backfill
            newest = max(newest, fix.fix_at)
    assert held, "b's session held a share of the fixes while it was dead"
    stats = store.ingest.stats()
    assert stats.get("backfill", 0) == backfill
    print(
        f"\n{sent} fixes sent, {report['acknowledged']} acknowledged by the broker, {accepted} "
        f"stored, 0 lost; a stopped in {stop_s:.2f} s; b reported dead after {dead_s:.2f} s; "
        f"retired in {retired_at - retire_at:.2f} s ({retired.stdout.strip()}); "
        f"max lateness {max(on_time):.3f} s of {len(on_time)} fixes (p99 "
        f"{sorted(on_time)[int(len(on_time) * 0.99)]:.3f} s), {len(held)} held in b's session "
        f"stored up to {max(held):.1f} s late, {backfill} as backfill; generator lag max "
        f"{report['lag_max_ms']} ms"
    )
    assert max(on_time) <= LATE_AFTER_S
