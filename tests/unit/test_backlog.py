"""The ingest's backlog: in order while it keeps up, each device's newest first when it lags,
every message handed out once and acknowledged in arrival order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.backlog import Backlog
from devices.batch import Received

NOW = 1_000.0


def messages(topics: list[str], start: int = 0) -> list[Received]:
    return [Received(start + n + 1, 1, t, b"{}", float(start + n)) for n, t in enumerate(topics)]


def test_in_order_while_it_keeps_up() -> None:
    backlog: Backlog[Received] = Backlog(batch_max=4, limit=100)
    backlog.add(messages(["a", "b", "a"]))
    assert [m.mid for m in backlog.next_batch(NOW)] == [1, 2, 3]
    assert [m.mid for m in backlog.stored()] == [1, 2, 3]
    assert len(backlog) == 0 and backlog.held == 0 and backlog.carried_ahead == 0


def test_newest_of_each_device_first_when_it_lags_then_the_rest_in_order() -> None:
    backlog: Backlog[Received] = Backlog(batch_max=4, limit=100)
    # Three devices, four fixes each, arriving interleaved: mids 1..12.
    backlog.add(messages(["a", "b", "c"] * 4))
    first = backlog.next_batch(NOW)
    # Two live-lane slots (batch_max // 2) go to the newest of a and b, then the oldest two.
    assert [m.mid for m in first] == [10, 11, 1, 2]
    # Acknowledged in arrival order: 10 and 11 wait for everything received before them.
    assert [m.mid for m in backlog.stored()] == [1, 2]
    second = backlog.next_batch(NOW)
    assert [m.mid for m in second] == [12, 3, 4, 5]  # c's newest, then in order
    assert [m.mid for m in backlog.stored()] == [3, 4, 5]
    rest = []
    while len(backlog):
        rest += [m.mid for m in backlog.next_batch(NOW)]
        backlog.stored()
    assert rest == [6, 7, 8, 9]  # in order, without the three carried ahead
    assert backlog.held == 0 and backlog.carried_ahead == 3


def test_a_lag_too_short_to_show_keeps_arrival_order() -> None:
    backlog: Backlog[Received] = Backlog(batch_max=2, limit=100, live_after_s=5.0)
    backlog.add(messages(["a", "b", "a", "b"], start=990))  # received at 990.0 to 993.0
    assert [m.mid for m in backlog.next_batch(994.9)] == [991, 992]
    backlog.stored()
    backlog.add(messages(["a", "b", "a"], start=994))  # mids 995-997
    # The oldest waiting (992.0) has waited 5 s: the newest fix (one lane slot) goes first.
    assert [m.mid for m in backlog.next_batch(997.0)] == [997, 993]


def test_a_device_heard_again_after_being_carried_ahead_is_carried_again() -> None:
    backlog: Backlog[Received] = Backlog(batch_max=2, limit=100)
    backlog.add(messages(["a", "a", "a", "a"]))
    assert [m.mid for m in backlog.next_batch(NOW)] == [4, 1]
    backlog.stored()
    backlog.add(messages(["a"], start=4))  # mid 5
    assert [m.mid for m in backlog.next_batch(NOW)] == [5, 2]
    assert [m.mid for m in backlog.stored()] == [2]
    assert [m.mid for m in backlog.next_batch(NOW)] == [3]
    assert [m.mid for m in backlog.stored()] == [3, 4, 5]


def test_full_bounds_what_is_read_ahead_and_clear_forgets_it() -> None:
    backlog: Backlog[Received] = Backlog(batch_max=2, limit=5)
    backlog.add(messages(["a"] * 5))
    assert backlog.full
    backlog.next_batch(NOW)
    assert backlog.full  # handed out is not acknowledged
    backlog.clear()
    assert not backlog.full and len(backlog) == 0 and backlog.oldest_received_at() is None


def test_a_batch_is_handed_out_once_before_it_is_stored() -> None:
    backlog: Backlog[Received] = Backlog(batch_max=2, limit=10)
    backlog.add(messages(["a", "b", "c"]))
    backlog.next_batch(NOW)
    with pytest.raises(RuntimeError, match="not stored yet"):
        backlog.next_batch(NOW)
    with pytest.raises(ValueError, match="cannot hold"):
        Backlog(batch_max=10, limit=5)


@given(
    arrivals=st.lists(st.lists(st.sampled_from("abcdefg"), max_size=30), min_size=1, max_size=12),
    batch_max=st.integers(2, 9),
)
def test_every_message_is_handed_out_once_and_acknowledged_in_order(arrivals, batch_max) -> None:
    backlog: Backlog[Received] = Backlog(batch_max=batch_max, limit=10_000)
    handed, acked, start = [], [], 0
    for topics in arrivals:
        backlog.add(messages(topics, start))
        start += len(topics)
        batch = backlog.next_batch(NOW)
        assert len(batch) <= batch_max
        handed += batch
        acked += backlog.stored()
    while len(backlog):
        handed += backlog.next_batch(NOW)
        acked += backlog.stored()
    mids = [m.mid for m in handed]
    assert sorted(mids) == list(range(1, start + 1))
    assert [m.mid for m in acked] == list(range(1, start + 1))
    # Apart from those carried ahead, a device's messages are handed out in arrival order.
    for topic in "abcdefg":
        mine = [m.mid for m in handed if m.topic == topic]
        behind = [mid for n, mid in enumerate(mine) if any(later < mid for later in mine[n + 1 :])]
        assert len(behind) <= backlog.carried_ahead
