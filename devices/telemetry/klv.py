"""MISB ST 0601 UAS Datalink Local Set: the KLV metadata of full-motion video.

A packet is the 16-byte Universal Label, a BER length, then tag-length-value items; the last
item (tag 1) is a 16-bit checksum over everything before its value. Values are integers
mapped linearly onto their ranges (ST 0601 tables); the ones for where and when are decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devices.telemetry.points import TelemetryError

UAS_LOCAL_SET = bytes.fromhex("060E2B34020B01010E01030101000000")


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def _unsigned(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


# tag: (name, decoder)
_TAGS: dict[int, tuple[str, Callable[[bytes], object]]] = {
    2: ("timestamp", lambda r: datetime.fromtimestamp(_unsigned(r) / 1e6, UTC)),
    3: ("mission_id", lambda r: r.decode("utf-8", errors="replace")),
    5: ("platform_heading_deg", lambda r: _unsigned(r) * 360 / 0xFFFF),
    6: ("platform_pitch_deg", lambda r: _signed(r) * 40 / 0xFFFE),
    7: ("platform_roll_deg", lambda r: _signed(r) * 100 / 0xFFFE),
    13: ("sensor_lat", lambda r: _signed(r) * 180 / 0xFFFFFFFE),
    14: ("sensor_lon", lambda r: _signed(r) * 360 / 0xFFFFFFFE),
    15: ("sensor_alt_m", lambda r: _unsigned(r) * 19900 / 0xFFFF - 900),
}


@dataclass
class KlvPacket:
    values: dict[str, object] = field(default_factory=dict)
    unknown_tags: list[int] = field(default_factory=list)
    checksum_ok: bool | None = None  # None: the packet has no checksum item


def decode_item(tag: int, value: bytes) -> tuple[str, object] | None:
    """One ST 0601 item as (name, value), or None for a tag not decoded here."""
    known = _TAGS.get(tag)
    return None if known is None else (known[0], known[1](value))


def _ber(data: bytes, at: int) -> tuple[int, int]:
    """A BER length at `at`: (length, position after it)."""
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def _checksum(data: bytes) -> int:
    total = 0
    for n, byte in enumerate(data):
        total += byte << (8 * ((n + 1) % 2))
    return total & 0xFFFF


def parse_packet(data: bytes) -> KlvPacket:
    if not data.startswith(UAS_LOCAL_SET):
        raise TelemetryError(
            f"not a MISB ST 0601 packet: the key is {data[:16].hex()}, expected {UAS_LOCAL_SET.hex()}"
        )
    length, at = _ber(data, 16)
    end = at + length
    if end > len(data):
        raise TelemetryError(f"KLV packet declares {length} bytes, {len(data) - at} present")
    packet = KlvPacket()
    while at < end:
        tag, at = data[at], at + 1
        size, at = _ber(data, at)
        value = data[at : at + size]
        if tag == 1:
            (stored,) = struct.unpack(">H", value)
            packet.checksum_ok = stored == _checksum(data[:at])
        else:
            item = decode_item(tag, value)
            if item is None:
                packet.unknown_tags.append(tag)
            else:
                packet.values[item[0]] = item[1]
        at += size
    return packet
