"""The engine's inbox and the order outbox keep only what a consumer group still needs."""

from __future__ import annotations

import json
import time

from devices.batch import BatchWriter, Received
from dispatch.core.step import EngineStep
from dispatch.store import Store
from dispatch.store.incidents import EVENTS_WINDOW_S
from tests.conftest import ingest_config


def test_a_stream_keeps_from_the_oldest_entry_a_group_still_needs(store: Store, prefix) -> None:
    stream = f"{prefix}:bounded"
    ids = [store.redis.xadd(stream, {"n": str(n)}) for n in range(10)]

    def trim() -> int:
        return int(store.redis.fcall("trim_consumed", 1, stream))

    assert trim() == 0  # no group: nothing is known to be consumed
    store.redis.xgroup_create(stream, "a", id="0")
    store.redis.xgroup_create(stream, "b", id="0")
    assert trim() == 0  # neither group has read anything
    read_a = store.redis.xreadgroup("a", "c", {stream: ">"}, count=6)[0][1]
    store.redis.xack(stream, "a", *[entry_id for entry_id, _ in read_a[:4]])
    read_b = store.redis.xreadgroup("b", "c", {stream: ">"}, count=3)[0][1]
    store.redis.xack(stream, "b", *[entry_id for entry_id, _ in read_b])
    # a still holds entries 5 and 6 unacknowledged; b has settled 1-3: keep from entry 4.
    assert trim() == 3
    assert store.redis.xrange(stream)[0][0] == ids[3]
    rest_b = store.redis.xreadgroup("b", "c", {stream: ">"})[0][1]
    store.redis.xack(stream, "b", *[entry_id for entry_id, _ in rest_b])
    assert trim() == 1  # now a's oldest unacknowledged entry is the first kept
    assert store.redis.xrange(stream)[0][0] == ids[4]
    store.redis.xack(stream, "a", *[entry_id for entry_id, _ in read_a[4:]])
    assert trim() == 2 and store.redis.xrange(stream)[0][0] == ids[6]
    assert store.redis.xlen(stream) == 4  # entries a has not read yet stay


def _fix(tst: int, acc: int = 5) -> bytes:
    return json.dumps(
        {"_type": "location", "lon": 119.65, "lat": 29.09, "tst": tst, "acc": acc}
    ).encode()


def test_a_devices_index_of_fixes_keeps_six_hours_before_its_newest(store: Store) -> None:
    start = 1_780_000_000
    hours = [start + 3600 * h for h in range(9)]
    for n, tst in enumerate(hours):
        writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=lambda t=tst: t + 1)
        writer.write([Received(n + 1, 1, "owntracks/zhang3/BC-1", _fix(tst), tst + 1)])
    # Hours 2 to 8 are within 6 h of the newest fix (hour 8); hours 0 and 1 have gone.
    kept = store.redis.zrangebyscore(
        store.keys.seen("zhang3/BC-1"), "-inf", "+inf", withscores=True
    )
    assert [int(score) for _member, score in kept] == hours[2:]
    # A copy of a fix inside the horizon, in other bytes, is still known by its fix.
    writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=lambda: hours[-1] + 2)
    writer.write([Received(20, 1, "owntracks/zhang3/BC-1", _fix(hours[7], acc=7), hours[-1] + 2)])
    assert store.ingest.stats()["rejected:duplicate"] == 1
    assert store.redis.xlen(store.keys.track("zhang3/BC-1")) == len(hours)


def test_the_engine_keeps_only_unsettled_positions_and_the_screens_window(store: Store) -> None:
    # Entries a screen could still resume from stay; older ones (by their ids' time) go.
    old = int((time.time() - EVENTS_WINDOW_S - 60) * 1000)
    for n in range(300):
        store.redis.xadd(store.keys.events, {"type": "positions", "body": "[]"}, id=f"{old}-{n}")
    recent = store.redis.xadd(store.keys.events, {"type": "positions", "body": "[]"})
    store.positions.ensure_group()
    for n in range(4):
        store.redis.xadd(
            store.keys.positions, {"body": json.dumps([[f"d{n}", 1, 2, 3, None, None, 4]])}
        )
    read, _rows = store.positions.read(count=10)
    assert len(read) == 4
    assert store.incidents.try_lead("bounds", 10_000)
    step = EngineStep(positions_done=read[:3])
    assert store.incidents.apply(step, "bounds", zone="Asia/Shanghai")
    kept = [entry_id for entry_id, _ in store.redis.xrange(store.keys.events)]
    # Trimmed by whole stream nodes (approximate, so cheap at every step): at most the node
    # holding the window's edge (100 entries) stays of the old ones.
    assert kept[-1] == recent and len(kept) <= 101
    # The three settled entries are gone; the one read but not settled stays.
    assert store.redis.xlen(store.keys.positions) == 1
