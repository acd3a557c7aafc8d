"""The message bodies the center reads and writes, decoded into frozen dataclasses.

Up from terminals: general response 0x0001, heartbeat 0x0002, logout 0x0003, registration
0x0100, authentication 0x0102, location report 0x0200 and batch 0x0704. Down from the center:
general response 0x8001, registration response 0x8100 and text message 0x8300. Each is both
decoded and encoded (tests and simulated terminals speak the same code). Strings are GBK, as
the standard says; fixed-width fields are padded with NUL bytes.
"""

from __future__ import annotations

import calendar
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import TypeAlias, TypeVar

from devices.jt808.bcd import decode_bcd, encode_bcd
from devices.jt808.errors import Jt808Error, Reason
from devices.jt808.frame import pack_frame
from devices.jt808.header import MAX_BODY_BYTES, Header, encode_header

# The standard's default: terminals keep Beijing time (GMT+8).
BEIJING_UTC_OFFSET_S = 8 * 3600
_LOCATION_FIXED_BYTES = 28
_MICRODEGREES = 1_000_000


class MessageId(IntEnum):
    TERMINAL_RESPONSE = 0x0001
    HEARTBEAT = 0x0002
    LOGOUT = 0x0003
    REGISTRATION = 0x0100
    AUTHENTICATION = 0x0102
    LOCATION = 0x0200
    LOCATION_BATCH = 0x0704
    PLATFORM_RESPONSE = 0x8001
    REGISTRATION_RESPONSE = 0x8100
    TEXT = 0x8300


class Result(IntEnum):
    """The result of a general response (0x0001 from terminals, 0x8001 from the center)."""

    SUCCESS = 0
    FAILURE = 1
    MESSAGE_ERROR = 2
    UNSUPPORTED = 3
    ALARM_CONFIRMED = 4  # 0x8001 only: the terminal clears its emergency bit


class RegistrationResult(IntEnum):
    SUCCESS = 0
    VEHICLE_REGISTERED = 1
    NO_SUCH_VEHICLE = 2
    TERMINAL_REGISTERED = 3
    NO_SUCH_TERMINAL = 4


# Alarm and status bits of a location report (JT/T 808 tables 24 and 25).
ALARM_EMERGENCY = 1 << 0
STATUS_LOCATED = 1 << 1
STATUS_SOUTH = 1 << 2
STATUS_WEST = 1 << 3
# Additional items of a location report by id.
EXTRA_MILEAGE = 0x01  # DWORD, 1/10 km
EXTRA_RSSI = 0x30  # BYTE
EXTRA_SATELLITES = 0x31  # BYTE
# 0x8300 flags. 2013: bit 0 emergency, 2 show on the display, 3 read aloud (TTS).
# 2019: bits 0-1 are the kind (01 service, 10 emergency, 11 notice), 2 and 3 as in 2013.
TEXT_DISPLAY = 1 << 2
TEXT_TTS = 1 << 3
TEXT_EMERGENCY_2013 = 1 << 0
TEXT_EMERGENCY_2019 = 0b10
TEXT_TYPE_NOTICE = 1


@dataclass(frozen=True, slots=True)
class TerminalResponse:
    reply_serial: int
    reply_id: int
    result: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True)
class Registration:
    province: int
    city: int
    manufacturer: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str


@dataclass(frozen=True, slots=True)
class Authentication:
    code: str
    imei: str = ""  # 2019 only
    software_version: str = ""  # 2019 only


