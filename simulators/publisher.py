"""Publishing device messages over MQTT with a ledger of what the broker acknowledged.

The ledger is how tests prove nothing was lost: every message the broker acknowledged is
listed, so stored + rejected can be compared with it one for one.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

_INFLIGHT = 1000
# paho numbers messages with 16-bit ids: keep well under 65,535 unacknowledged at once.
_OUTSTANDING_MAX = 2_000
_ACK_TIMEOUT_S = 120.0


class PublishError(RuntimeError):
    """The broker did not take a message; the text names the broker and the count."""


@dataclass
class Ledger:
    """Topics and payloads the broker acknowledged, in publish order."""

    entries: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, topic: str, payload: bytes) -> None:
        self.entries.append((topic, payload))

    def __len__(self) -> int:
        return len(self.entries)


class Publisher:
    """One MQTT connection publishing QoS 1 messages for many devices (multiplexed).

    `login` is the (username, password) of a broker account allowed to publish under the
    root: the simulator's account, or a device's own for its topics.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.login = login
        self.ledger = Ledger()
        self._in_flight: deque[tuple[mqtt.MQTTMessageInfo, str, bytes]] = deque()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if login is not None:
            self.client.username_pw_set(*login)
        self.client.max_inflight_messages_set(_INFLIGHT)
        self.client.max_queued_messages_set(0)

    def start(self) -> Publisher:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, topic: str, payload: dict[str, Any] | bytes, *, qos: int = 1) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if len(self._in_flight) >= _OUTSTANDING_MAX:
            self._settle(_OUTSTANDING_MAX // 2, _ACK_TIMEOUT_S)
        info = self.client.publish(topic, data, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self._in_flight.append((info, topic, data))

    def wait_acknowledged(self, timeout_s: float = _ACK_TIMEOUT_S) -> None:
        """Block until the broker acknowledged everything published so far."""
        self._settle(0, timeout_s)

    def _settle(self, keep: int, timeout_s: float) -> None:
        """Wait for the oldest messages until at most `keep` are unacknowledged."""
        deadline = time.monotonic() + timeout_s
        while len(self._in_flight) > keep:
            info, topic, data = self._in_flight[0]
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise PublishError(
                    f"{len(self._in_flight)} messages not acknowledged by "
                    f"{self.host}:{self.port} within {timeout_s:.0f} s"
                )
            self._in_flight.popleft()
            self.ledger.add(topic, data)
