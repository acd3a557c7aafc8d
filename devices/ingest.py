"""The ingest worker: MQTT in, Redis out, nothing acknowledged before Redis holds it.

The session is our own subscriber (devices.subscriber over devices.mqttwire): one read of
the socket decodes every message it holds, and a stored batch is acknowledged with one
write. Messages collect in a batch until it is full or the oldest has waited
`batch_wait_ms`; the batch is judged, chained and written with one Redis function call
(devices.batch); only then are its QoS 1 messages acknowledged, in the order they arrived.
A crash before the acknowledgement makes the broker redeliver, and the store recognises what
it already holds. A batch whose write raises is written again apart
(`BatchWriter.write_apart`): what breaks is dead-lettered and acknowledged, never redelivered
to break the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from devices import mqttwire
from devices.backlog import Backlog
from devices.batch import BROKER_DROPPED_TOPIC, BatchWriter, PreparedBatch, Received
from devices.broker import BrokerLogin
from devices.mqttwire import SubAck
from devices.sink import PendingWrite
from devices.subscriber import RefusedError, SessionError, Subscriber
from devices.topics import uplink_filters

log = logging.getLogger(__name__)


class IngestWorker:
    """One MQTT session feeding a BatchWriter; `run()` blocks until `stop()`.

    One thread, no hand-offs: while Redis stores one batch (its function runs in the Redis
    process), this thread keeps reading the next from the broker, then acknowledges the first
    once its answer is in. At most one batch is in Redis at a time, so each batch is chained on
    top of a settled one. Reading runs ahead of storing by up to `backlog_max` messages
    (devices.backlog, which also puts each device's newest fix first when the store lags);
    past that, reading pauses and the broker holds the rest.

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
        protocol: int = mqttwire.MQTT_5,
    ) -> None:
        self.writer = writer
        self.broker = broker
        self.session = Subscriber(
            broker, client_id, protocol=protocol, session_expiry_s=session_expiry_s
        )
        self.backlog: Backlog[Received] = Backlog(
            writer.config.batch_max, writer.config.backlog_max, writer.config.live_after_s
        )
        self._in_redis: tuple[list[Received], PreparedBatch, PendingWrite] | None = None
        self._stop = threading.Event()
        self.connected = threading.Event()  # set once the subscriptions are in place
        # When the worker last kept up: nothing waiting, or a batch just stored (writer clock).
        self.progress_at = writer.clock()

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
            except RefusedError as exc:
                log.error("%s (the ingest's broker account)", exc)
            except (SessionError, OSError) as exc:
                log.warning("ingest session with %r ended: %s", self.broker, exc)
            except Exception:
                # Not a message's fault (those are dead-lettered): start a new session.
                log.exception("ingest session failed; reconnecting")
            self.connected.clear()
            self.session.close()
            # Received but unacknowledged messages will be redelivered by the broker.
            self.backlog.clear()
            self._in_redis = None
            if not self._stop.is_set():
                self.writer.forget()
                self._stop.wait(backoff.next())

    def _connect(self) -> None:
        """Log in and subscribe, on every connect: a broker that lost its sessions (restarted
        without persistence) knows nothing of the ingest's subscriptions."""
        filters = [(f, 1) for f in uplink_filters(self.writer.config.root)]
        self.session.connect(
            [*filters, (BROKER_DROPPED_TOPIC, 0)], lambda suback: self._subscribed(filters, suback)
        )
        log.info("ingest connected session_present=%s", self.session.session_present)

    def _subscribed(self, filters: list[tuple[str, int]], suback: SubAck) -> None:
        # The uplink filters come first, the broker's dropped-messages counter last.
        *uplink, counter = suback.reason_codes
        if counter >= 0x80:
            log.warning(
                "broker refused %s (%#04x): its drops go unreported", BROKER_DROPPED_TOPIC, counter
            )
        refused = [
            f"{f} ({code:#04x})"
            for (f, _), code in zip(filters, uplink, strict=True)
            if code >= 0x80
        ]
        if refused:
            # Connected but deaf is not healthy: the account lacks the ingest's role.
            log.error(
                "broker refused ingest subscriptions %s: give the ingest's account "
                "the ingest role (`yiwang broker setup`)",
                ", ".join(refused),
            )
            return
        self.connected.set()

    def _pump(self) -> None:
        """Read, batch, store and acknowledge until stopped or disconnected."""
        wait_s = self.writer.config.batch_wait_s
        batch_max = self.writer.config.batch_max
        clock = self.writer.clock
        backlog = self.backlog
        while not self._stop.is_set():
            if self._in_redis is not None:
                if backlog.full or self._in_redis[2].ready():
                    self._settle()
            elif len(backlog) >= batch_max or (
                len(backlog) and clock() - (backlog.oldest_received_at() or clock()) >= wait_s
            ):
                received = backlog.next_batch(clock())
                self._written(received, lambda r=received: self._send(r))
            elif not len(backlog):
                self.progress_at = clock()
            if backlog.full:
                continue  # the broker holds the rest until stored batches are acknowledged
            timeout = wait_s if self._in_redis is None else 0.001
            publishes = self.session.read(timeout)
            if publishes:
                at = clock()
                backlog.add(
                    [Received(p.packet_id, p.qos, p.topic, p.payload, at) for p in publishes]
                )
        if self._in_redis is not None:
            self._settle()
        while len(backlog):
            received = backlog.next_batch(clock())
            if self._written(received, lambda r=received: self.writer.write(r)):
                self._acknowledge()

    def _send(self, received: list[Received]) -> None:
        prepared = self.writer.prepare(received)
        prepared.batch.backlog = self.backlog.held
        self._in_redis = (received, prepared, self.writer.send(prepared))

    def _settle(self) -> None:
        """Wait for the batch in Redis, finish it, and acknowledge it to the broker."""
        assert self._in_redis is not None
        received, prepared, pending_write = self._in_redis
        self._in_redis = None
        if self._written(received, lambda: self.writer.finish(prepared, pending_write.result())):
            self._acknowledge()
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
        self._acknowledge()
        self.progress_at = self.writer.clock()
        return False

    def _acknowledge(self) -> None:
        """The batch handed out last is stored: acknowledge what that completes."""
        self.session.acknowledge([m.mid for m in self.backlog.stored() if m.qos > 0])


class _Backoff:
    """Doubling delays from 0.5 s up to 30 s, reset after a good session."""

    def __init__(self) -> None:
        self.delay = 0.5

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, 30.0)
        return delay

    def reset(self) -> None:
        self.delay = 0.5