@dataclass(frozen=True, slots=True)
class LocationReport:
    alarm: int
    status: int
    lon: float  # degrees, west negative (status bit 3 on the wire)
    lat: float  # degrees, south negative (status bit 2)
    altitude_m: int
    speed_kmh: float
    course_deg: int  # clockwise from north
    local_time: datetime  # naive: the terminal's clock, Beijing time by the standard
    extras: tuple[tuple[int, bytes], ...] = ()

    @property
    def emergency(self) -> bool:
        return bool(self.alarm & ALARM_EMERGENCY)

    @property
    def located(self) -> bool:
        return bool(self.status & STATUS_LOCATED)

    def fix_at(self, utc_offset_s: int = BEIJING_UTC_OFFSET_S) -> int:
        """The report's time as UTC epoch seconds, for a terminal clock `utc_offset_s` ahead."""
        return calendar.timegm(self.local_time.timetuple()) - utc_offset_s

    def extra(self, item: int) -> bytes | None:
        return next((value for key, value in self.extras if key == item), None)

    @property
    def mileage_km(self) -> float | None:
        value = self.extra(EXTRA_MILEAGE)
        return int.from_bytes(value, "big") / 10 if value and len(value) == 4 else None

    @property
    def rssi(self) -> int | None:
        value = self.extra(EXTRA_RSSI)
        return value[0] if value and len(value) == 1 else None

    @property
    def satellites(self) -> int | None:
        value = self.extra(EXTRA_SATELLITES)
        return value[0] if value and len(value) == 1 else None


@dataclass(frozen=True, slots=True)
class LocationBatch:
    backfill: bool  # type 1: reports stored while out of coverage (盲区补报); 0: a plain batch
    reports: tuple[LocationReport, ...]


@dataclass(frozen=True, slots=True)
class PlatformResponse:
    reply_serial: int
    reply_id: int
    result: Result


@dataclass(frozen=True, slots=True)
class RegistrationResponse:
    reply_serial: int
    result: RegistrationResult
    auth_code: str = ""  # sent only with SUCCESS


@dataclass(frozen=True, slots=True)
class TextMessage:
    text: str
    flags: int
    text_type: int = TEXT_TYPE_NOTICE  # 2019 only


def urgent_text(text: str, *, is_2019: bool) -> TextMessage:
    """An emergency text, shown and read aloud, cut to what one frame's body carries."""
    room = MAX_BODY_BYTES - (2 if is_2019 else 1)
    # GBK has no emoji and few rare names' characters: those become "?", not a refusal. A
    # character cut in two at the end of the room is dropped whole.
    spelled = text.encode("gbk", "replace")[:room].decode("gbk", "ignore")
    emergency = TEXT_EMERGENCY_2019 if is_2019 else TEXT_EMERGENCY_2013
    return TextMessage(spelled, emergency | TEXT_DISPLAY | TEXT_TTS)


Message: TypeAlias = (
    TerminalResponse
    | Heartbeat
    | Logout
    | Registration
    | Authentication
    | LocationReport
    | LocationBatch
    | PlatformResponse
    | RegistrationResponse
    | TextMessage
)


class _Reader:
    """Reads a body front to back; running out names the message and the field."""

    def __init__(self, body: bytes, msg_id: int) -> None:
        self.body = body
        self.at = 0
        self.msg_id = msg_id

    def take(self, size: int, field: str) -> bytes:
        if self.at + size > len(self.body):
            raise Jt808Error(
                Reason.BAD_BODY,
                f"message 0x{self.msg_id:04x}: the body ends at byte {len(self.body)}, "
                f"{field} needs bytes {self.at}..{self.at + size}",
            )
        chunk = self.body[self.at : self.at + size]
        self.at += size
        return chunk

    def number(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "big")

    def text(self, size: int, field: str) -> str:
        return _text(self.take(size, field).rstrip(b"\x00 "), self.msg_id, field)

    def rest(self) -> bytes:
        chunk = self.body[self.at :]
        self.at = len(self.body)
        return chunk

    def left(self) -> int:
        return len(self.body) - self.at


def _text(raw: bytes, msg_id: int, field: str) -> str:
    try:
        return raw.decode("gbk")
    except UnicodeDecodeError as exc:
        raise Jt808Error(
            Reason.BAD_BODY, f"message 0x{msg_id:04x}: {field} is not GBK text ({exc.reason})"
        ) from None


def _fixed(text: str, size: int, field: str) -> bytes:
    raw = text.encode("gbk")
    if len(raw) > size:
        raise Jt808Error(Reason.BAD_BODY, f"{field} {text!r} is over {size} bytes in GBK")
    return raw.ljust(size, b"\x00")


