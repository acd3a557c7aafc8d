"""Batches of received device messages: judged, chained and stored in one Redis call.

Pure judgement happens in devices.quality and devices.registry; this module keeps the cached
device state (chain heads, last fixes) that makes that cheap, and settles what the sink
refuses; IoT sensors' readings are judged against the sensor registry (devices.sensors) and
filed for the engine like SOS alarms. Workers are stateless: several may share
`$share/ingest/...`. The store refuses a chain link whose predecessor is not the stored head;
the writer then re-reads the device and chains the fix again.

No message stops the writer: one whose judging raises is tried once more, then kept in the
dead letters with the error (`processing_error`), and a batch whose write raises is written
again apart (`write_apart`), so the good messages of a batch are stored whatever one bad one
does.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from devices import messages
from devices.backfill import late_fixes, neighbours
from devices.quality import (
    Judged,
    Limits,
    Neighbours,
    Reason,
    Rejection,
    judge_location,
    placed_sos,
)
from devices.registry import Binding, RegistrationBudget, UnknownDevicePolicy, resolve
from devices.sensors import judge_reading, unknown_sensor
from devices.sink import (
    FIX_CONFLICT,
    FIX_DUPLICATE,
    DeviceState,
    IngestBatch,
    IngestSink,
    LateFix,
    PendingWrite,
    StoredAround,
)
from devices.topics import UPLINK, DeviceTopic, TopicError, parse_topic
from dispatch.core.sensors import Sensor, SensorCatalogue
from dispatch.core.track import DeviceKey, Fix, LastFix, genesis, link

log = logging.getLogger(__name__)

BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
_MAX_CHAIN_RETRIES = 16
_STATE_CACHE_MAX = 200_000
_REGISTRY_REFRESH_S = 30.0
# A device bound a moment ago is read again sooner, at most this often, when it turns up.
_REGISTRY_MISS_REFRESH_S = 2.0
_LOG_EVERY_S = 60.0
_DEADLETTER_TOPIC_MAX = 256
_DEADLETTER_DETAIL_MAX = 512
_MESSAGE_KINDS = {
    messages.Lwt: "lwt",
    messages.Transition: "transition",
    messages.Sos: "sos",
    messages.DevStat: "devstat",
    messages.Conn: "conn",
    messages.Clip: "clip",
    messages.Ack: "ack",
    messages.Reading: "iot",
}


@dataclass(frozen=True, slots=True)
class Received:
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: float


@dataclass(frozen=True, slots=True)
class _PendingFix:
    """A location judged acceptable, waiting for its chain link to be stored."""

    message: Received
    location: messages.Location
    binding: Binding
    device: DeviceKey


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    batch: IngestBatch
    chained: list[_PendingFix]
    now: float


@dataclass(frozen=True, slots=True)
class IngestConfig:
    root: str
    limits: Limits
    unknown_devices: UnknownDevicePolicy
    batch_max: int = 1000
    batch_wait_s: float = 0.02
    # Messages read ahead of the store at most (about 0.5 KB each in memory).
    backlog_max: int = 200_000
    # How far behind the store must be before each device's newest fix goes first (never, by
    # default: see dispatch.settings).
    live_after_s: float = math.inf
    registrations_per_min: int = 60
    # The IoT sensor types: a reading must be in its type's unit.
    sensor_types: SensorCatalogue = field(default_factory=SensorCatalogue)


class BatchWriter:
    """Judges, chains and stores batches of received messages. No MQTT here: easy to test."""

    def __init__(
        self,
        sink: IngestSink,
        config: IngestConfig,
        clock: Callable[[], float] = time.time,
        *,
        channel: str = "mqtt",
    ):
        self.sink = sink
        self.config = config
        self.clock = clock
        self.channel = channel  # the intake channel its messages are counted under
        self._states: dict[str, DeviceState] = {}
        self._topics: dict[str, DeviceTopic] = {}
        self._bindings: dict[str, Binding] = {}
        self._sensors: dict[str, Sensor] = {}
        self._bindings_at = float("-inf")
        self._last_logged: dict[tuple[str, str], float] = {}
        self._registrations = RegistrationBudget(config.registrations_per_min)
        # While `write_judged` runs: the rejection of each message refused, by id(message).
        self._refusals: dict[int, Rejection] | None = None

    def forget(self) -> None:
        """Drop cached device state, e.g. after a failed write left it speculative."""
        self._states.clear()

    def write(self, received: list[Received]) -> None:
        """Store everything in `received`; returns once Redis holds all of it."""
        prepared = self.prepare(received)
        self.finish(prepared, self.send(prepared).result())

    def write_judged(self, received: list[Received]) -> list[Rejection | None]:
        """Store `received` as `write` does (a write that raises is written apart), and say
        what became of each message: None once it is stored, else the rejection it was
        dead-lettered with. For channels that answer every message (HTTP), where MQTT only
        acknowledges.

        Raises only what `sink.unavailable` names: then nothing is known to be stored."""
        self._refusals = {}
        try:
            try:
                self.write(received)
            except self.sink.unavailable:
                raise
            except Exception:
                log.exception("writing %d messages raised; writing them apart", len(received))
                self._refusals.clear()
                self.write_apart(received)
            return [self._refusals.get(id(message)) for message in received]
        finally:
            self._refusals = None

    def refuse(self, message: Received, device: str, rejection: Rejection) -> None:
        """Keep a message its channel refused before it could be judged (an HTTP request that
        holds no position) in the dead letters, counted as the writer's own rejections are."""
        batch = self._batch(message.received_at)
        self._reject(batch, message, device, rejection)
        self.sink.write_batch(batch, self.clock())

    def prepare(self, received: list[Received]) -> PreparedBatch:
        """Judge and chain a batch against the cached device state (first step of a write)."""
        now = self.clock()
        self._refresh_bindings(now)
        batch = self._batch(received[0].received_at if received else now)
        fixes: list[_PendingFix] = []
        auto_bound: dict[str, Binding] = {}
        for message in received:
            self._guarded(batch, message, lambda m=message: self._sort(m, batch, fixes, auto_bound))
        if auto_bound:
            self.sink.bind(list(auto_bound.values()))
        return PreparedBatch(batch, self._judge_and_chain(batch, fixes), now)

    def send(self, prepared: PreparedBatch) -> PendingWrite:
        """Hand the batch to Redis without waiting for the answer (second step)."""
        return self.sink.send_batch(prepared.batch, prepared.now)

    def finish(self, prepared: PreparedBatch, statuses: list[int]) -> None:
        """Settle what the store refused (third step): file duplicates as rejections, and
        re-chain fixes whose predecessor moved under another worker. Blocks until stored."""
        now = prepared.now
        chained = prepared.chained
        for round_number in range(_MAX_CHAIN_RETRIES):
            conflicted, duplicates = self._sort_statuses(chained, statuses)
            batch = self._batch(prepared.batch.oldest_received_at)
            for fix in duplicates:
                self._reject(batch, fix.message, fix.device, _duplicate(fix))
            if not conflicted:
                if len(batch):
                    self.sink.write_batch(batch, now)
                return
            log.debug("chain conflict round=%d fixes=%d", round_number, len(conflicted))
            chained = self._judge_and_chain(batch, conflicted)
            statuses = self.sink.write_batch(batch, now)
        for fix in chained:
            self._reject(
                batch,
                fix.message,
                fix.device,
                Rejection(
                    Reason.CHAIN_CONTENTION,
                    f"chain head of {fix.device} kept moving under {_MAX_CHAIN_RETRIES} retries",
                ),
            )
        self.sink.write_batch(batch, now)

    def write_apart(self, received: list[Received]) -> None:
        """Store a batch whose write raised: whole once more, then message by message, and a
        message that fails alone twice goes to the dead letters with the error.

        Raises only what `sink.unavailable` names: the worker then lets go of the broker."""
        try:
            self.forget()
            self.write(received)
            return
        except self.sink.unavailable:
            raise
        except Exception:
            log.exception("a batch of %d messages failed twice; writing them apart", len(received))
        for message in received:
            batch = self._batch(message.received_at)
            self._guarded(batch, message, lambda m=message: self._write_alone(m))
            if len(batch):
                self.sink.write_batch(batch, self.clock())

    def _write_alone(self, message: Received) -> None:
        self.forget()  # a failed write may have left cached chain heads it never stored
        self.write([message])

    def _guarded(self, batch: IngestBatch, message: Received, work: Callable[[], None]) -> None:
        """Do one message's `work`; if it raises twice, dead-letter the message in `batch`
        with the error. Redelivered after a crash, such a message would stop every restart."""
        for attempt in (1, 2):
            try:
                work()
                return
            except self.sink.unavailable:
                raise
            except Exception as exc:
                error = exc
                log.debug("message on %r raised (attempt %d)", message.topic, attempt)
        log.error("dead-lettered a message on %r that raised twice", message.topic, exc_info=error)
        known = self._topics.get(message.topic)
        device = f"{known.user}/{known.device}" if known is not None else ""
        detail = f"processing raised {type(error).__name__}: {error}"
        self._reject(batch, message, device, Rejection(Reason.PROCESSING_ERROR, detail))

    def _sort(
        self,
        message: Received,
        batch: IngestBatch,
        fixes: list[_PendingFix],
        auto_bound: dict[str, Binding],
    ) -> None:
        if message.topic == BROKER_DROPPED_TOPIC:
            self.sink.record_broker_counter("publish_messages_dropped", message.payload.decode())
            return
        topic = self._topics.get(message.topic)
        if topic is None:
            try:
                topic = parse_topic(self.config.root, message.topic)
            except TopicError as exc:
                self._reject(batch, message, "", Rejection(Reason.BAD_TOPIC, str(exc)))
                return
            if len(self._topics) >= _STATE_CACHE_MAX:
                self._topics.clear()
            self._topics[message.topic] = topic
        if topic.sensor:
            self._sort_sensor(message, topic, batch)
            return
        if topic.channel not in UPLINK:
            return  # the center's own orders (`/cmd`, `/dispatch`), heard back: not a device's
        device = DeviceKey(f"{topic.user}/{topic.device}")
        decoded = self._decoded(batch, message, topic, device)
        if decoded is None:
            return
        refused: dict[str, str] = {}
        if isinstance(decoded, messages.Sos):
            # An alarm is never dropped for its position: without one, the engine opens the
            # incident at the officer's last known position.
            decoded, refused = placed_sos(decoded, self.config.limits)
        resolved = resolve(self._bindings, topic.user, topic.device, self.config.unknown_devices)
        if (
            isinstance(resolved, Rejection)
            and resolved.reason is Reason.UNKNOWN_DEVICE
            and message.received_at - self._bindings_at >= _REGISTRY_MISS_REFRESH_S
        ):
            self._refresh_bindings(message.received_at, _REGISTRY_MISS_REFRESH_S)
            resolved = resolve(
                self._bindings, topic.user, topic.device, self.config.unknown_devices
            )
        if isinstance(resolved, Rejection):
            self._reject(batch, message, device, resolved)
            return
        # A device registered on sight stays `auto` in the registry: only its first message
        # is a registration.
        if resolved.auto and resolved.key not in self._bindings:
            if not self._registrations.take(message.received_at):
                self._reject(
                    batch, message, device, self._registrations.refusal(topic.user, topic.device)
                )
                return
            self._bindings[resolved.key] = resolved
            auto_bound[resolved.key] = resolved
        if isinstance(decoded, messages.Location):
            fixes.append(_PendingFix(message, decoded, resolved, device))
            return
        fields = {k: v for k, v in msgspec.structs.asdict(decoded).items() if v is not None}
        body = {"_type": decoded.__struct_config__.tag, **fields, **refused}
        self._add_message(batch, message, decoded, device, resolved.officer, body)

    def _sort_sensor(self, message: Received, topic: DeviceTopic, batch: IngestBatch) -> None:
        """An IoT sensor's reading or heartbeat: from a registered sensor, as its type, in its
        type's unit (devices.sensors)."""
        device = DeviceKey(f"{topic.user}/{topic.device}")
        if (
            topic.device not in self._sensors
            and message.received_at - self._bindings_at >= _REGISTRY_MISS_REFRESH_S
        ):
            self._refresh_bindings(message.received_at, _REGISTRY_MISS_REFRESH_S)
        sensor = self._sensors.get(topic.device)
        if sensor is None:
            # Before decoding: junk under invented ids shares the unbound dead-letter quota.
            self._reject(batch, message, device, unknown_sensor(topic.device))
            return
        decoded = self._decoded(batch, message, topic, device)
        if decoded is None:
            return
        if isinstance(decoded, messages.Reading):
            judged = judge_reading(sensor, decoded, self.config.sensor_types, self.config.limits)
            if isinstance(judged, Rejection):
                self._reject(batch, message, device, judged)
                return
            body = judged
        else:
            fields = {k: v for k, v in msgspec.structs.asdict(decoded).items() if v is not None}
            body = {"_type": decoded.__struct_config__.tag, **fields}
        self._add_message(batch, message, decoded, device, "", body)

    def _decoded(
        self, batch: IngestBatch, message: Received, topic: DeviceTopic, device: str
    ) -> messages.Message | None:
        """The payload decoded for its channel, or None once it is dead-lettered with why."""
        try:
            return messages.decode(
                topic.channel, message.payload, max_bytes=self.config.limits.max_payload_bytes
            )
        except messages.PayloadError as exc:
            self._reject(batch, message, device, Rejection(Reason(exc.reason), str(exc)))
            return None

    def _add_message(
        self,
        batch: IngestBatch,
        message: Received,
        decoded: messages.Message,
        device: str,
        officer: str,
        body: dict[str, object],
    ) -> None:
        encoded = msgspec.json.encode({**body, "rx": message.received_at})
        sha = hashlib.sha256(message.topic.encode() + b"\0" + message.payload).hexdigest()
        batch.add_message(
            _MESSAGE_KINDS[type(decoded)], device, officer, message.topic, encoded, sha
        )

    def _judge_and_chain(self, batch: IngestBatch, fixes: list[_PendingFix]) -> list[_PendingFix]:
        """Add each acceptable fix to `batch` with its chain link; returns those added."""
        missing = list({f.device for f in fixes if f.device not in self._states})
        if missing:
            if len(self._states) + len(missing) > _STATE_CACHE_MAX:
                self._states.clear()
            self._states.update(self.sink.device_states(missing))
        around = self._stored_around(fixes)
        # This call's accepted fixes per device: neighbours of late fixes the store lacks yet.
        accepted: dict[str, list[LastFix]] = {}
        chained: list[_PendingFix] = []
        remembered = {f.device: self._states[f.device].memory for f in fixes}
        for n, pending in enumerate(fixes):
            late = around.get(n)
            self._guarded(
                batch,
                pending.message,
                lambda p=pending, a=late: self._judge_one(batch, p, a, accepted, chained),
            )
        for device, memory in remembered.items():
            if self._states[device].memory != memory:
                batch.add_memory(device, self._states[device].memory)
        return chained

    def _judge_one(
        self,
        batch: IngestBatch,
        pending: _PendingFix,
        around: tuple[LateFix, StoredAround] | None,
        accepted: dict[str, list[LastFix]],
        chained: list[_PendingFix],
    ) -> None:
        state = self._states[pending.device]
        judged = judge_location(
            pending.device,
            pending.location,
            last=state.last,
            memory=state.memory,
            neighbours=(
                Neighbours()
                if around is None
                else neighbours(*around, accepted.get(pending.device, []))
            ),
            now=pending.message.received_at,
            limits=self.config.limits,
        )
        if isinstance(judged.verdict, Rejection):
            self._states[pending.device] = DeviceState(state.head, judged.last, judged.memory)
            self._reject(batch, pending.message, pending.device, judged.verdict)
            return
        fix = judged.verdict
        self._chain(batch, pending, fix, judged)
        accepted.setdefault(pending.device, []).append(LastFix(fix.lon, fix.lat, fix.fix_at))
        chained.append(pending)

    def _stored_around(self, fixes: list[_PendingFix]) -> dict[int, tuple[LateFix, StoredAround]]:
        """The store's neighbours of every fix that may be judged late, by index in `fixes`,
        in one round trip (none when nothing arrives out of order)."""
        late = late_fixes(
            [(f.device, f.location) for f in fixes],
            {f.device: self._states[f.device].last for f in fixes},
        )
        if not late:
            return {}
        answers = self.sink.stored_around(list(late.values()))
        return {n: (fix, answer) for (n, fix), answer in zip(late.items(), answers, strict=True)}

    def _sort_statuses(
        self, chained: list[_PendingFix], statuses: list[int]
    ) -> tuple[list[_PendingFix], list[_PendingFix]]:
        """Split refused fixes into those whose predecessor moved and those already held.

        Either way the head cached for the device assumed the fix would be stored: forget it.
        """
        conflicted, duplicates = [], []
        for pending, status in zip(chained, statuses, strict=True):
            if status == FIX_DUPLICATE:
                duplicates.append(pending)
            elif status == FIX_CONFLICT:
                conflicted.append(pending)
            else:
                continue
            self._states.pop(pending.device, None)
        return conflicted, duplicates

    def _chain(self, batch: IngestBatch, pending: _PendingFix, fix: Fix, judged: Judged) -> None:
        state = self._states[pending.device]
        canonical = fix.canonical()
        raw_sha = hashlib.sha256(pending.message.payload).hexdigest()
        prev = state.head or genesis(pending.device)
        chain_hash = link(prev, canonical, raw_sha)
        batch.add_fix(
            pending.device,
            pending.binding.officer,
            pending.binding.team,
            fix.fix_at,
            fix.lon,
            fix.lat,
            canonical,
            raw_sha,
            chain_hash,
            state.head,
            fix.backfill,
            pending.message.received_at,
            fix.acc_m,
            fix.cog_deg,
        )
        self._states[pending.device] = DeviceState(chain_hash, judged.last, judged.memory)

    def _reject(
        self, batch: IngestBatch, message: Received, device: str, rejection: Rejection
    ) -> None:
        sha = hashlib.sha256(message.payload).hexdigest()
        payload = message.payload[: self.config.limits.max_payload_bytes]
        # MQTT allows 64 KiB topics, and a bad topic's reason quotes it: keep a readable head.
        topic = _shortened(message.topic, _DEADLETTER_TOPIC_MAX)
        detail = _shortened(rejection.detail, _DEADLETTER_DETAIL_MAX)
        batch.add_reject(device, rejection.reason, detail, topic, payload, sha)
        if self._refusals is not None:
            self._refusals[id(message)] = rejection
        key = (device, rejection.reason)
        if message.received_at - self._last_logged.get(key, float("-inf")) >= _LOG_EVERY_S:
            if len(self._last_logged) >= _STATE_CACHE_MAX:
                self._last_logged.clear()
            self._last_logged[key] = message.received_at
            log.warning(
                "rejected device=%s reason=%s detail=%r",
                device or "-",
                rejection.reason,
                detail,
            )

    def _batch(self, oldest_received_at: float) -> IngestBatch:
        return IngestBatch(oldest_received_at=oldest_received_at, channel=self.channel)

    def _refresh_bindings(self, now: float, every_s: float = _REGISTRY_REFRESH_S) -> None:
        if now - self._bindings_at >= every_s:
            self._bindings = self.sink.bindings()
            self._sensors = self.sink.sensors()
            self._bindings_at = now


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _duplicate(fix: _PendingFix) -> Rejection:
    loc = fix.location
    return Rejection(
        Reason.DUPLICATE,
        f"a fix at tst {loc.tst} ({loc.lon}, {loc.lat}) is already stored for {fix.device}: "
        "a redelivery or a repeated report",
    )
