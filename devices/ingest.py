"""The ingest worker: MQTT in, Redis out, nothing acknowledged before Redis holds it.

paho-mqtt runs with manual acknowledgements. Messages collect in a batch until it is full or
the oldest has waited `batch_wait_ms`; the batch is judged, chained and written with one Redis
function call (devices.batch); only then are its QoS 1 messages acknowledged, in the order they
arrived. A crash before the acknowledgement makes the broker redeliver, and the store
recognises what it already holds. A batch whose write raises is written again apart
(`BatchWriter.write_apart`): what breaks is dead-lettered and acknowledged, never redelivered
to break the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.batch import BROKER_DROPPED_TOPIC, BatchWriter, PreparedBatch, Received
from devices.broker import BrokerLogin
from devices.sink import PendingWrite
from devices.topics import uplink_filters

log = logging.getLogger(__name__)


_READ_BYTES = 256 * 1024


class IngestWorker:
    """One MQTT session feeding a BatchWriter; `run()` blocks until `stop()`.

    One thread, no hand-offs: while Redis stores one batch (its function runs in the Redis
    process), this thread keeps reading the next from the broker, then acknowledges the first
    once its answer is in. At most one batch is in Redis at a time, so each batch is chained on
    top of a settled one; while it is there, at most `4 * batch_max` further messages are read
    before reading pauses and the broker holds the rest.

    A fixed client id and a persistent session (MQTT 5: clean start off plus session expiry;
    3.1.1: clean session off) make the broker queue messages while the worker is away. If Redis
    becomes unreachable the worker drops the MQTT connection rather than buffering without
    bound: nothing it holds has been acknowledged, so the broker redelivers all of it later.
    """

    def __init__(
        self,
        writer: BatchWriter,
        *,
        broker: BrokerLogin,
        client_id: str,
        session_expiry_s: int,
        protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv5,
    ) -> None:
        self.writer = writer
        self.broker = broker
        self.session_expiry_s = session_expiry_s
        self._pending: list[Received] = []
        self._in_redis: tuple[list[Received], PreparedBatch, PendingWrite] | None = None
        self._stop = threading.Event()
        self.connected = threading.Event()  # set once the subscriptions are in place
        # When the worker last kept up: nothing waiting, or a batch just stored (writer clock).
        self.progress_at = writer.clock()
        v5 = protocol == mqtt.MQTTv5
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        broker.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            try:
                self._connect()
                self._pump()
                backoff.reset()
            except self.writer.sink.unavailable as exc:
                log.error(
                    "redis unavailable (%s); releasing the MQTT session until it is back", exc
                )
            except OSError as exc:
                log.warning(
                    "broker %s:%d unreachable (%s)", self.broker.host, self.broker.port, exc
                )
            except Exception:
                # Not a message's fault (those are dead-lettered): start a new session.
                log.exception("ingest session failed; reconnecting")
            self.client.disconnect()
            # Received but unacknowledged messages will be redelivered by the broker.
            self._pending.clear()
            self._in_redis = None
            if not self._stop.is_set():
                self.writer.forget()
                self._stop.wait(backoff.next())

    def _connect(self) -> None:
        if self.client.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            self.client.connect(
                self.broker.host,
                self.broker.port,
                keepalive=30,
                clean_start=False,
                properties=props,
            )
        else:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)

    def _pump(self) -> None:
        """Read, batch, store and acknowledge until stopped or disconnected."""
        wait_s = self.writer.config.batch_wait_s
        batch_max = self.writer.config.batch_max
        while not self._stop.is_set():
            if self._in_redis is not None:
                if len(self._pending) >= 4 * batch_max or self._in_redis[2].ready():
                    self._settle()
            elif self._pending and (
                len(self._pending) >= batch_max
                or self.writer.clock() - self._pending[0].received_at >= wait_s
            ):
                received, self._pending = self._pending, []
                self._written(received, lambda r=received: self._send(r))
            elif not self._pending:
                self.progress_at = self.writer.clock()
            timeout = wait_s if self._in_redis is None else 0.001
            if self.client.loop(timeout=timeout) != mqtt.MQTT_ERR_SUCCESS:
                return
            # paho's loop handles one packet per call; take what is already buffered at once.
            sock = self.client.socket()
            while isinstance(sock, _BufferedSocket) and sock.pending():
                if self.client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    return
        if self._in_redis is not None:
            self._settle()
        if self._pending:
            received, self._pending = self._pending, []
            if self._written(received, lambda: self.writer.write(received)):
                self._acknowledge(received)

    def _send(self, received: list[Received]) -> None:
        prepared = self.writer.prepare(received)
        self._in_redis = (received, prepared, self.writer.send(prepared))

    def _settle(self) -> None:
        """Wait for the batch in Redis, finish it, and acknowledge it to the broker."""
        assert self._in_redis is not None
        received, prepared, pending_write = self._in_redis
        self._in_redis = None
        if self._written(received, lambda: self.writer.finish(prepared, pending_write.result())):
            self._acknowledge(received)
            self.progress_at = self.writer.clock()

    def _written(self, received: list[Received], step: Callable[[], None]) -> bool:
        """Do one step of writing `received`; False if it raised and the batch was written
        apart instead (then acknowledged here). Redis being away still raises."""
        try:
            step()
            return True
        except self.writer.sink.unavailable:
            raise
        except Exception:
            log.exception("writing %d messages raised; writing them apart", len(received))
        self.writer.write_apart(received)
        self._acknowledge(received)
        self.progress_at = self.writer.clock()
        return False

    def _acknowledge(self, received: list[Received]) -> None:
        for message in received:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)

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
                "broker %r refused the ingest session (%s): check the ingest's broker account",
                self.broker,
                reason,
            )
            return
        client._sock = _BufferedSocket(client._sock)  # type: ignore[assignment]
        filters = [(f, 1) for f in uplink_filters(self.writer.config.root)]
        client.subscribe([*filters, (BROKER_DROPPED_TOPIC, 0)])
        log.info("ingest connected session_present=%s", flags.session_present)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[mqtt.ReasonCode],
        props: Properties | None,
    ) -> None:
        # The uplink filters come first, the broker's dropped-messages counter last.
        *uplink, counter = reasons
        if counter.is_failure:
            log.warning(
                "broker refused %s (%s): its drops go unreported", BROKER_DROPPED_TOPIC, counter
            )
        refused = [str(r) for r in uplink if r.is_failure]
        if refused:
            # Connected but deaf is not healthy: the account lacks the ingest's role.
            log.error(
                "broker refused ingest subscriptions (%s): give the ingest's account "
                "the ingest role (`yiwang broker setup`)",
                ", ".join(refused),
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
        if not self._stop.is_set():
            log.warning("ingest disconnected: %s", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._pending.append(
            Received(msg.mid, msg.qos, msg.topic, msg.payload, self.writer.clock())
        )


class _Backoff:
    """Doubling delays from 0.5 s up to 30 s, reset after a good session."""

    def __init__(self) -> None:
        self.delay = 0.5

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, 30.0)
        return delay

    def reset(self) -> None:
        self.delay = 0.5


class _BufferedSocket:
    """The ingest's socket as paho sees it, read a kernel buffer at a time.

    paho reads each packet's fixed header one byte per `recv` (three or four system calls a
    message, and one trip through its loop each); this wrapper takes whatever the kernel holds
    in one call and serves paho from it. `pending()` is paho's hook for TLS sockets: while
    bytes are buffered its loop does not wait in `select`, so nothing sits here unread.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._at = 0

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._data):
            self._data, self._at = self._sock.recv(_READ_BYTES), 0
        chunk = self._data[self._at : self._at + size]
        self._at += len(chunk)
        return chunk

    def pending(self) -> int:
        return len(self._data) - self._at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