# Registration field widths (manufacturer, model, terminal id) by version. 2011 and 2013
# frames carry no version; a 2011 body is told by its length (25 bytes before the plate,
# 37 in 2013), which misreads only a 2011 plate of 12 bytes or more.
_REGISTRATION_2011 = (5, 8, 7)
_REGISTRATION_2013 = (5, 20, 7)
_REGISTRATION_2019 = (11, 30, 30)
_REGISTRATION_2013_MIN = 2 + 2 + sum(_REGISTRATION_2013) + 1


def _registration_widths(is_2019: bool, body_length: int) -> tuple[int, int, int]:
    if is_2019:
        return _REGISTRATION_2019
    return _REGISTRATION_2013 if body_length >= _REGISTRATION_2013_MIN else _REGISTRATION_2011


def _decode_registration(read: _Reader, is_2019: bool) -> Registration:
    maker, model, terminal = _registration_widths(is_2019, len(read.body))
    return Registration(
        province=read.number(2, "province"),
        city=read.number(2, "city"),
        manufacturer=read.text(maker, "manufacturer"),
        model=read.text(model, "terminal model"),
        terminal_id=read.text(terminal, "terminal id"),
        plate_color=read.number(1, "plate colour"),
        plate=_text(read.rest(), read.msg_id, "plate"),
    )


def _encode_registration(message: Registration, is_2019: bool) -> bytes:
    maker, model, terminal = _REGISTRATION_2019 if is_2019 else _REGISTRATION_2013
    return b"".join(
        (
            struct.pack(">HH", message.province, message.city),
            _fixed(message.manufacturer, maker, "manufacturer"),
            _fixed(message.model, model, "terminal model"),
            _fixed(message.terminal_id, terminal, "terminal id"),
            bytes((message.plate_color,)),
            message.plate.encode("gbk"),
        )
    )


def _decode_authentication(read: _Reader, is_2019: bool) -> Authentication:
    if not is_2019:
        return Authentication(_text(read.rest(), read.msg_id, "auth code"))
    size = read.number(1, "auth code length")
    return Authentication(
        code=read.text(size, "auth code"),
        imei=read.text(15, "IMEI"),
        software_version=read.text(20, "software version"),
    )


def _encode_authentication(message: Authentication, is_2019: bool) -> bytes:
    code = message.code.encode("gbk")
    if not is_2019:
        return code
    if len(code) > 0xFF:
        raise Jt808Error(Reason.BAD_BODY, f"an auth code of {len(code)} bytes; at most 255 fit")
    return b"".join(
        (
            bytes((len(code),)),
            code,
            _fixed(message.imei, 15, "IMEI"),
            _fixed(message.software_version, 20, "software version"),
        )
    )


def _decode_location(read: _Reader, is_2019: bool = False) -> LocationReport:
    alarm, status, lat_e6, lon_e6, altitude, speed, course = struct.unpack(
        ">IIIIhHH", read.take(22, "the location's fixed part")
    )
    digits = decode_bcd(read.take(6, "the report time"))
    year, month, day, hour, minute, second = (int(digits[n : n + 2]) for n in range(0, 12, 2))
    try:
        local_time = datetime(2000 + year, month, day, hour, minute, second)
    except ValueError:
        raise Jt808Error(
            Reason.BAD_BODY,
            f"message 0x{read.msg_id:04x}: report time {digits} is not a YYMMDDhhmmss time",
        ) from None
    extras = []
    # A vendor's malformed item must not cost the position: items are read while whole.
    while read.left() >= 2:
        item, size = read.take(2, "an additional item")
        if size > read.left():
            break
        extras.append((item, read.take(size, f"additional item 0x{item:02x}")))
    return LocationReport(
        alarm=alarm,
        status=status,
        lon=-lon_e6 / _MICRODEGREES if status & STATUS_WEST else lon_e6 / _MICRODEGREES,
        lat=-lat_e6 / _MICRODEGREES if status & STATUS_SOUTH else lat_e6 / _MICRODEGREES,
        altitude_m=altitude,
        speed_kmh=speed / 10,
        course_deg=course,
        local_time=local_time,
        extras=tuple(extras),
    )


