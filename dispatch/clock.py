"""The center's clock: epoch seconds UTC, read by everything that stamps or times.

In production it is the wall clock. In test mode it runs `rate` times faster from an anchor,
so a scenario plays the whole 1/3/15 clock in well under a minute while every deadline,
presence limit and device timestamp keeps its real-world meaning in simulated seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Clock:
    rate: float = 1.0
    anchor: float = field(default_factory=time.time)

    def __call__(self) -> float:
        real = time.time()
        if self.rate == 1.0:
            return real
        return self.anchor + (real - self.anchor) * self.rate

    def real_seconds(self, simulated_s: float) -> float:
        """How long to wait on the wall clock for `simulated_s` to pass on this clock."""
        return simulated_s / self.rate
