"""The port between the ingest and wherever accepted messages are kept.

`devices` declares here what it needs from a store: a batch of judged and chained records
(`IngestBatch`) written in one call, the cached state that judging the next fix depends on,
and the device registry. `dispatch.store` satisfies `IngestSink`; nothing in `devices` imports
it, so the ingest can be driven by any sink that keeps these promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from devices.quality import JumpMemory, Neighbours
from devices.registry import Binding
from dispatch.core.sensors import Sensor
from dispatch.core.track import LastFix

# What the sink answers for each fix of a batch, in batch order.
FIX_STORED, FIX_DUPLICATE, FIX_CONFLICT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What ingest needs to judge and chain a device's next fix."""

    head: str  # "" while the chain is empty
    last: LastFix | None
    memory: JumpMemory = field(default_factory=JumpMemory)


@dataclass(frozen=True, slots=True)
class LateFix:
    """A fix not newer than its device's last live fix, whose stored neighbours are asked for."""

    device: str
    fix_at: int
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class StoredAround:
    """The sink's answer for a `LateFix`: its neighbours in fix time, or that it is stored."""

    neighbours: Neighbours
    stored: bool  # the very fix is held already: the store will answer it as a duplicate


@dataclass(slots=True)
class IngestBatch:
    """Records for one write, in arrival order.

    Rows are flat tuples of text and integers: the Redis sink hands each section over as one
    MessagePack argument, and its decoder predates the bin type and refuses bytes.
    """

    oldest_received_at: float = 0.0
    # Messages the worker held read but unstored as it sent this batch: how far it lags.
    backlog: int = 0
    # The intake channel the batch came by (`mqtt`, `osmand`, `jt808`): what it stores is
    # counted as accepted under it, IoT sensors' readings under `iot`.
    channel: str = "mqtt"
    fixes: list[tuple[str | int | float | None, ...]] = field(default_factory=list)
    rejects: list[tuple[str, ...]] = field(default_factory=list)
    messages: list[tuple[str, ...]] = field(default_factory=list)
    memories: list[tuple[str, str]] = field(default_factory=list)

    def add_fix(
        self,
        dev: str,
        member: str,
        team: str,
        fix_at: int,
        lon: float,
        lat: float,
        canonical: bytes,
        raw_sha256: str,
        chain_hash: str,
        prev_hash: str,
        backfill: bool,
        received_at: float,
        acc_m: float | None,
        cog_deg: float | None,
    ) -> None:
        self.fixes.append(
            (
                dev,
                member,
                team or "unassigned",
                fix_at,
                f"{lon:.7f}",
                f"{lat:.7f}",
                canonical.decode(),
                raw_sha256,
                chain_hash,
                prev_hash,
                1 if backfill else 0,
                received_at,
                acc_m,
                cog_deg,
            )
        )

    def add_reject(
        self, dev: str, reason: str, detail: str, topic: str, payload: bytes, payload_sha256: str
    ) -> None:
        text = payload.decode("utf-8", "backslashreplace")
        self.rejects.append((dev, reason, detail, topic, text, payload_sha256))

    def add_message(
        self, kind: str, dev: str, officer: str, topic: str, body: bytes, body_sha256: str
    ) -> None:
        self.messages.append((kind, dev, officer, topic, body.decode(), body_sha256))

    def add_memory(self, dev: str, memory: JumpMemory) -> None:
        """Keep the device's jump memory as it stands after this batch."""
        self.memories.append((dev, memory_text(memory)))

    def __len__(self) -> int:
        return len(self.fixes) + len(self.rejects) + len(self.messages)


def memory_text(memory: JumpMemory) -> str:
    """A jump memory as the store keeps it: the fix before the anchor (empty if none), then
    the rivals, each `fix_at|lon|lat` with exact floats, joined by `;`."""
    fixes = (memory.before, *memory.rivals)
    return ";".join("" if f is None else f"{f.fix_at}|{f.lon!r}|{f.lat!r}" for f in fixes)


def memory_from_text(text: str | None) -> JumpMemory:
    """The memory `memory_text` wrote; an empty one for nothing or for anything unreadable,
    which only costs the device the old rule until its next fixes."""
    if not text:
        return JumpMemory()
    try:
        before, *rivals = (_fix_from_text(part) for part in text.split(";"))
        if any(r is None for r in rivals):
            return JumpMemory()
        return JumpMemory(before, tuple(r for r in rivals if r is not None))
    except ValueError:
        return JumpMemory()


def _fix_from_text(text: str) -> LastFix | None:
    if not text:
        return None
    fix_at, lon, lat = text.split("|")
    return LastFix(float(lon), float(lat), int(fix_at))


class PendingWrite(Protocol):
    """A batch the sink is storing."""

    def ready(self) -> bool:
        """True once the answer has arrived; never blocks."""

    def result(self) -> list[int]:
        """Wait for the answer: FIX_STORED / FIX_DUPLICATE / FIX_CONFLICT per fix."""


class IngestSink(Protocol):
    """Where the ingest keeps what it accepted; every write is all-or-nothing."""

    # Raised while the sink cannot be reached: the ingest lets go of the broker until it is back.
    unavailable: tuple[type[Exception], ...]

    def send_batch(self, batch: IngestBatch, received_at: float) -> PendingWrite:
        """Start storing a batch and return without waiting."""

    def write_batch(self, batch: IngestBatch, received_at: float) -> list[int]:
        """Store a batch and wait for the answer."""

    def device_states(self, devices: Sequence[str]) -> dict[str, DeviceState]:
        """Chain head, newest live fix and jump memory of each device."""

    def stored_around(self, late: Sequence[LateFix]) -> list[StoredAround]:
        """For each late fix, the device's stored fixes just before and after it in time."""

    def record_broker_counter(self, name: str, value: str) -> None:
        """Keep a counter the broker reports about itself (e.g. dropped messages)."""

    def bindings(self) -> dict[str, Binding]:
        """The registry by `Binding.key` (`user/device` for a pair, else the serial)."""

    def bind(self, bindings: Sequence[Binding]) -> None:
        """Add or replace bindings (devices registered on first sight)."""

    def sensors(self) -> dict[str, Sensor]:
        """The registered IoT sensors by id."""