def _encode_location(message: LocationReport) -> bytes:
    status = message.status & ~(STATUS_SOUTH | STATUS_WEST)
    if math.copysign(1.0, message.lat) < 0:
        status |= STATUS_SOUTH
    if math.copysign(1.0, message.lon) < 0:
        status |= STATUS_WEST
    fixed = struct.pack(
        ">IIIIhHH",
        message.alarm,
        status,
        round(abs(message.lat) * _MICRODEGREES),
        round(abs(message.lon) * _MICRODEGREES),
        message.altitude_m,
        round(message.speed_kmh * 10),
        message.course_deg,
    )
    extras = b"".join(bytes((item, len(value))) + value for item, value in message.extras)
    return fixed + _encode_time(message.local_time) + extras


def _encode_time(local: datetime) -> bytes:
    if not 2000 <= local.year <= 2099:
        raise Jt808Error(Reason.BAD_BODY, f"{local} is outside the years BCD[6] can carry")
    return encode_bcd(f"{local.year - 2000:02d}{local:%m%d%H%M%S}", 6)


def _decode_batch(read: _Reader, is_2019: bool) -> LocationBatch:
    count = read.number(2, "report count")
    kind = read.number(1, "batch type")
    reports = []
    for n in range(count):
        size = read.number(2, f"the length of report {n + 1} of {count}")
        reports.append(_decode_location(_Reader(read.take(size, f"report {n + 1}"), read.msg_id)))
    if read.left():
        raise Jt808Error(
            Reason.BAD_BODY,
            f"message 0x{read.msg_id:04x}: {read.left()} bytes follow the {count} reports",
        )
    return LocationBatch(backfill=kind == 1, reports=tuple(reports))


def _encode_batch(message: LocationBatch) -> bytes:
    bodies = [_encode_location(report) for report in message.reports]
    head = struct.pack(">HB", len(bodies), 1 if message.backfill else 0)
    return head + b"".join(struct.pack(">H", len(body)) + body for body in bodies)


def _decode_terminal_response(read: _Reader, is_2019: bool) -> TerminalResponse:
    return TerminalResponse(*struct.unpack(">HHB", read.take(5, "the response")))


def _decode_platform_response(read: _Reader, is_2019: bool) -> PlatformResponse:
    reply_serial, reply_id, result = struct.unpack(">HHB", read.take(5, "the response"))
    return PlatformResponse(reply_serial, reply_id, _known(Result, result, read.msg_id))


def _encode_response(message: TerminalResponse | PlatformResponse) -> bytes:
    return struct.pack(">HHB", message.reply_serial, message.reply_id, message.result)


def _decode_registration_response(read: _Reader, is_2019: bool) -> RegistrationResponse:
    reply_serial = read.number(2, "reply serial")
    result = _known(RegistrationResult, read.number(1, "result"), read.msg_id)
    return RegistrationResponse(reply_serial, result, _text(read.rest(), read.msg_id, "auth code"))


def _encode_registration_response(message: RegistrationResponse) -> bytes:
    return struct.pack(">HB", message.reply_serial, message.result) + message.auth_code.encode(
        "gbk"
    )


def _decode_text(read: _Reader, is_2019: bool) -> TextMessage:
    flags = read.number(1, "flags")
    text_type = read.number(1, "text type") if is_2019 else TEXT_TYPE_NOTICE
    return TextMessage(_text(read.rest(), read.msg_id, "text"), flags, text_type)


def _encode_text(message: TextMessage, is_2019: bool) -> bytes:
    head = bytes((message.flags, message.text_type)) if is_2019 else bytes((message.flags,))
    return head + message.text.encode("gbk")


_Code = TypeVar("_Code", bound=IntEnum)


