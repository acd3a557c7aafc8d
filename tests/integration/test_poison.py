"""Hostile payloads against the real ingest and engine (real Mosquitto and Redis): no input
stops a process, every message gets a verdict, and a valid fix right after is stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import paho.mqtt.client as mqtt
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.batch import BatchWriter
from devices.ingest import IngestWorker
from devices.sink import IngestBatch, PendingWrite
from dispatch.core.policy import PolicyBook, TimelinePolicy
from dispatch.engine import Engine
from dispatch.store import Store
from dispatch.store.ingest import IngestStore
from tests.conftest import RunningIngest, ingest_config
from tests.integration.helpers import mqtt_client, publish_all, verdicts, wait_until

# Found by fuzzing: each of these once stopped a process, and redelivered, every restart.
NESTED_LOCATION = (
    b'{"_type":"location","lat":29.08,"lon":119.65,"tst":%d,"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
)
NESTED_SOS = b'{"_type":"sos","tst":%d,"raw":{"a":' + b"[" * 990 + b"]" * 990 + b"}}"
BD09_SOS = b'{"_type":"sos","crs":"bd09","lat":1e308,"lon":119.65,"tst":%d}'

QUICK = {"respond_s": 1, "turn_out_s": 60, "handle_s": 120, "ladder": [[0, "notify_squad_leader"]]}


def location(tst: float, lat: float = 29.08) -> bytes:
    return json.dumps({"_type": "location", "lat": lat, "lon": 119.65, "tst": int(tst)}).encode()


def sos(tst: float) -> bytes:
    return json.dumps({"_type": "sos", "tst": int(tst), "lat": 29.08, "lon": 119.65}).encode()


class BrokenCategory(PolicyBook):
    """A fault deep in the core, for incidents of one category."""

    def for_incident(self, category: str, priority: int) -> TimelinePolicy:
        if category == "broken":
            raise KeyError(category)
        return super().for_incident(category, priority)


@pytest.fixture
def engine(store: Store) -> Iterator[tuple[Engine, threading.Thread]]:
    running = Engine(
        store,
        holder="e1",
        policies=BrokenCategory.from_dict({"default": QUICK}),
        lease_ms=3000,
    )
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    wait_until(running.leading.is_set, 10, "the engine to lead")
    yield running, thread
    stop.set()
    thread.join(10)


def opened(store: Store) -> set[str]:
    return set(store.incidents.load_incidents())


def test_the_nested_location_is_rejected_and_the_next_fix_stored(
    broker, logins, store, prefix, start_ingest
) -> None:
    running = start_ingest()
    now = time.time()
    topic = f"{prefix}/zhang3/BC-1"
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, [(topic, NESTED_LOCATION % int(now - 2)), (topic, location(now - 1))])
    wait_until(lambda: verdicts(store) == 2, 10, "two verdicts")
    stats = store.ingest.stats()
    assert (stats["rejected:too_deep"], stats["accepted"]) == (1, 1)
    assert int(store.tracks.device_record("zhang3/BC-1")["fix_at"]) == int(now - 1)
    assert running.thread.is_alive() and running.worker.connected.is_set()
    client.loop_stop()


def test_the_poisoned_sos_never_stop_the_engine_and_the_alarm_is_kept(
    broker, logins, store, prefix, start_ingest, engine
) -> None:
    leader, thread = engine
    start_ingest()
    now = time.time()
    base = f"{prefix}/zhang3/BC-1"
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, [(base, location(now - 5, lat=29.07))])
    wait_until(lambda: verdicts(store) == 1, 10, "the officer's fix")
    sos_topic = f"{base}/sos"
    publish_all(client, [(sos_topic, NESTED_SOS % int(now)), (sos_topic, BD09_SOS % int(now))])
    wait_until(lambda: verdicts(store) == 3, 10, "two more verdicts")
    stats = store.ingest.stats()
    # The nested body is no message; the BD-09 alarm is kept without its impossible position.
    assert (stats["rejected:too_deep"], stats["msg:sos"]) == (1, 1)
    wait_until(lambda: len(opened(store)) == 1, 10, "the alarm to open an incident")
    (alarm,) = store.incidents.load_incidents().values()
    assert (alarm.location.lon, alarm.location.lat) == pytest.approx((119.65, 29.07))
    assert "its position was refused (lat_out_of_range" in alarm.title
    # As an ingest without those checks filed them: the engine refuses them with a reason.
    for body in (NESTED_SOS % int(now), BD09_SOS % int(now)):
        store.redis.xadd(
            store.keys.inbox,
            {"kind": "sos", "device": "zhang3/BC-9", "officer": "wang5", "body": body},
        )
    publish_all(client, [(sos_topic, sos(now + 1))])
    wait_until(lambda: len(opened(store)) == 2, 10, "the valid SOS to open an incident")
    refused = [r["reason"] for r in store.incidents.audit_records() if r["kind"] == "refused"]
    assert any("levels deep" in r for r in refused)
    assert any("lat 1e+308 is outside" in r for r in refused)
    # The clocks run: the incident's respond deadline (1 s) fires.
    wait_until(lambda: any(r["kind"] == "escalation" for r in store.incidents.audit_records()), 10)
    assert thread.is_alive() and leader.leading.is_set()
    wait_until(lambda: store.incidents.inbox_waiting_s() == 0.0, 10, "an empty inbox")
    client.loop_stop()


def test_an_entry_whose_processing_raises_is_retried_once_then_dead_lettered(store, engine) -> None:
    leader, thread = engine
    body = {"incident": "B", "priority": 2, "location": [119.65, 29.08], "source": "12345"}
    poison = store.incidents.command({"type": "IncidentReported", "category": "broken", **body})
    store.incidents.command({"type": "IncidentReported", "category": "x", **body, "incident": "OK"})
    wait_until(lambda: opened(store) == {"OK"}, 10, "the good incident")
    [dead] = store.incidents.engine_deadletters()
    assert (dead["entry_id"], dead["kind"]) == (poison, "command")
    assert dead["error"] == f"inbox entry {poison}: KeyError: 'broken'"
    assert store.incidents.engine_stats() == {"deadlettered": 1}
    assert store.incidents.inbox_waiting_s() == 0.0
    assert thread.is_alive() and leader.leading.is_set()


class FaultyStore(IngestStore):
    """The real store, with a fault for one message: Redis refuses any batch holding a clip
    named POISON, as it would a record its function cannot take."""

    def send_batch(self, batch: IngestBatch, received_at: float) -> PendingWrite:
        if any('"clip_id":"POISON"' in row[4] for row in batch.messages):
            raise redis.ResponseError("ERR the store refused the record")
        return super().send_batch(batch, received_at)


def test_a_batch_that_cannot_be_written_keeps_its_good_messages(
    broker, logins, store, prefix
) -> None:
    sink = FaultyStore(store.redis, store.keys, store.registry)
    worker = IngestWorker(
        # Half a second's wait puts every message of the test in one batch.
        BatchWriter(sink, replace(ingest_config(prefix), batch_wait_s=0.5)),
        broker=logins.worker("ingest"),
        name=f"ingest-{prefix}",
        roll=store.members,
        session_expiry_s=600,
    )
    running = RunningIngest(worker)
    now = time.time()
    base = f"{prefix}/zhang3/BC-1"
    clip = {"_type": "clip", "start": int(now) - 60}
    messages = [(base, location(now - 3 + n, lat=29.08 + n * 1e-5)) for n in range(3)]
    messages.insert(1, (f"{base}/clip", json.dumps({**clip, "clip_id": "POISON"}).encode()))
    messages.append((f"{base}/clip", json.dumps({**clip, "clip_id": "GOOD"}).encode()))
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    try:
        publish_all(client, messages)
        wait_until(lambda: verdicts(store) == len(messages), 10, "a verdict for each")
        stats = store.ingest.stats()
        assert (stats["accepted"], stats["rejected:processing_error"]) == (4, 1)
        [dead] = store.ingest.deadletters()
        assert dead["reason"] == "processing_error" and dead["topic"] == f"{base}/clip"
        assert dead["detail"] == "processing raised ResponseError: ERR the store refused the record"
        assert store.clips.clip("GOOD") is not None and store.clips.clip("POISON") is None
        assert int(store.tracks.device_record("zhang3/BC-1")["fix_at"]) == int(now - 1)
        assert running.thread.is_alive() and worker.connected.is_set()
    finally:
        client.loop_stop()
        running.stop()


# Payloads per channel: valid-looking objects with hostile values, and hostile bytes.
SUFFIXES = ["", "event", "sos", "clip", "hb", "conn", "ack", "waypoint", "status"]
BASES: dict[str, dict[str, object]] = {
    "": {"_type": "location", "lat": 29.08, "lon": 119.65, "tst": 0},
    "event": {"_type": "transition", "lat": 29.08, "lon": 119.65, "tst": 0, "event": "enter"},
    "sos": {"_type": "sos", "tst": 0, "lat": 29.08, "lon": 119.65},
    "clip": {"_type": "clip", "clip_id": "C-1", "start": 0},
    "hb": {"_type": "devstat", "tst": 0, "batt": 50},
    "conn": {"_type": "conn", "online": False, "tst": 0},
    "ack": {"_type": "ack", "order_id": "O-1", "status": "accepted", "tst": 0},
    "waypoint": {"_type": "waypoint", "tst": 0},
    "status": {"_type": "status"},
}
INBOX_KINDS = ["sos", "command", "ack", "transition", "conn", "lwt"]
FIELDS = ["lat", "lon", "tst", "acc", "crs", "start", "end", "batt", "raw", "desc", "x"]
hostile_numbers = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 10**30, -(2**63), 0, 91, -181]
)
hostile_values = st.one_of(
    hostile_numbers,
    st.floats(),
    st.sampled_from(["bd09", "gcj02", "wgs84", "utm"]),
    st.text(max_size=20),
    st.integers(1, 3000).map(lambda n: json.loads("[" * min(n, 900) + "]" * min(n, 900))),
)


def nested(depth: int) -> bytes:
    return (
        b'{"_type":"location","lat":29.08,"lon":119.65,"tst":1,"x":'
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


@st.composite
def hostile(draw: st.DrawFn, suffix: str) -> bytes:
    kind = draw(st.sampled_from(["values", "nested", "huge", "utf8", "bytes"]))
    if kind == "nested":
        return nested(draw(st.integers(17, 5000)))
    if kind == "huge":
        return b'{"_type":"location","x":"' + b"x" * draw(st.integers(4100, 200_000)) + b'"}'
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    body = dict(BASES[suffix])
    body["tst"] = int(time.time())
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        body[field] = draw(hostile_values)
    encoded = json.dumps(body, allow_nan=True).encode()
    if kind == "utf8":
        at = draw(st.integers(0, len(encoded)))
        encoded = (
            encoded[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + encoded[at:]
        )
    return encoded


@st.composite
def volleys(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    suffixes = draw(st.lists(st.sampled_from(SUFFIXES), min_size=1, max_size=4))
    return [(s, draw(hostile(s))) for s in suffixes]


def test_fuzzed_payloads_on_every_suffix_stop_nothing(
    broker, logins, store, prefix, start_ingest, engine
) -> None:
    leader, engine_thread = engine
    ingest = start_ingest()
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv5, logins.simulator)
    sent = [0]
    start = int(time.time()) - 3600  # the probe's fixes, a second apart: each one live

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(volleys())
    def volley(messages: list[tuple[str, bytes]]) -> None:
        probe_at = start + sent[0]
        base = f"{prefix}/fuzz/BC-F"
        probe = (f"{prefix}/probe/BC-P", location(probe_at, lat=29.08 + sent[0] * 1e-6))
        publish_all(client, [(f"{base}/{s}" if s else base, p) for s, p in messages] + [probe])
        # The same bodies straight into the engine's inbox, as a faulty writer would put them.
        for (_suffix, payload), kind in zip(messages, INBOX_KINDS, strict=False):
            body = payload.decode("utf-8", "replace")
            store.redis.xadd(store.keys.inbox, {"kind": kind, "officer": "fuzz", "body": body})
        sent[0] += len(messages) + 1
        wait_until(lambda: verdicts(store) == sent[0], 10, f"{sent[0]} verdicts")
        assert int(store.tracks.device_record("probe/BC-P")["fix_at"]) == probe_at

    volley()
    assert ingest.thread.is_alive() and ingest.worker.connected.is_set()
    assert engine_thread.is_alive() and leader.leading.is_set()
    wait_until(lambda: store.incidents.inbox_waiting_s() == 0.0, 10, "the engine to keep up")
    refused = sum(r["kind"] == "refused" for r in store.incidents.audit_records(100_000))
    print(f"\n{sent[0]} messages, verdicts {store.ingest.stats()}; engine refused {refused}")
    client.loop_stop()
