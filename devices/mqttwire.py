"""The subscriber's side of MQTT 3.1.1 and 5 on the wire: bytes in, packets out (sans-I/O).

Only what a QoS 1 subscriber needs: it encodes CONNECT, SUBSCRIBE, UNSUBSCRIBE, PUBACK,
PINGREQ and DISCONNECT, and decodes what a broker sends such a client (CONNACK, SUBACK,
UNSUBACK, PUBLISH, PINGRESP, DISCONNECT). `Decoder.feed` takes whatever a socket read returned, any number of packets or
part of one, and returns every packet it completes, so one read of a busy connection yields
hundreds of PUBLISH packets for one call. A broker that breaks the protocol gets a
`ProtocolError` naming what was wrong; nothing else is raised.

The PUBLISH path is written for speed: one slice per field, properties skipped by their
length rather than parsed (a subscriber that sets no Topic Alias Maximum receives no alias,
and nothing else in them changes what the message means to the ingest).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

MQTT_311 = 4
MQTT_5 = 5

# Packet types, the high nibble of the first byte.
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

# MQTT 5 DISCONNECT reason codes the subscriber acts on.
NORMAL_DISCONNECTION = 0x00
SESSION_TAKEN_OVER = 0x8E  # another client connected with this client id

# MQTT 5 property identifiers the client sends.
_SESSION_EXPIRY = 0x11
_MAX_PACKET_SIZE = 0x27

# The largest packet MQTT can frame (four length bytes).
_PROTOCOL_MAX = 268_435_455

_PUBACK = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
PINGREQ_PACKET = b"\xc0\x00"


class ProtocolError(Exception):
    """The broker sent bytes that are not the MQTT this client speaks; the reason says how."""


class Publish(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 for QoS 0
    dup: bool
    retain: bool


@dataclass(frozen=True, slots=True)
class ConnAck:
    session_present: bool
    reason_code: int  # 0 accepted; 3.1.1 return codes 1-5 and MQTT 5 reason codes ≥ 0x80 refuse


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    reason_codes: tuple[int, ...]  # granted QoS (0-2), or ≥ 0x80 refused, per filter


@dataclass(frozen=True, slots=True)
class UnsubAck:
    packet_id: int
    reason_codes: tuple[int, ...]  # MQTT 5: one per filter (0x11: there was none); 3.1.1: none


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason_code: int  # MQTT 5 only: the broker says why it is closing


Packet = Publish | ConnAck | SubAck | UnsubAck | PingResp | Disconnect


def encode_connect(
    client_id: str,
    *,
    protocol: int = MQTT_5,
    keepalive_s: int = 30,
    clean_start: bool = False,
    username: str | None = None,
    password: str | None = None,
    session_expiry_s: int = 0,
    max_packet_bytes: int = 0,
) -> bytes:
    """A CONNECT packet. In MQTT 5 `session_expiry_s` keeps the session that long after a
    disconnect (3.1.1 keeps it while `clean_start` is off), and a `max_packet_bytes` asks the
    broker never to send a larger packet."""
    if protocol not in (MQTT_311, MQTT_5):
        raise ValueError(f"MQTT protocol level {protocol} is not 4 (3.1.1) or 5")
    if password is not None and username is None:
        raise ValueError("an MQTT password needs a username")
    flags = 0x02 if clean_start else 0
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    header = _string("MQTT") + bytes((protocol, flags)) + _U16.pack(keepalive_s)
    if protocol == MQTT_5:
        props = b""
        if session_expiry_s:
            props += bytes((_SESSION_EXPIRY,)) + session_expiry_s.to_bytes(4, "big")
        if max_packet_bytes:
            props += bytes((_MAX_PACKET_SIZE,)) + max_packet_bytes.to_bytes(4, "big")
        header += encode_varint(len(props)) + props
    return _packet(CONNECT << 4, header + payload)


def encode_subscribe(
    packet_id: int, filters: Sequence[tuple[str, int]], *, protocol: int = MQTT_5
) -> bytes:
    """A SUBSCRIBE packet for `(filter, max QoS)` pairs."""
    if not filters:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    body = _U16.pack(packet_id)
    if protocol == MQTT_5:
        body += b"\x00"  # no properties
    for topic_filter, qos in filters:
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS {qos} for {topic_filter!r} is not 0, 1 or 2")
        body += _string(topic_filter) + bytes((qos,))
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def encode_unsubscribe(packet_id: int, filters: Sequence[str], *, protocol: int = MQTT_5) -> bytes:
    """An UNSUBSCRIBE packet for `filters`, as they were subscribed."""
    if not filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    body = _U16.pack(packet_id)
    if protocol == MQTT_5:
        body += b"\x00"  # no properties
    for topic_filter in filters:
        body += _string(topic_filter)
    return _packet((UNSUBSCRIBE << 4) | 0x02, body)


def encode_pubacks(packet_ids: Iterable[int]) -> bytes:
    """PUBACKs for QoS 1 messages, concatenated for one write. The short form (no reason
    code: success) is the same bytes in 3.1.1 and 5."""
    pack = _PUBACK.pack
    return b"".join([pack(PUBACK << 4, 2, packet_id) for packet_id in packet_ids])


def encode_disconnect(*, session_expiry_s: int | None = None) -> bytes:
    """A normal DISCONNECT (3.1.1, and MQTT 5's reason 0 in its short form). In MQTT 5 a
    `session_expiry_s` replaces the one given at CONNECT: 0 has the broker discard the session
    at once, so nothing is queued for it afterwards."""
    if session_expiry_s is None:
        return bytes((DISCONNECT << 4, 0))
    props = bytes((_SESSION_EXPIRY,)) + session_expiry_s.to_bytes(4, "big")
    body = bytes((NORMAL_DISCONNECTION,)) + encode_varint(len(props)) + props
    return _packet(DISCONNECT << 4, body)


def encode_varint(value: int) -> bytes:
    """MQTT's variable byte integer: 7 bits a byte, low first, at most four bytes."""
    if not 0 <= value <= _PROTOCOL_MAX:
        raise ValueError(f"{value} does not fit MQTT's variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Decoder:
    """Turns the broker's byte stream into packets, whatever the reads' boundaries.

    After a `ProtocolError` the stream has no trustworthy packet boundary left: the caller
    must close the connection (MQTT's rule for a malformed packet) and start a new decoder.
    """

    def __init__(self, protocol: int = MQTT_5, max_packet_bytes: int = 1 << 20) -> None:
        if protocol not in (MQTT_311, MQTT_5):
            raise ValueError(f"MQTT protocol level {protocol} is not 4 (3.1.1) or 5")
        self.protocol = protocol
        self.max_packet_bytes = max_packet_bytes
        self._rest = b""

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet held until more arrive."""
        return len(self._rest)

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._rest + data if self._rest else data
        packets: list[Packet] = []
        at, end = 0, len(buf)
        v5 = self.protocol == MQTT_5
        while at < end:
            first = buf[at]
            # The remaining length: up to four bytes, seven bits each.
            length = 0
            shift = 0
            pos = at + 1
            while True:
                if pos >= end:
                    self._rest = buf[at:]
                    return packets
                byte = buf[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("remaining length longer than four bytes")
            if length > self.max_packet_bytes:
                raise ProtocolError(
                    f"a {length}-byte packet exceeds the {self.max_packet_bytes}-byte limit"
                )
            stop = pos + length
            if stop > end:
                self._rest = buf[at:]
                return packets
            kind = first >> 4
            if kind == PUBLISH:
                packets.append(_publish(buf, first, pos, stop, v5))
            else:
                packets.append(_control(kind, first, buf[pos:stop], v5))
            at = stop
        self._rest = b""
        return packets


def _publish(buf: bytes, first: int, at: int, stop: int, v5: bool) -> Publish:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    if at + 2 > stop:
        raise ProtocolError("PUBLISH too short for its topic length")
    topic_end = at + 2 + (buf[at] << 8 | buf[at + 1])
    if topic_end > stop:
        raise ProtocolError("PUBLISH topic runs past the packet")
    # An invalid UTF-8 topic becomes a readable one with U+FFFD, which the topic parser
    # refuses with a reason, instead of a broken connection the broker would redeliver into.
    topic = buf[at + 2 : topic_end].decode("utf-8", "replace")
    at = topic_end
    packet_id = 0
    if qos:
        if at + 2 > stop:
            raise ProtocolError("PUBLISH too short for its packet identifier")
        packet_id = buf[at] << 8 | buf[at + 1]
        if packet_id == 0:
            raise ProtocolError("PUBLISH with QoS > 0 and packet identifier 0")
        at += 2
    if v5:
        props_length, at = _varint_at(buf, at, stop)
        at += props_length
        if at > stop:
            raise ProtocolError("PUBLISH properties run past the packet")
    if not topic:
        raise ProtocolError("PUBLISH without a topic (this client allows no topic aliases)")
    return Publish(topic, buf[at:stop], qos, packet_id, bool(first & 0x08), bool(first & 0x01))


def _control(kind: int, first: int, body: bytes, v5: bool) -> Packet:
    if kind == CONNACK:
        if len(body) < 2:
            raise ProtocolError("CONNACK shorter than 2 bytes")
        return ConnAck(bool(body[0] & 0x01), body[1])
    if kind == SUBACK:
        packet_id, codes = _answer("SUBACK", body, v5)
        if not codes:
            raise ProtocolError("SUBACK without a reason code")
        return SubAck(packet_id, codes)
    if kind == UNSUBACK:
        return UnsubAck(*_answer("UNSUBACK", body, v5))
    if kind == PINGRESP:
        return PingResp()
    if kind == DISCONNECT and v5:
        return Disconnect(body[0] if body else 0)
    name = _NAMES.get(kind, f"type {kind}")
    raise ProtocolError(f"a broker does not send {name} to a subscriber (first byte {first:#04x})")


def _answer(name: str, body: bytes, v5: bool) -> tuple[int, tuple[int, ...]]:
    """The packet identifier and reason codes of a SUBACK or UNSUBACK (in MQTT 5 the codes
    follow its properties; a 3.1.1 UNSUBACK has none)."""
    if len(body) < 2:
        raise ProtocolError(f"{name} without a packet identifier")
    at = 2
    if v5:
        props_length, at = _varint_at(body, at, len(body))
        at += props_length
        if at > len(body):
            raise ProtocolError(f"{name} properties run past the packet")
    return _U16.unpack_from(body)[0], tuple(body[at:])


def _varint_at(buf: bytes, at: int, stop: int) -> tuple[int, int]:
    value = 0
    for shift in (0, 7, 14, 21):
        if at >= stop:
            raise ProtocolError("variable byte integer runs past the packet")
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
    raise ProtocolError("variable byte integer longer than four bytes")


def _string(text: str) -> bytes:
    data = text.encode()
    if len(data) > 0xFFFF:
        raise ValueError(f"an MQTT string holds at most 65535 bytes, not {len(data)}")
    return _U16.pack(len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


_NAMES = {
    CONNECT: "CONNECT",
    PUBACK: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    SUBSCRIBE: "SUBSCRIBE",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ",
    DISCONNECT: "DISCONNECT",
    15: "AUTH",
}
