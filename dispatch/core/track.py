"""Positions as evidence: the canonical fix record and the per-device hash chain.

Each device's accepted fixes form a chain, in the order the center stored them:

    h_0 = sha256("yiwang-chain:" || device)
    h_n = sha256(h_{n-1} || canonical(fix_n) || sha256(raw payload_n))

The canonical form is stored next to each link, so a verifier needs only the stored bytes and
sha256 to check a track; no knowledge of our JSON encoder is required. Binding the genesis to
the device key means a chain cannot be passed off as another device's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import NewType

import msgspec

DeviceKey = NewType("DeviceKey", str)
"""`user/device`, exactly as the two topic levels name them."""

_COORD_DECIMALS = 7  # ~1 cm; more digits are noise and would only bloat the record


def device_key(user: str, device: str) -> DeviceKey:
    return DeviceKey(f"{user}/{device}")


@dataclass(frozen=True, slots=True)
class Fix:
    """One accepted position in canonical units: WGS-84 degrees, epoch seconds UTC, km/h, m."""

    device: DeviceKey
    lon: float
    lat: float
    fix_at: int
    received_at: float
    acc_m: float | None = None
    alt_m: float | None = None
    vel_kmh: float | None = None
    cog_deg: float | None = None
    batt_pct: int | None = None
    seq: int | None = None
    sat: int | None = None
    hdop: float | None = None
    datum: str | None = None
    badge: str | None = None
    backfill: bool = False
    # The tst of the live fix this one displaced as an outlier (devices.quality's jump filter).
    reanchored_from: int | None = None

    def canonical(self) -> bytes:
        """The bytes the chain commits to: sorted-key compact JSON, absent fields left out."""
        # Read the slots directly: dataclasses.asdict deep-copies and costs ~60 us per fix.
        record = {name: getattr(self, name) for name in _FIX_FIELDS}
        record = {k: v for k, v in record.items() if v is not None and v is not False}
        record["lon"] = round(self.lon, _COORD_DECIMALS)
        record["lat"] = round(self.lat, _COORD_DECIMALS)
        return msgspec.json.encode(record, order="sorted")


_FIX_FIELDS = tuple(f.name for f in fields(Fix))


@dataclass(frozen=True, slots=True)
class LastFix:
    """A device's newest live fix: what the next fix is judged against."""

    lon: float
    lat: float
    fix_at: int


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What the store keeps per fix to let anyone re-derive the chain."""

    canonical: bytes
    raw_sha256: str
    chain_hash: str


def genesis(device: DeviceKey) -> str:
    return hashlib.sha256(b"yiwang-chain:" + device.encode()).hexdigest()


def link(prev_hash: str, canonical: bytes, raw_sha256: str) -> str:
    """h_n from h_{n-1}, the canonical fix and the raw payload digest (all hex or bytes)."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(canonical)
    digest.update(bytes.fromhex(raw_sha256))
    return digest.hexdigest()


class BrokenChainError(ValueError):
    """A link does not follow from its predecessor."""

    def __init__(self, device: DeviceKey, index: int, expected: str, found: str) -> None:
        super().__init__(
            f"chain of {device} breaks at link {index}: expected {expected[:16]}…, "
            f"stored {found[:16]}…"
        )
        self.device = device
        self.index = index


def verify_chain(device: DeviceKey, links: Iterable[ChainLink], start: str | None = None) -> str:
    """Recompute every link from `start` (the genesis by default) and return the head.

    Raises BrokenChainError naming the first link whose stored hash does not follow.
    """
    head = genesis(device) if start is None else start
    for index, stored in enumerate(links):
        expected = link(head, stored.canonical, stored.raw_sha256)
        if expected != stored.chain_hash:
            raise BrokenChainError(device, index, expected, stored.chain_hash)
        head = expected
    return head
