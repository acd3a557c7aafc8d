"""The ingest's reconnect delays (devices.backoff): short, doubling, capped, jittered and
started again after every session that subscribed."""

from __future__ import annotations

import random

import pytest

from devices.backoff import CAP_S, FIRST_S, Backoff, longest_wait_s


def delays(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next() for _ in range(n)]


def test_delays_double_from_a_tenth_of_a_second_up_to_three_seconds() -> None:
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.0, 3.0]
    got = delays(Backoff(random.Random(1)), len(ceilings))
    for delay, ceiling in zip(got, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(got) <= CAP_S and got[0] <= FIRST_S


def first_attempt_after(backoff: Backoff, back_at_s: float) -> float:
    """When, counted from the loss, the first attempt at or after `back_at_s` is made."""
    at = 0.0
    while at < back_at_s:
        at += backoff.next()
    return at


@pytest.mark.parametrize(
    ("back_at_s", "found_within_s"), [(0.06, 0.2), (0.5, 0.8), (1.0, 1.6), (30.0, CAP_S)]
)
def test_a_broker_that_is_back_is_found_soon_whatever_the_draw(
    back_at_s: float, found_within_s: float
) -> None:
    assert longest_wait_s(back_at_s) == found_within_s
    waits = [
        first_attempt_after(Backoff(random.Random(seed)), back_at_s) - back_at_s
        for seed in range(500)
    ]
    assert max(waits) <= found_within_s
    # The bound is that of the draws, not a loose one: some come near it.
    assert max(waits) > found_within_s / 2


def test_jitter_spreads_workers_that_lost_the_broker_together() -> None:
    first = {round(Backoff(random.Random(seed)).next(), 6) for seed in range(50)}
    assert len(first) == 50 and min(first) >= FIRST_S / 2


def test_the_same_seed_gives_the_same_delays() -> None:
    assert delays(Backoff(random.Random(7)), 10) == delays(Backoff(random.Random(7)), 10)


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(random.Random(3))
    delays(backoff, 12)
    assert backoff.ceiling_s == CAP_S
    backoff.reset()
    assert backoff.next() <= FIRST_S
    assert backoff.ceiling_s == 2 * FIRST_S


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(random.Random(0), first_s=5.0, cap_s=3.0)
    with pytest.raises(ValueError, match="first_s"):
        Backoff(random.Random(0), first_s=0.0)
