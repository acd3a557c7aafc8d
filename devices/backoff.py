"""How long the ingest waits before it connects to the broker again (pure).

A broker restart is the common case: it is back within a second or two, maybe twice in a
row, so the ingest tries again soon and keeps trying often. The delay starts at `first_s`
and doubles up to `cap_s`: a broker that stays away costs one refused connection every few
seconds, and one that comes back is found within `cap_s` at worst. Each delay is drawn from
the upper half of its ceiling, so workers that lost the broker at the same moment do not
all knock at the same instant. Every session that subscribed starts the sequence again.

The random source is passed in; nothing here reads a clock or sleeps.
"""

from __future__ import annotations

import random

FIRST_S = 0.1
CAP_S = 3.0


class Backoff:
    """The delays before successive attempts to connect; `reset()` after a session that
    subscribed."""

    def __init__(
        self, rng: random.Random, *, first_s: float = FIRST_S, cap_s: float = CAP_S
    ) -> None:
        if not 0 < first_s <= cap_s:
            raise ValueError(f"backoff needs 0 < first_s <= cap_s, not {first_s} and {cap_s}")
        self.first_s = first_s
        self.cap_s = cap_s
        self._rng = rng
        self.ceiling_s = first_s  # the longest the next delay may be

    def next(self) -> float:
        """The delay before the next attempt, in [ceiling/2, ceiling]; the ceiling doubles."""
        ceiling = self.ceiling_s
        self.ceiling_s = min(ceiling * 2, self.cap_s)
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self) -> None:
        self.ceiling_s = self.first_s


def longest_wait_s(away_s: float, *, first_s: float = FIRST_S, cap_s: float = CAP_S) -> float:
    """The longest a broker that was away `away_s` after the loss can wait, once back, for
    the next attempt, whatever the draws: the ceiling of the latest attempt that could still
    fall short of `away_s` when every delay before it drew its shortest."""
    ceiling, shortest_before = first_s, 0.0
    while shortest_before + ceiling / 2 < away_s and ceiling < cap_s:
        shortest_before += ceiling / 2
        ceiling = min(ceiling * 2, cap_s)
    return ceiling
