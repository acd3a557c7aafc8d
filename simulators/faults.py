"""Device faults on demand, applied to what simulated devices send (pure).

Each fault has a window in scenario seconds, the officers it affects (none named: everyone)
and one `amount` whose unit depends on the kind:

| kind          | what the devices do                                   | amount            |
|---------------|-------------------------------------------------------|-------------------|
| jitter        | positions scattered around the truth                  | metres (σ)        |
| jump          | a position now and then lands far away (multipath)    | metres            |
| dropout       | no fix at all: nothing is sent                        | -                 |
| duplicate     | every message sent twice                              | -                 |
| reorder       | messages go out in reversed batches                   | batch size        |
| late          | messages held back, then sent together                | -                 |
| clock_skew    | the device clock is off                               | seconds           |
| battery_drain | the battery runs down fast; at 0 the device falls dark| percent per hour  |
| offline       | the device drops off the broker, stores its fixes and | -                 |
|               | sends them when it comes back                         |                   |
| impersonate   | the device publishes under another officer's name     | - (`as_officer`)  |

`probability` thins a fault to a share of the messages it could touch.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gis.coords import METRES_PER_DEG_LAT
from simulators.city import Message


class FaultKind(StrEnum):
    JITTER = "jitter"
    JUMP = "jump"
    DROPOUT = "dropout"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    LATE = "late"
    CLOCK_SKEW = "clock_skew"
    BATTERY_DRAIN = "battery_drain"
    OFFLINE = "offline"
    IMPERSONATE = "impersonate"


# Faults that hold messages back and send them when the window closes.
_HOLDING = (FaultKind.LATE, FaultKind.OFFLINE)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    start_s: float
    end_s: float
    officers: frozenset[str] = frozenset()
    amount: float = 0.0
    probability: float = 1.0
    as_officer: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        kind = FaultKind(data["kind"])
        if kind is FaultKind.IMPERSONATE and not data.get("as_officer"):
            raise ValueError("an impersonate fault needs as_officer: the name the device uses")
        officers = data.get("officers", data.get("officer", []))
        return cls(
            kind,
            float(data.get("from", 0.0)),
            float(data.get("to", math.inf)),
            frozenset([officers] if isinstance(officers, str) else officers),
            float(data.get("amount", 0.0)),
            float(data.get("probability", 1.0)),
            str(data.get("as_officer", "")),
        )

    def touches(self, message: Message, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.end_s and (
            not self.officers or message.user in self.officers
        )


@dataclass
class FaultInjector:
    faults: tuple[Fault, ...]
    started_at: float
    seed: int = 0
    _rng: random.Random = field(init=False)
    _held: dict[Fault, list[Message]] = field(init=False, default_factory=lambda: defaultdict(list))
    _batches: dict[tuple[Fault, str], list[Message]] = field(
        init=False, default_factory=lambda: defaultdict(list)
    )
    _dark: set[tuple[Fault, str]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def apply(self, messages: list[Message], now: float) -> list[Message]:
        """What actually leaves the devices at `now`, given what they meant to send."""
        elapsed = now - self.started_at
        # What a device stored goes out first when it comes back, then what it has now.
        out = self._release(elapsed, now)
        for message in messages:
            out += self._through(message, elapsed)
        return out

    def _through(self, message: Message, elapsed: float) -> list[Message]:
        current = [message]
        for fault in self.faults:
            if not fault.touches(message, elapsed) or self._rng.random() >= fault.probability:
                continue
            current = [m for c in current for m in self._one(fault, c, elapsed)]
        return current

    def _one(self, fault: Fault, message: Message, elapsed: float) -> list[Message]:
        location = message.suffix == ""
        payload = message.payload
        match fault.kind:
            case FaultKind.JITTER if location:
                return [
                    _moved(
                        message, self._rng.gauss(0, fault.amount), self._rng.gauss(0, fault.amount)
                    )
                ]
            case FaultKind.JUMP if location:
                bearing = self._rng.uniform(0, 2 * math.pi)
                return [
                    _moved(
                        message, fault.amount * math.sin(bearing), fault.amount * math.cos(bearing)
                    )
                ]
            case FaultKind.DROPOUT if location:
                return []
            case FaultKind.DUPLICATE:
                return [message, message]
            case FaultKind.CLOCK_SKEW:
                return [_with(message, tst=int(payload["tst"] + fault.amount))]
            case FaultKind.IMPERSONATE:
                return [replace(message, user=fault.as_officer)]
            case FaultKind.BATTERY_DRAIN if location:
                hours = (elapsed - fault.start_s) / 3600
                left = int(payload.get("batt", 100) - fault.amount * hours)
                return [] if left <= 0 else [_with(message, batt=left)]
            case FaultKind.REORDER:
                batch = self._batches[(fault, message.device)]
                batch.append(message)
                if len(batch) < max(2, int(fault.amount)):
                    return []
                released = batch[::-1]
                batch.clear()
                return released
            case FaultKind.LATE | FaultKind.OFFLINE:
                key = (fault, message.device)
                went_dark = fault.kind is FaultKind.OFFLINE and key not in self._dark
                self._held[fault].append(message)
                if went_dark:
                    self._dark.add(key)
                    return [_conn(message, online=False)]
                return []
        return [message]

    def _release(self, elapsed: float, now: float) -> list[Message]:
        out: list[Message] = []
        for fault in [f for f in self._held if elapsed >= f.end_s]:
            held = self._held.pop(fault)
            back = sorted({m.device: m for m in held}.values(), key=lambda m: m.at)
            if fault.kind is FaultKind.OFFLINE:
                out += [_conn(replace(m, at=now), online=True) for m in back]
                self._dark -= {(fault, m.device) for m in back}
            out += held
        for (fault, _device), batch in list(self._batches.items()):
            if elapsed >= fault.end_s and batch:
                out += batch[::-1]
                batch.clear()
        return out


def _with(message: Message, **changes: Any) -> Message:
    return replace(message, payload={**message.payload, **changes})


def _moved(message: Message, east_m: float, north_m: float) -> Message:
    lat = message.payload["lat"] + north_m / METRES_PER_DEG_LAT
    lon = message.payload["lon"] + east_m / (
        METRES_PER_DEG_LAT * math.cos(math.radians(message.payload["lat"]))
    )
    return _with(message, lat=round(lat, 7), lon=round(lon, 7))


def _conn(message: Message, *, online: bool) -> Message:
    return Message(
        message.at,
        message.user,
        message.device,
        "conn",
        {"_type": "conn", "online": online, "tst": int(message.at)},
    )
