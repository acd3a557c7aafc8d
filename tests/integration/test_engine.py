"""The engine over a real Redis: incidents on the clock, and leadership that survives kill -9."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from devices.batch import BatchWriter, Received
from devices.registry import Binding
from dispatch.core.model import Incident, Milestone, Phase
from dispatch.core.policy import PolicyBook
from dispatch.engine import Engine
from dispatch.store import IncidentStore
from tests.conftest import ingest_config
from tests.integration.engines import alerts, report
from tests.integration.helpers import store_fix, wait_until

SHORT = {
    "respond_s": 2,
    "turn_out_s": 4,
    "handle_s": 6,
    "warn_at": 0.5,
    "accept_within_s": 30,
    "ladder": [[0, "notify_squad_leader"]],
}


def order(engine_store: IncidentStore, incident: str, officer: str) -> None:
    engine_store.command(
        {
            "type": "OrderIssued",
            "incident": incident,
            "order": "O1",
            "officers": [officer],
            "by": "d7",
        }
    )


def saved(engine_store: IncidentStore, incident: str) -> Incident:
    return engine_store.load_incidents()[incident]


def test_an_incident_runs_on_the_clock_through_device_acks(store) -> None:
    engine_store = store.incidents
    engine = Engine(
        store, holder="e1", policies=PolicyBook.from_dict({"default": SHORT}), lease_ms=3000
    )
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    thread.start()
    try:
        report(engine_store, "INC-1")
        wait_until(
            lambda: any(
                a["milestone"] == "respond" and a.get("level") == 1 for a in alerts(engine_store)
            ),
            10,
        )
        order(engine_store, "INC-1", "zhang3")
        # The terminal answers on /ack; ingest files it in the inbox like this.
        ack = {"_type": "ack", "order_id": "O1", "tst": int(time.time())}
        for status in ("accepted", "enroute"):
            store.redis.xadd(
                store.keys.inbox,
                {
                    "kind": "ack",
                    "device": "zhang3/BC-1",
                    "officer": "zhang3",
                    "body": json.dumps({**ack, "status": status}),
                },
            )
        wait_until(lambda: saved(engine_store, "INC-1").phase is Phase.EN_ROUTE, 10)
        incident = saved(engine_store, "INC-1")
        respond, turn_out = (
            incident.reached(Milestone.RESPOND),
            incident.reached(Milestone.TURN_OUT),
        )
        assert respond.late_by_s > 0 and respond.by == "d7"
        assert turn_out.late_by_s == 0 and (turn_out.by, turn_out.via) == ("zhang3", "button")
        stale = {
            "kind": "ack",
            "device": "x/y",
            "officer": "li4",
            "body": json.dumps({**ack, "status": "accepted", "order_id": "O9"}),
        }
        store.redis.xadd(store.keys.inbox, stale)
        wait_until(lambda: any(r["kind"] == "refused" for r in engine_store.audit_records()), 10)
        refused = [r for r in engine_store.audit_records() if r["kind"] == "refused"]
        assert "O9" in refused[0]["reason"]
        orders = engine_store.outbox_entries()
        assert [o["action"] for o in orders] == ["send"]
        notice = json.loads(orders[0]["notice"])
        assert (notice["order_id"], notice["officers"], notice["dispatcher"]) == (
            "O1",
            ["zhang3"],
            "d7",
        )
        assert notice["respond_by"] == incident.reported_at + 2
    finally:
        stop.set()
        thread.join(10)


def engine_processes(
    redis_url: str, prefix: str, folder: Path, policy: dict, lease_ms: int = 3000
) -> Callable[[str], subprocess.Popen]:
    """Starts `yiwang engine` processes by name, on a `lease_ms` lease and `policy` for
    everything."""
    policy_file = folder / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({"default": policy}))
    env = {
        **os.environ,
        "YIWANG_REDIS_URL": redis_url,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_ENGINE_LEASE_MS": str(lease_ms),
        "YIWANG_POLICY_FILE": str(policy_file),
    }

    def start(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatch.cli", "engine"],
            env={**env, "YIWANG_ENGINE_ID": name},
            stderr=subprocess.DEVNULL,
        )

    return start


def test_standby_takes_over_a_killed_leader_and_every_deadline_fires_once(
    store, redis_service, prefix, tmp_path
) -> None:
    start = engine_processes(redis_service.url, prefix, tmp_path, SHORT)
    engine_store = store.incidents
    engines = {"A": start("A")}
    wait_until(lambda: store.redis.get(store.keys.engine_lease) == "A", 15, "engine A to lead")
    engines["B"] = start("B")
    try:
        count = 1000
        for n in range(count):
            report(engine_store, f"INC-{n:04d}")
        wait_until(
            lambda: sum(a.get("level") == 1 for a in alerts(engine_store)) >= count,
            20,
            "first breaches",
        )
        engines["A"].kill()  # kill -9 the leader mid-stream
        killed_at = time.time()
        wait_until(lambda: len(alerts(engine_store)) >= 6 * count, 40, "every alert")
        time.sleep(1.0)  # nothing more may come
        fired = alerts(engine_store)
        keys = collections.Counter(
            (a["incident"], a["milestone"], a.get("level", 0)) for a in fired
        )
        assert len(keys) == 6 * count and max(keys.values()) == 1  # each exactly once
        assert {a["engine"] for a in fired if a["at"] < killed_at} == {"A"}  # only the leader acts
        by_b = [a for a in fired if a["engine"] == "B"]
        assert by_b, "the standby never fired anything"
        takeover_s = min(a["at"] for a in by_b) - killed_at
        print(
            f"\nstandby took over {takeover_s:.2f} s after the leader was killed; it fired {len(by_b)} alerts"
        )
        assert takeover_s < 10
        overdue = [a["at"] - a["due_at"] for a in by_b]
        assert max(overdue) < takeover_s + 2  # overdue ones fired on takeover, not later
    finally:
        for process in engines.values():
            process.kill()
            process.wait()


def test_a_standby_records_departure_and_arrival_at_the_times_of_fixes_stored_in_the_gap(
    store, redis_service, prefix, tmp_path
) -> None:
    """The leader dies with an officer on the way, who drives into the fence before the
    standby takes over. The standby reads those fixes too: departure and arrival are seen by
    GPS, at the fixes' own times, and every position entry is settled."""
    store.registry.bind([Binding("BC-1", "zhang3", "")])
    # A 12 s lease: the standby takes over no sooner than 8 s after the kill.
    policy = {**SHORT, "respond_s": 60, "turn_out_s": 120, "handle_s": 600, "arrive_radius_m": 40}
    start = engine_processes(redis_service.url, prefix, tmp_path, policy, lease_ms=12_000)
    engine_store = store.incidents

    def drive(metres_south: float, at: float) -> None:
        point = (119.65, 29.08 - metres_south / 111_320.0)
        store_fix(store, "zhang3", "BC-1", point, received_at=at)

    engines = {"A": start("A")}
    try:
        wait_until(lambda: store.redis.get(store.keys.engine_lease) == "A", 15, "engine A to lead")
        engines["B"] = start("B")
        drive(320, time.time())
        report(engine_store, "INC-1")
        order(engine_store, "INC-1", "zhang3")
        wait_until(
            lambda: getattr(engine_store.load_incidents().get("INC-1"), "order", None),
            10,
            "the order",
        )
        engines["A"].kill()  # kill -9: nothing is resigned or settled
        issued_at = saved(engine_store, "INC-1").order.issued_at
        # North at 50 m a second, from the second after the order; inside the fence at 30 m.
        track = [280, 230, 180, 130, 80, 30, 10]
        for n, metres in enumerate(track, start=1):
            drive(metres, int(issued_at) + n)
        assert store.redis.get(store.keys.engine_lease) == "A"  # all stored in the gap
        wait_until(lambda: store.redis.get(store.keys.engine_lease) == "B", 20, "B to lead")
        wait_until(lambda: saved(engine_store, "INC-1").phase is Phase.ON_SCENE, 10, "arrival")
        incident = saved(engine_store, "INC-1")
        turn_out, arrive = incident.reached(Milestone.TURN_OUT), incident.reached(Milestone.ARRIVE)
        assert (turn_out.via, turn_out.by) == ("gps", "zhang3")
        assert (arrive.via, arrive.by) == ("gps", "zhang3")
        # The fixes' times, not the takeover's (and not the newest fix's).
        assert arrive.reached_at == int(issued_at) + 1 + track.index(30)
        assert issued_at < turn_out.reached_at < arrive.reached_at
        wait_until(
            lambda: store.redis.xpending(store.keys.positions, "engine")["pending"] == 0,
            5,
            "every position settled",
        )
        (group,) = store.redis.xinfo_groups(store.keys.positions)
        assert group["lag"] == 0
    finally:
        for process in engines.values():
            process.kill()
            process.wait()


