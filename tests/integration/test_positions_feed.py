"""Live positions over a real Redis: the engine's stream is bounded, and an entry the bound
drops before the engine settled it is counted, never lost silently; a screen's snapshot shows
a device as the live entries do."""

from __future__ import annotations

import asyncio
import json

from devices.batch import BatchWriter, Received
from dispatch.core.feed import POSITION_ROWS, PositionRow
from dispatch.store import IngestStore, ScreenFeed, Store
from dispatch.store.feed import POSITIONS_GROUP
from tests.conftest import ingest_config

T0 = 1_800_000_000.0


def test_the_bound_counts_every_entry_it_drops_unsettled(store: Store) -> None:
    ingest = IngestStore(store.redis, store.keys, store.registry, positions_bound=3)
    writer = BatchWriter(ingest, ingest_config("owntracks"), clock=lambda: T0 + 100)
    batches = iter(range(100))

    def batch() -> str:
        """One ingest batch with two officers' fixes; returns its positions entry."""
        n = next(batches)
        fixes = [
            (
                f"owntracks/{user}/phone",
                {"_type": "location", "lon": 119.65, "lat": 29.08, "tst": T0 + n},
            )
            for user in ("zhang3", "li4")
        ]
        writer.write([Received(1, n, t, json.dumps(f).encode(), T0 + 100) for t, f in fixes])
        return store.redis.xrevrange(store.keys.positions, count=1)[0][0]

    def held() -> list[str]:
        return [entry_id for entry_id, _ in store.redis.xrange(store.keys.positions)]

    for _ in range(4):  # before any engine: history, dropped uncounted
        batch()
    assert len(held()) == 3 and store.incidents.engine_stats() == {}

    feed = store.positions
    feed.ensure_group()
    settled, pending, unread = batch(), batch(), batch()
    ids, rows = feed.read(2)
    assert ids == [settled, pending] and len(rows) == 4
    store.redis.xack(store.keys.positions, POSITIONS_GROUP, settled)  # a step wrote it
    batch()  # drops the settled entry
    assert store.incidents.engine_stats() == {}
    batch()  # drops the pending one
    batch()  # drops the unread one
    assert store.incidents.engine_stats() == {
        "positions_dropped_entries": 2,
        "positions_dropped": 4,
    }
    assert unread not in held() and len(held()) == 3

    # A leader taking over gets the dropped pending entry back empty, and the rest in full.
    assert feed.read(100, unsettled=True) == ([pending], [])
    ids, rows = feed.read(100)
    assert ids == held() and len(rows) == 6


def test_a_snapshot_shows_a_device_as_the_live_entries_do(store: Store, redis_service) -> None:
    writer = BatchWriter(store.ingest, ingest_config("owntracks"), clock=lambda: T0 + 2)
    fixes = [
        ("owntracks/zhang3/BC-1", {"lon": 119.65, "lat": 29.08, "acc": 5, "cog": 90}),
        ("owntracks/li4/phone", {"lon": 119.66, "lat": 29.09}),  # no accuracy, no course
    ]
    writer.write(
        [
            Received(
                1, n, topic, json.dumps({"_type": "location", "tst": T0, **f}).encode(), T0 + 2
            )
            for n, (topic, f) in enumerate(fixes)
        ]
    )
    ((_, entry),) = store.redis.xrange(store.keys.events)
    live = POSITION_ROWS.decode(entry["body"])
    assert live == [
        PositionRow("zhang3/BC-1", 119.65, 29.08, int(T0), 5.0, 90.0, T0 + 2),
        PositionRow("li4/phone", 119.66, 29.09, int(T0), None, None, T0 + 2),
    ]

    async def snapshot() -> list[PositionRow]:
        feed = ScreenFeed.from_url(redis_service.url, store.keys)
        try:
            return (await feed.snapshot()).devices
        finally:
            await feed.close()

    by_device = {row.device: row for row in asyncio.run(snapshot())}
    assert by_device == {row.device: row for row in live}
