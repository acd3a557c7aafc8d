"""Messages read from the broker but not yet stored: which go into the next batch, and which
may be acknowledged once it is stored (pure).

While the ingest keeps up, batches take messages in arrival order. When it falls behind (more
than one batch waiting, the oldest for `live_after_s` or longer), each batch first carries
the newest message of every topic heard since that topic was last carried ahead — the live
lane — and fills the rest with the oldest waiting messages, in order. So the live view shows where every device is now even while the
store works through seconds of backlog; the older fixes still arrive, each once, and are
judged as the late fixes they have become (backfill): a lag short enough not to show on a
screen is not worth judging fixes out of their order.

Acknowledgements keep arrival order (MQTT 3.1.1 and 5 ask a receiver to acknowledge QoS 1
messages in the order they came): a message carried ahead is acknowledged when everything
received before it is stored too.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar


class Message(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def received_at(self) -> float: ...


M = TypeVar("M", bound=Message)


class Backlog(Generic[M]):
    def __init__(self, batch_max: int, limit: int, live_after_s: float = 0.0) -> None:
        if batch_max < 2 or limit < batch_max:
            raise ValueError(f"a backlog of {limit} cannot hold batches of {batch_max}")
        self.batch_max = batch_max
        self.limit = limit
        self.live_after_s = live_after_s
        # With the lane off (an infinite wait) nobody asks for the newest per topic: the
        # bookkeeping stays off the hot path.
        self._lane = math.isfinite(live_after_s)
        self._seq = 0
        self._waiting: deque[tuple[int, M]] = deque()  # arrival order, unsent
        self._ahead: set[int] = set()  # carried ahead, still in `_waiting`
        # Per topic, its newest waiting message since the topic was last carried ahead.
        self._newest: dict[str, tuple[int, M]] = {}
        self._unacked: deque[tuple[int, M]] = deque()  # arrival order, sent or not
        self._stored: set[int] = set()
        self._handed: list[int] = []
        self.carried_ahead = 0  # messages that went through the live lane since the start

    def __len__(self) -> int:
        """Messages waiting to be sent to the store."""
        return len(self._waiting) - len(self._ahead)

    @property
    def held(self) -> int:
        """Messages read and not yet acknowledged: the memory this backlog holds."""
        return len(self._unacked)

    @property
    def full(self) -> bool:
        """Read no more: the broker keeps the rest until stored batches are acknowledged."""
        return len(self._unacked) >= self.limit

    def oldest_received_at(self) -> float | None:
        for seq, message in self._waiting:
            if seq not in self._ahead:
                return message.received_at
        return None

    def add(self, messages: Sequence[M]) -> None:
        for message in messages:
            self._seq += 1
            entry = (self._seq, message)
            self._waiting.append(entry)
            self._unacked.append(entry)
            if self._lane:
                self._newest[message.topic] = entry

    def next_batch(self, now: float) -> list[M]:
        """Up to `batch_max` waiting messages; each is handed out once."""
        if self._handed:
            raise RuntimeError("the previous batch is not stored yet")
        batch: list[M] = []
        oldest = self.oldest_received_at()
        if len(self) > self.batch_max and oldest is not None and now - oldest >= self.live_after_s:
            lane = list(itertools.islice(self._newest.values(), self.batch_max // 2))
            for seq, message in lane:
                del self._newest[message.topic]
                self._ahead.add(seq)
                self._handed.append(seq)
                batch.append(message)
            self.carried_ahead += len(lane)
        while self._waiting and len(batch) < self.batch_max:
            seq, message = self._waiting.popleft()
            if seq in self._ahead:
                self._ahead.discard(seq)
                continue
            if self._newest.get(message.topic, (0,))[0] == seq:
                del self._newest[message.topic]
            self._handed.append(seq)
            batch.append(message)
        return batch

    def stored(self) -> list[M]:
        """The last batch is stored: the messages that may now be acknowledged, in arrival
        order (those carried ahead wait for everything received before them)."""
        self._stored.update(self._handed)
        self._handed = []
        done = []
        while self._unacked and self._unacked[0][0] in self._stored:
            seq, message = self._unacked.popleft()
            self._stored.discard(seq)
            done.append(message)
        return done

    def clear(self) -> None:
        """The session ended: the broker will redeliver everything unacknowledged."""
        self._waiting.clear()
        self._ahead.clear()
        self._newest.clear()
        self._unacked.clear()
        self._stored.clear()
        self._handed = []
