"""The message header, big-endian, in its two layouts.

2011/2013: msg id WORD, properties WORD, phone BCD[6], serial WORD[, packets WORD, packet WORD].
2019 (properties bit 14 set): msg id, properties, protocol version BYTE, phone BCD[10],
serial[, packets, packet]. Properties: bits 0-9 body length, 10-12 encryption, 13 the
message is one packet of several.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from devices.jt808.bcd import decode_bcd, encode_bcd
from devices.jt808.errors import Jt808Error, Reason

MAX_BODY_BYTES = 0x3FF
_LENGTH_MASK = 0x3FF
_ENCRYPTION_SHIFT = 10
_ENCRYPTION_MASK = 0b111
_PACKETS_BIT = 1 << 13
_VERSION_BIT = 1 << 14
_PHONE_BYTES_2013 = 6
_PHONE_BYTES_2019 = 10
_SHORT_2013 = 2 + 2 + _PHONE_BYTES_2013 + 2
_SHORT_2019 = 2 + 2 + 1 + _PHONE_BYTES_2019 + 2
_PACKET_BYTES = 4
MAX_HEADER_BYTES = _SHORT_2019 + _PACKET_BYTES


@dataclass(frozen=True, slots=True)
class Header:
    msg_id: int
    phone: str  # the BCD digits as sent, leading zeros kept: 12 (2011/2013) or 20 (2019)
    serial: int
    # Set for 2019 frames (the version bit); None for 2011 and 2013, which do not say.
    protocol_version: int | None = None
    encryption: int = 0
    packet: tuple[int, int] | None = None  # (packets in the message, this one's number)

    @property
    def is_2019(self) -> bool:
        return self.protocol_version is not None


def decode_header(content: bytes) -> tuple[Header, bytes]:
    """Split unescaped `content` (without the checksum) into its header and body.

    Raises Jt808Error when the content is shorter (`truncated`) or longer (`bad_length`)
    than the header's body length says.
    """
    if len(content) < 4:
        raise Jt808Error(Reason.TRUNCATED, f"{len(content)} bytes cannot hold a header")
    msg_id, props = struct.unpack_from(">HH", content)
    is_2019 = bool(props & _VERSION_BIT)
    size = (_SHORT_2019 if is_2019 else _SHORT_2013) + (
        _PACKET_BYTES if props & _PACKETS_BIT else 0
    )
    body_length = props & _LENGTH_MASK
    layout = "2019" if is_2019 else "2011/2013"
    if len(content) < size:
        raise Jt808Error(
            Reason.TRUNCATED,
            f"message 0x{msg_id:04x}: {len(content)} bytes, short of its {layout} header's {size}",
        )
    if len(content) != size + body_length:
        reason = Reason.TRUNCATED if len(content) < size + body_length else Reason.BAD_LENGTH
        raise Jt808Error(
            reason,
            f"message 0x{msg_id:04x} ({layout} header of {size} bytes) declares a body of "
            f"{body_length} bytes, but {len(content) - size} follow the header",
        )
    at = 4
    version: int | None = None
    if is_2019:
        version = content[at]
        at += 1
    phone_bytes = _PHONE_BYTES_2019 if is_2019 else _PHONE_BYTES_2013
    try:
        phone = decode_bcd(content[at : at + phone_bytes])
    except Jt808Error as exc:
        raise Jt808Error(Reason.BAD_BODY, f"terminal phone number: {exc}") from None
    at += phone_bytes
    (serial,) = struct.unpack_from(">H", content, at)
    at += 2
    packet: tuple[int, int] | None = None
    if props & _PACKETS_BIT:
        packet = struct.unpack_from(">HH", content, at)
        at += _PACKET_BYTES
    header = Header(
        msg_id,
        phone,
        serial,
        protocol_version=version,
        encryption=(props >> _ENCRYPTION_SHIFT) & _ENCRYPTION_MASK,
        packet=packet,
    )
    return header, content[at:]


def encode_header(header: Header, body_length: int) -> bytes:
    if not 0 <= body_length <= MAX_BODY_BYTES:
        raise Jt808Error(
            Reason.OVERSIZE, f"a body of {body_length} bytes; at most {MAX_BODY_BYTES} fit"
        )
    props = body_length | (header.encryption & _ENCRYPTION_MASK) << _ENCRYPTION_SHIFT
    if header.packet is not None:
        props |= _PACKETS_BIT
    if header.protocol_version is None:
        parts = [struct.pack(">HH", header.msg_id, props)]
        parts.append(encode_bcd(header.phone, _PHONE_BYTES_2013))
    else:
        parts = [struct.pack(">HHB", header.msg_id, props | _VERSION_BIT, header.protocol_version)]
        parts.append(encode_bcd(header.phone, _PHONE_BYTES_2019))
    parts.append(struct.pack(">H", header.serial))
    if header.packet is not None:
        parts.append(struct.pack(">HH", *header.packet))
    return b"".join(parts)