def test_an_officer_silent_past_the_offline_limit_loses_the_order(store) -> None:
    store.registry.bind([Binding("BC-9", "zhao6", "")])
    writer = BatchWriter(store.ingest, ingest_config("owntracks"))
    fix = json.dumps(
        {"_type": "location", "lat": 29.08, "lon": 119.65, "tst": int(time.time())}
    ).encode()
    writer.write([Received(1, 1, "owntracks/zhao6/BC-9", fix, time.time())])
    engine_store = store.incidents
    policies = PolicyBook.from_dict(
        {"default": {**SHORT, "respond_s": 60, "turn_out_s": 120, "handle_s": 300}}
    )
    engine = Engine(
        store, holder="e2", policies=policies, lease_ms=3000, presence_limits=(1.0, 2.0)
    )
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    thread.start()
    try:
        report(engine_store, "INC-S")
        order(engine_store, "INC-S", "zhao6")
        wait_until(lambda: any(r["kind"] == "redispatch" for r in engine_store.audit_records()), 15)
        redispatch = next(r for r in engine_store.audit_records() if r["kind"] == "redispatch")
        assert "officer went offline" in json.loads(redispatch["detail"])["reason"]
        assert saved(engine_store, "INC-S").past_officers == ("zhao6",)
    finally:
        stop.set()
        thread.join(10)


