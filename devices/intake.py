"""Positions from channels that answer each request (HTTP), through the MQTT path's writer.

A request becomes the message its device would have published on `{root}/{officer}/{device}`
and is handed to a `BatchWriter`: judged, chained and stored exactly as MQTT fixes are, and the
caller learns the verdict once Redis holds it. Requests are written one at a time, since the
writer's cached chain heads belong to one thread; a write is one Redis call, so a process
answers about a thousand positions a second this way.
"""

from __future__ import annotations

import threading

from devices.batch import BatchWriter, Received
from devices.quality import Rejection
from devices.registry import Binding
from devices.topics import Channel, device_topic
from dispatch.core.track import device_key


class FixIntake:
    def __init__(self, writer: BatchWriter) -> None:
        self.writer = writer
        self._lock = threading.Lock()

    def received_at(self) -> float:
        """The writer's clock: when a request counts as received."""
        return self.writer.clock()

    def store(self, binding: Binding, payload: bytes, received_at: float) -> Rejection | None:
        """Store one location of the bound device; None once Redis holds it, else why not.

        A fix already stored (a client repeating a request it saw no answer to) is refused as
        a duplicate: the caller may count that as stored."""
        message = self._message(binding, payload, received_at)
        with self._lock:
            (verdict,) = self.writer.write_judged([message])
        return verdict

    def refuse(
        self, binding: Binding, payload: bytes, received_at: float, rejection: Rejection
    ) -> None:
        """Keep a request of the bound device that holds no position in the dead letters."""
        message = self._message(binding, payload, received_at)
        with self._lock:
            self.writer.refuse(message, device_key(binding.officer, binding.device), rejection)

    def _message(self, binding: Binding, payload: bytes, received_at: float) -> Received:
        topic = device_topic(
            self.writer.config.root, binding.officer, binding.device, Channel.LOCATION
        )
        return Received(0, 0, topic, payload, received_at)
