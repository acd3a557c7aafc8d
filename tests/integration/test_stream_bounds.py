"""The engine's inbox and the order outbox keep only what a consumer group still needs."""

from __future__ import annotations

from dispatch.store import Store


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