def test_an_arrival_driven_while_no_engine_leads_is_seen_by_the_standby(
    store, redis_service, prefix, tmp_path
) -> None:
    long_clock = {**SHORT, "respond_s": 600, "turn_out_s": 900, "handle_s": 1800}
    start = engine_processes(redis_service.url, prefix, tmp_path, long_clock)

    store.registry.bind([Binding("BC-9", "zhao6", "")])
    writer = BatchWriter(store.ingest, ingest_config(prefix))

    def drive(lon: float, lat: float, tst: int) -> None:
        fix = json.dumps({"_type": "location", "lat": lat, "lon": lon, "tst": tst}).encode()
        writer.write([Received(tst, 1, f"{prefix}/zhao6/BC-9", fix, time.time())])

    engine_store = store.incidents
    engines = {"A": start("A")}
    try:
        wait_until(lambda: store.redis.get(store.keys.engine_lease) == "A", 15, "A to lead")
        now = int(time.time())
        drive(119.62, 29.08, now - 300)  # ~3 km west of the scene
        report(engine_store, "INC-G")
        engine_store.command(
            {"type": "OrderIssued", "incident": "INC-G", "order": "O1", "officers": ["zhao6"],
             "by": "d7"}
        )  # fmt: skip
        for status in ("accepted", "enroute"):
            ack = {"_type": "ack", "order_id": "O1", "tst": now, "status": status}
            store.redis.xadd(
                store.keys.inbox,
                {"kind": "ack", "device": "zhao6/BC-9", "officer": "zhao6",
                 "body": json.dumps(ack)},
            )  # fmt: skip
        wait_until(
            lambda: (
                getattr(engine_store.load_incidents().get("INC-G"), "phase", None) is Phase.EN_ROUTE
            ),
            15,
            "the officer en route",
        )
        engines["B"] = start("B")
        engines["A"].kill()  # kill -9: no step of A's settles what comes next
        # While nobody leads, the officer drives into the scene's fence and stays.
        inside = [now - 30 + n for n in range(5)]
        drive(119.635, 29.08, now - 100)
        for tst in inside:
            drive(119.65, 29.08, tst)
        assert store.redis.get(store.keys.engine_lease) == "A"  # A's lease is still running
        wait_until(
            lambda: saved(engine_store, "INC-G").reached(Milestone.ARRIVE) is not None,
            20,
            "the standby to see the arrival",
        )
        arrived = saved(engine_store, "INC-G").reached(Milestone.ARRIVE)
        assert (arrived.by, arrived.via) == ("zhao6", "gps")
        assert store.redis.get(store.keys.engine_lease) == "B"
        arrival = next(
            r for r in engine_store.audit_records() if r.get("event") == "OfficerArrived"
        )
        assert arrival["engine"] == "B" and arrival["entry_id"].startswith("fix:zhao6/BC-9:")
        assert int(arrival["entry_id"].rsplit(":", 1)[1]) in inside
        pending = store.redis.xpending(store.keys.positions, "engine")
        assert pending["pending"] == 0
    finally:
        for process in engines.values():
            process.kill()
            process.wait()
