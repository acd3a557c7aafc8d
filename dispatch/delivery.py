"""Order delivery: the engine's outbox to the officers' devices over MQTT.

The engine writes orders to the outbox stream in the same transaction as the incident, so an
order exists if and only if the incident says it was issued. Delivery reads the outbox with
its own consumer group and acknowledges an entry only after the broker acknowledged every
message for it: at least once, with the order id as correlation data so devices and their
acks can tell a repeat. Each device bound to an officer gets the order on `/dispatch` (our
terminals; MQTT 5 expiry at the turn-out deadline and never sooner than a set minimum,
response topic `/ack`) and as an OwnTracks
waypoint on `/cmd`.
"""

from __future__ import annotations

import logging
import threading
import time

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.broker import BrokerLogin
from devices.downlink import (
    OrderNotice,
    dispatch_message,
    order_expiry_s,
    owntracks_commands,
    withdrawal_message,
)
from devices.topics import Channel, device_topic
from dispatch.store import UNAVAILABLE, Store

log = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 10.0


class OrderDelivery:
    def __init__(
        self,
        store: Store,
        *,
        broker: BrokerLogin,
        root: str,
        client_id: str,
        min_expiry_s: float,
    ) -> None:
        self.store = store
        self.min_expiry_s = min_expiry_s
        self.root = root
        self.broker = broker
        self.connected = threading.Event()  # the health endpoint reads it
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        broker.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        # MQTT 5 acknowledges a publish the ACL refused with a reason code, not silence.
        self._refused: dict[int, str] = {}

    def run(self, stop: threading.Event) -> None:
        self.store.incidents.ensure_outbox_group()
        # paho connects in the background and reconnects with backoff; until it is connected,
        # deliveries fail, stay unacknowledged in the outbox and are retried.
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        try:
            while not stop.is_set():
                try:
                    self._pass(stop)
                except UNAVAILABLE as exc:
                    log.error("order delivery lost Redis (%s); retrying in 1 s", exc)
                    stop.wait(1.0)
        finally:
            self.client.loop_stop()
            self.client.disconnect()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: mqtt.ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error(
                "broker %r refused order delivery (%s): check YIWANG_DELIVERY_MQTT_USERNAME "
                "and YIWANG_DELIVERY_MQTT_PASSWORD",
                self.broker,
                reason,
            )
            return
        self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: mqtt.ReasonCode,
        props: Properties | None,
    ) -> None:
        self.connected.clear()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: mqtt.ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused[mid] = str(reason)

    def _pass(self, stop: threading.Event) -> None:
        """Deliver what a previous pass left unacknowledged, then what is new."""
        outbox = self.store.incidents
        for unsettled in (True, False):
            for entry_id, fields in outbox.read_outbox(unsettled=unsettled, block_ms=1000):
                try:
                    self._deliver(fields)
                except (OSError, ValueError, RuntimeError) as exc:
                    # Left pending: the next pass over unacknowledged entries retries it.
                    log.error("order delivery failed (%s); retrying in 1 s", exc)
                    stop.wait(1.0)
                    return
                outbox.settle_outbox(entry_id)

    def _devices(self, officer: str) -> list[str]:
        return self.store.registry.devices_of(officer)

    def _deliver(self, fields: dict[str, str]) -> None:
        if fields.get("action") == "send":
            notice = msgspec.json.decode(fields["notice"], type=OrderNotice)
            for officer in notice.officers:
                for device in self._devices(officer):
                    self._send(officer, device, notice)
        elif fields.get("action") == "withdraw":
            withdrawal = msgspec.json.decode(fields["withdrawal"])
            for officer in withdrawal["officers"]:
                for device in self._devices(officer):
                    topic = device_topic(self.root, officer, device, Channel.DISPATCH)
                    self._publish(
                        topic, withdrawal_message(withdrawal["order"], withdrawal["reason"]), None
                    )

    def _send(self, officer: str, device: str, notice: OrderNotice) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = device_topic(self.root, officer, device, Channel.ACK)
        props.CorrelationData = notice.order_id.encode()
        expiry_s = order_expiry_s(notice, time.time(), self.min_expiry_s)
        if expiry_s is not None:
            # An order nobody read in time is stale: let the broker drop it.
            props.MessageExpiryInterval = expiry_s
        self._publish(
            device_topic(self.root, officer, device, Channel.DISPATCH),
            dispatch_message(notice),
            props,
        )
        for command in owntracks_commands(notice):
            self._publish(device_topic(self.root, officer, device, Channel.CMD), command, None)

    def _publish(self, topic: str, payload: bytes, props: Properties | None) -> None:
        info = self.client.publish(topic, payload, qos=1, properties=props)
        info.wait_for_publish(_PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise ConnectionError(f"broker did not take the order message for {topic}")
        refused = self._refused.pop(info.mid, None)
        if refused is not None:
            raise PermissionError(
                f"broker refused the order message for {topic} ({refused}): give the "
                "delivery account the delivery role (`yiwang broker setup`)"
            )
