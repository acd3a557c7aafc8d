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

Each worker is a member of the shared subscription under a name of its own
(devices.membership): it beats in Redis while it runs and, stopped, leaves for good —
unsubscribes, stores and acknowledges what is still in flight, ends the broker session and
deregisters — so the broker routes nothing more to it. One that could not leave stays
registered and shows as dead until `retire` drains the session it left behind.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable

from devices import mqttwire
from devices.backlog import Backlog
from devices.backoff import Backoff
from devices.batch import BROKER_DROPPED_TOPIC, BatchWriter, PreparedBatch, Received
from devices.broker import BrokerLogin
from devices.membership import (
    Member,
    MemberRoll,
    client_id_for,
    newly_dead,
    roll_call,
    superseded_by,
)
from devices.mqttwire import SubAck
from devices.sink import PendingWrite
from devices.subscriber import RefusedError, SessionError, Subscriber, TakenOverError
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

    A client id of the worker's own and a persistent session (MQTT 5: clean start off plus
    session expiry; 3.1.1: clean session off) make the broker queue messages while the worker
    is away. If Redis becomes unreachable the worker drops the MQTT connection rather than
    buffering without bound: nothing it holds has been acknowledged, so the broker redelivers
    all of it later. If another client connects with its client id, the broker hands that one
    the session and this worker ends (`taken_over`) instead of taking it back. A lost session
    is followed by attempts a tenth of a second apart at first, up to 3 s (devices.backoff),
    and each session that subscribed starts them short again: a broker restarted twice in a
    row finds the ingest back within moments each time. Each session's start is counted
    (`sessions`, `gap_s`, `received_before_gap`, beaten into the registration), so the gap a
    reconnect left in the stream is visible.
    """

    def __init__(
        self,
        writer: BatchWriter,
        *,
        broker: BrokerLogin,
        name: str,
        roll: MemberRoll,
        client_id: str | None = None,
        session_expiry_s: int,
        protocol: int = mqttwire.MQTT_5,
        beat_s: float = 2.0,
        quiet_s: float = 0.5,
        leave_within_s: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.broker = broker
        self.name = name
        self.roll = roll
        self.session = Subscriber(
            broker,
            client_id or client_id_for(name),
            protocol=protocol,
            session_expiry_s=session_expiry_s,
        )
        self.backlog: Backlog[Received] = Backlog(
            writer.config.batch_max, writer.config.backlog_max, writer.config.live_after_s
        )
        self._in_redis: tuple[list[Received], PreparedBatch, PendingWrite] | None = None
        self._stop = threading.Event()
        self.connected = threading.Event()  # set once the subscriptions are in place
        # When the worker last kept up: nothing waiting, or a batch just stored (writer clock).
        self.progress_at = writer.clock()
        self.taken_over = False
        self.received = 0  # messages read from the broker
        self.stored = 0  # messages stored with their verdict and acknowledged
        # Sessions that subscribed, and of the latest: when (wall clock), after how long
        # without one, and what had been received before that gap (see Member).
        self.sessions = 0
        self.subscribed_at = 0.0
        self.gap_s = 0.0
        self.received_before_gap = 0
        self._session_ended_at: float | None = None  # wall clock; None while subscribed
        # Leaving: done once nothing has come for `quiet_s` (the broker's reply to an
        # acknowledgement with what it still queues is far quicker), given up at the bound.
        self.quiet_s = quiet_s
        self.leave_within_s = leave_within_s
        self._heard_at = 0.0  # time.monotonic() of the last message read
        # Heartbeats run on the wall clock (the writer's may be accelerated), as does every
        # worker's and the health check's reading of them.
        self.beat_s = beat_s
        self._wall = wall
        self._started_at = wall()
        self._next_beat_at = self._started_at
        self._member: Member | None = None  # the registration last written
        self._dead_peers: set[str] = set()  # reported dead already

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        backoff = Backoff(random.Random())
        while not self._stop.is_set():
            sessions = self.sessions
            try:
                self._connect()
                self._pump(self._stop.is_set)
                self._leave(self.leave_within_s)
            except TakenOverError as exc:
                self._end_taken_over(exc)
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
            if self.sessions > sessions:
                # It subscribed: whatever ended it (a broker restart, most often) is likely
                # over soon, so the next attempts start short again.
                backoff.reset()
                self._session_ended_at = self._wall()
                self.received_before_gap = self.received
            if not self._stop.is_set():
                self.writer.forget()
                self._wait(backoff.next())

    def retire(self, member: Member | None, *, within_s: float) -> bool:
        """Drain and end the session a dead worker left (this worker connects with its
        client id, asking for no subscription), then remove its registration (`member`; None
        for a session nobody registered).

        Whatever the broker queued for it is stored and acknowledged like any message; the
        session is ended only once nothing more comes. False when messages still came after
        `within_s`: the session and the registration are kept, to retire again.
        Raises like a session: `SessionError`, `OSError`, or the sink's `unavailable`.
        """
        self._next_beat_at = math.inf  # the retired worker's registration is not ours to renew
        self._member = member
        try:
            self.session.connect([], lambda suback: None)
            log.info(
                "retiring ingest %s: session_present=%s", self.name, self.session.session_present
            )
            return self._leave(within_s)
        finally:
            self.session.close()

    def _end_taken_over(self, exc: TakenOverError) -> None:
        log.error(
            "ingest %s ends: %s; give every ingest worker a YIWANG_INGEST_NAME of its own "
            "(its registration and the session now belong to the other one)",
            self.name,
            exc,
        )
        self.taken_over = True
        self._stop.set()

    def _wait(self, delay_s: float) -> None:
        """Sleep between sessions, still beating: a worker that cannot reach the broker is
        not dead, and a worker that cannot reach Redis tries again at the next beat."""
        deadline = time.monotonic() + delay_s
        while not self._stop.is_set():
            try:
                self._beat_if_due()
            except self.roll.unavailable as exc:
                log.debug("ingest %s could not beat: %s", self.name, exc)
            except TakenOverError as exc:
                self._end_taken_over(exc)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, self.beat_s))

    def _filters(self) -> list[tuple[str, int]]:
        return [(f, 1) for f in uplink_filters(self.writer.config.root)]

    def _connect(self) -> None:
        """Log in and subscribe, on every connect: a broker that lost its sessions (restarted
        without persistence) knows nothing of the ingest's subscriptions. A beat first: a
        later run of this name that took the session is not to be robbed of it."""
        self._beat(self._wall())
        filters = self._filters()
        self.session.connect(
            [*filters, (BROKER_DROPPED_TOPIC, 0)], lambda suback: self._subscribed(filters, suback)
        )
        log.info("ingest %s connected session_present=%s", self.name, self.session.session_present)

    def _leave(self, within_s: float) -> bool:
        """Stop taking a share of the subscription for good: unsubscribe, store and
        acknowledge what still arrives, end the session so the broker keeps nothing for it,
        and deregister. True once done; False (session and registration kept, the worker
        reported dead once it stops beating) if messages still came after `within_s`."""
        member = self._member
        self.session.unsubscribe([f for f, _ in self._filters()] + [BROKER_DROPPED_TOPIC])
        deadline = time.monotonic() + within_s
        self._heard_at = time.monotonic()

        def drained() -> bool:
            return (
                not self.session.awaiting_answer
                and self._in_redis is None
                and not len(self.backlog)
                and time.monotonic() - self._heard_at >= self.quiet_s
            )

        self._pump(lambda: drained() or time.monotonic() >= deadline)
        if not drained():
            log.warning(
                "ingest %s still received messages after %.0f s of leaving: its session is "
                "kept by the broker; run `yiwang ingest --retire %s` to drain it",
                self.name,
                within_s,
                self.name,
            )
            return False
        self.connected.clear()
        self.session.end()
        left = member is not None and self.roll.leave(member)
        log.info(
            "ingest %s left: session ended, registration removed=%s received=%d stored=%d",
            self.name,
            left,
            self.received,
            self.stored,
        )
        return True

    def _beat_if_due(self) -> None:
        now = self._wall()
        if now >= self._next_beat_at:
            self._beat(now)

    def _beat(self, now: float) -> None:
        """Renew the registration (every `beat_s`); report peers that stopped beating, and
        drop the records of those whose sessions the broker has discarded by now. Raises
        `TakenOverError` when a later run of this name has registered."""
        self._next_beat_at = now + self.beat_s
        me = Member(
            name=self.name,
            client_id=self.session.client_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            beat_at=now,
            beat_s=self.beat_s,
            session_expiry_s=self.session.session_expiry_s,
            connected=self.connected.is_set(),
            received=self.received,
            stored=self.stored,
            sessions=self.sessions,
            subscribed_at=self.subscribed_at,
            gap_s=self.gap_s,
            received_before_gap=self.received_before_gap,
        )
        roll = roll_call(self.roll.members(), now)
        later = superseded_by(me, roll)
        if later is not None:
            raise TakenOverError(
                f"ingest worker {self.name} was started again on {later.host} "
                f"(pid {later.pid}), which took its client id {self.session.client_id!r}"
            )
        self._member = me
        self.roll.beat(me)
        for peer in newly_dead(self._dead_peers | {self.name}, roll):
            log.warning(
                "ingest worker %s (%s pid %d) stopped beating %.0f s ago without leaving: "
                "the broker queues its share of the positions in its session; restart it or "
                "run `yiwang ingest --retire %s`",
                peer.name,
                peer.host,
                peer.pid,
                peer.silent_s(now),
                peer.name,
            )
        self._dead_peers = {m.name for m in roll.dead}
        for gone in roll.forgotten:
            self.roll.leave(gone)

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
        now = self._wall()
        self.sessions += 1
        self.subscribed_at = now
        self.gap_s = 0.0 if self._session_ended_at is None else now - self._session_ended_at
        self._session_ended_at = None
        log.info(
            "ingest %s subscribed: session %d, %.2f s after the last one ended, "
            "%d messages received before",
            self.name,
            self.sessions,
            self.gap_s,
            self.received_before_gap,
        )
        self.connected.set()

    def _pump(self, until: Callable[[], bool]) -> None:
        """Read, batch, store and acknowledge until `until()` or disconnected; then store
        and acknowledge what was read."""
        wait_s = self.writer.config.batch_wait_s
        batch_max = self.writer.config.batch_max
        clock = self.writer.clock
        backlog = self.backlog
        while not until():
            self._beat_if_due()
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
                # The broker's own dropped-messages counter is no position: not counted.
                self.received += sum(p.topic != BROKER_DROPPED_TOPIC for p in publishes)
                self._heard_at = time.monotonic()
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
        stored = self.backlog.stored()
        self.session.acknowledge([m.mid for m in stored if m.qos > 0])
        self.stored += sum(m.topic != BROKER_DROPPED_TOPIC for m in stored)