def _empty(cls: type[Heartbeat | Logout]) -> Callable[[_Reader, bool], Heartbeat | Logout]:
    # Terminals may pad an empty body; what they put there carries nothing.
    return lambda read, is_2019: cls()


_DECODERS: dict[int, Callable[[_Reader, bool], Message]] = {
    MessageId.TERMINAL_RESPONSE: _decode_terminal_response,
    MessageId.HEARTBEAT: _empty(Heartbeat),
    MessageId.LOGOUT: _empty(Logout),
    MessageId.REGISTRATION: _decode_registration,
    MessageId.AUTHENTICATION: _decode_authentication,
    MessageId.LOCATION: _decode_location,
    MessageId.LOCATION_BATCH: _decode_batch,
    MessageId.PLATFORM_RESPONSE: _decode_platform_response,
    MessageId.REGISTRATION_RESPONSE: _decode_registration_response,
    MessageId.TEXT: _decode_text,
}


def _known(kind: type[_Code], value: int, msg_id: int) -> _Code:
    try:
        return kind(value)
    except ValueError:
        raise Jt808Error(
            Reason.BAD_BODY, f"message 0x{msg_id:04x}: {value} is not a {kind.__name__}"
        ) from None


def decode_body(header: Header, body: bytes) -> Message:
    """The message `body` holds; raise Jt808Error naming the field that cannot be read."""
    if header.encryption:
        raise Jt808Error(
            Reason.ENCRYPTED,
            f"message 0x{header.msg_id:04x} is encrypted (mode {header.encryption}); "
            "the center holds no terminal keys",
        )
    if header.packet is not None:
        raise Jt808Error(
            Reason.SUBPACKAGED,
            f"message 0x{header.msg_id:04x} is packet {header.packet[1]} of "
            f"{header.packet[0]}; the center reads no multi-packet messages",
        )
    decoder = _DECODERS.get(header.msg_id)
    if decoder is None:
        raise Jt808Error(
            Reason.UNKNOWN_MESSAGE,
            f"message id 0x{header.msg_id:04x} is not one the center reads",
        )
    return decoder(_Reader(body, header.msg_id), header.is_2019)


def encode_body(message: Message, *, is_2019: bool = False) -> tuple[MessageId, bytes]:
    """The id and body of `message`; raise Jt808Error for a value the wire cannot carry."""
    try:
        return _encode_body(message, is_2019)
    except UnicodeEncodeError as exc:
        raise Jt808Error(Reason.BAD_BODY, f"text that GBK cannot spell: {exc}") from None
    except struct.error as exc:
        raise Jt808Error(Reason.BAD_BODY, f"a field does not fit: {exc}") from None


def _encode_body(message: Message, is_2019: bool) -> tuple[MessageId, bytes]:
    match message:
        case TerminalResponse():
            return MessageId.TERMINAL_RESPONSE, _encode_response(message)
        case Heartbeat():
            return MessageId.HEARTBEAT, b""
        case Logout():
            return MessageId.LOGOUT, b""
        case Registration():
            return MessageId.REGISTRATION, _encode_registration(message, is_2019)
        case Authentication():
            return MessageId.AUTHENTICATION, _encode_authentication(message, is_2019)
        case LocationReport():
            return MessageId.LOCATION, _encode_location(message)
        case LocationBatch():
            return MessageId.LOCATION_BATCH, _encode_batch(message)
        case PlatformResponse():
            return MessageId.PLATFORM_RESPONSE, _encode_response(message)
        case RegistrationResponse():
            return MessageId.REGISTRATION_RESPONSE, _encode_registration_response(message)
        case TextMessage():
            return MessageId.TEXT, _encode_text(message, is_2019)


def encode_message(
    message: Message, *, phone: str, serial: int, protocol_version: int | None = None
) -> bytes:
    """A whole frame carrying `message` (flags, escaping and checksum included)."""
    msg_id, body = encode_body(message, is_2019=protocol_version is not None)
    header = Header(msg_id, phone, serial, protocol_version=protocol_version)
    return pack_frame(encode_header(header, len(body)) + body)
