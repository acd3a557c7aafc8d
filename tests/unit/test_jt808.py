"""JT/T 808 codec: Traccar's frames decode to the values in reference/devices.md §8.3, every
message round-trips, and no bytes in any chunking make the stream decoder raise."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.jt808.errors import Reason
from devices.jt808.frame import check_checksum, pack_frame, unescape
from devices.jt808.header import MAX_BODY_BYTES, Header, decode_header, encode_header
from devices.jt808.messages import (
    Authentication,
    Heartbeat,
    LocationBatch,
    LocationReport,
    Message,
    MessageId,
    PlatformResponse,
    Registration,
    RegistrationResponse,
    RegistrationResult,
    Result,
    TerminalResponse,
    TextMessage,
    encode_message,
    urgent_text,
)
from devices.jt808.report import wire_location, wire_sos
from devices.jt808.stream import MAX_FRAME_BYTES, Decoded, Malformed, StreamDecoder
from devices.jt808.terminals import Terminal
from devices.messages import Location
from gis.coords import Datum

# Traccar's Jt808ProtocolDecoderTest frames, as copied into reference/devices.md §8.3.
A = "7e0200002e094027587492000a000000010000000a03083db7001329f3000000140000130412164952010400000012360a0002341502cb0c20085c107e"
B = "7E020000480123456789010013000000800000000301597BC506CBFF6600EB00000155210726203531010400000000EB24000C00B28986047701207027150200060089FFFFEFFF0004002D0E10000600C5FFFFFFEF697E"
C = "7e0200003a019172511329001300000000000000020158df7206c9607000370000008424051311201801040000000030010d31011d5708000000000000000082020092510201230b7e"
D = "7e0200001f01207646327900400000000000006002015c7ab706d20469003b0000000025040216362606013e6b7e"

# phone, serial, alarm, status, lat, lon, alt, km/h, course, UTC, mileage km, rssi, satellites
EXPECTED = {
    "A": (A, "094027587492", 10, 0x1, 0x0A, 50.871735, -1.255923, 0, 2.0, 0,
          "2013-04-12T08:49:52", 1.8, None, None),
    "B": (B, "012345678901", 19, 0x80, 0x3, 22.641605, 114.032486, 235, 0.0, 341,
          "2021-07-26T12:35:31", 0.0, None, None),
    "C": (C, "019172511329", 19, 0, 0x2, 22.601586, 113.86072, 55, 0.0, 132,
          "2024-05-13T03:20:18", 0.0, 13, 29),
    "D": (D, "012076463279", 64, 0, 0x6002, 22.837943, 114.426985, 59, 0.0, 0,
          "2025-04-02T08:36:26", None, None, None),
}  # fmt: skip


def decode_all(data: bytes) -> list[Decoded | Malformed]:
    decoder = StreamDecoder()
    return decoder.feed(data) + decoder.close()


def only(data: bytes) -> Decoded | Malformed:
    (item,) = decode_all(data)
    return item


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_traccar_frames_decode_to_the_reference_values(name: str) -> None:
    vector = EXPECTED[name]
    frame, phone, serial, alarm, status, lat, lon, alt, kmh, course, utc, km, rssi, sats = vector
    decoded = only(bytes.fromhex(frame))
    assert isinstance(decoded, Decoded), decoded
    assert (decoded.header.msg_id, decoded.header.phone, decoded.header.serial) == (
        MessageId.LOCATION,
        phone,
        serial,
    )
    assert not decoded.header.is_2019
    report = decoded.message
    assert isinstance(report, LocationReport)
    assert (report.alarm, report.status) == (alarm, status)
    assert (report.lat, report.lon) == (lat, lon)
    assert (report.altitude_m, report.speed_kmh, report.course_deg) == (alt, kmh, course)
    fix_at = datetime.fromtimestamp(report.fix_at(), UTC).replace(tzinfo=None)
    assert fix_at.isoformat() == utc
    assert (report.mileage_km, report.rssi, report.satellites) == (km, rssi, sats)
    assert report.located  # every vector has status bit 1
    assert report.emergency == (name == "A")


def test_vendor_extras_are_kept_whole() -> None:
    b = only(bytes.fromhex(B))
    d = only(bytes.fromhex(D))
    assert isinstance(b, Decoded) and isinstance(d, Decoded)
    assert isinstance(b.message, LocationReport) and isinstance(d.message, LocationReport)
    assert [item for item, _ in b.message.extras] == [0x01, 0xEB]
    assert len(b.message.extra(0xEB) or b"") == 0x24
    assert d.message.extra(0x06) == b"\x3e"  # Traccar reads it as battery 62 %


def test_a_terminal_clock_offset_other_than_beijing_time() -> None:
    report = only(bytes.fromhex(A))
    assert isinstance(report, Decoded) and isinstance(report.message, LocationReport)
    # Frame A is in southern England: its clock is likely UTC, which the terminal record says.
    assert report.message.fix_at(utc_offset_s=0) == report.message.fix_at() + 8 * 3600


# --- one bad frame, one reason; the next frame is unharmed ------------------------------


GOOD = encode_message(Heartbeat(), phone="013800138000", serial=7)


def _reasons(data: bytes) -> list[str]:
    return [i.reason if isinstance(i, Malformed) else "ok" for i in decode_all(data)]


def test_a_bad_checksum_is_named_and_the_next_frame_decodes() -> None:
    frame = bytearray(bytes.fromhex(A))
    frame[-2] ^= 0x01
    assert _reasons(bytes(frame) + GOOD) == [Reason.BAD_CHECKSUM, "ok"]
    bad = decode_all(bytes(frame))[0]
    assert isinstance(bad, Malformed) and bad.header is None and "0x10" in bad.detail


def test_a_bad_escape_is_named() -> None:
    frame = bytes.fromhex(A)
    broken = frame[:10] + b"\x7d\x03" + frame[12:]
    assert _reasons(broken + GOOD) == [Reason.BAD_ESCAPE, "ok"]
    assert _reasons(frame[:-1] + b"\x7d\x7e" + GOOD) == [Reason.BAD_ESCAPE, "ok"]


def test_truncated_frames_are_named_mid_stream_and_at_the_end() -> None:
    frame = bytes.fromhex(A)
    # Cut short and followed by the next frame: the body is shorter than the header says.
    assert _reasons(frame[:30] + GOOD) == [Reason.TRUNCATED, "ok"]
    # The connection ends inside a frame.
    decoder = StreamDecoder()
    assert decoder.feed(GOOD + frame[:30]) and not decoder.feed(b"")
    (end,) = decoder.close()
    assert end.reason is Reason.TRUNCATED and "connection ended" in end.detail


def test_a_body_longer_than_declared_is_named() -> None:
    content = unescape(bytes.fromhex(A)[1:-1])[:-1] + b"\x00"
    assert _reasons(pack_frame(content)) == [Reason.BAD_LENGTH]


def test_an_oversize_frame_is_dropped_to_the_next_flag_within_a_bound() -> None:
    decoder = StreamDecoder()
    out = decoder.feed(b"\x7e" + b"\x01" * 10_000)
    out += decoder.feed(b"\x02" * 10_000)
    assert [i.reason for i in out if isinstance(i, Malformed)] == [Reason.OVERSIZE]
    assert len(decoder._frame) == 0  # nothing more is held while it is skipped
    out = decoder.feed(b"\x7e" + GOOD)
    assert [type(i) for i in out] == [Decoded]


def test_an_unknown_message_id_keeps_its_header_for_the_reply() -> None:
    header = Header(0x0900, "013800138000", 42)
    bad = only(pack_frame(encode_header(header, 3) + b"\x01\x02\x03"))
    assert isinstance(bad, Malformed) and bad.reason is Reason.UNKNOWN_MESSAGE
    assert bad.header == header and "0x0900" in bad.detail


def test_bytes_before_the_first_flag_are_named() -> None:
    assert _reasons(b"GET / HTTP/1.1\r\n" + GOOD) == [Reason.OUTSIDE_FRAME, "ok"]


def test_a_short_location_body_names_the_field() -> None:
    header = Header(MessageId.LOCATION, "013800138000", 1)
    bad = only(pack_frame(encode_header(header, 10) + bytes(10)))
    assert isinstance(bad, Malformed) and bad.reason is Reason.BAD_BODY
    assert "fixed part" in bad.detail and bad.header == header


def test_an_impossible_report_time_is_named() -> None:
    content = bytearray(unescape(bytes.fromhex(D)[1:-1])[:-1])
    content[12 + 22 + 1] = 0x13  # month 13
    bad = only(pack_frame(bytes(content)))
    assert isinstance(bad, Malformed) and bad.reason is Reason.BAD_BODY and "time" in bad.detail


def test_encrypted_and_multi_packet_messages_are_refused_with_their_header() -> None:
    for header, reason in (
        (Header(MessageId.LOCATION, "013800138000", 1, encryption=1), Reason.ENCRYPTED),
        (Header(MessageId.LOCATION, "013800138000", 1, packet=(2, 1)), Reason.SUBPACKAGED),
    ):
        bad = only(pack_frame(encode_header(header, 0)))
        assert isinstance(bad, Malformed) and (bad.reason, bad.header) == (reason, header)


# --- the other messages, both versions -------------------------------------------------


REGISTRATION = Registration(44, 300, "YW", "BC-100", "T000042", 1, "浙G12345")
MESSAGES = [
    REGISTRATION,
    Authentication("a1b2c3"),
    Heartbeat(),
    TerminalResponse(5, MessageId.TEXT, 0),
    PlatformResponse(5, MessageId.LOCATION, Result.ALARM_CONFIRMED),
    RegistrationResponse(9, RegistrationResult.SUCCESS, "a1b2c3"),
    RegistrationResponse(9, RegistrationResult.NO_SUCH_TERMINAL),
    TextMessage("请立即前往：金华市婺城区 事件 #42", flags=0x0D),
]


@pytest.mark.parametrize("version", [None, 1])
@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip_in_2013_and_2019(message: Message, version: int | None) -> None:
    phone = "12345678901234567890" if version else "013800138000"
    frame = encode_message(message, phone=phone, serial=300, protocol_version=version)
    decoded = only(frame)
    assert isinstance(decoded, Decoded), decoded
    assert decoded.message == message
    assert (decoded.header.phone, decoded.header.protocol_version) == (phone, version)


def test_2019_authentication_carries_imei_and_version() -> None:
    message = Authentication("code", imei="861234567890123", software_version="1.2.3")
    frame = encode_message(message, phone="1" * 20, serial=1, protocol_version=1)
    decoded = only(frame)
    assert isinstance(decoded, Decoded) and decoded.message == message


def test_a_2011_registration_is_told_by_its_length() -> None:
    body = (
        b"\x00\x2c\x01\x2c"
        + b"YW\0\0\0"
        + b"BC-100\0\0"
        + b"T000042"
        + b"\x01"
        + "浙G1".encode("gbk")
    )
    header = Header(MessageId.REGISTRATION, "013800138000", 1)
    decoded = only(pack_frame(encode_header(header, len(body)) + body))
    assert isinstance(decoded, Decoded)
    assert decoded.message == Registration(44, 300, "YW", "BC-100", "T000042", 1, "浙G1")


# --- properties ------------------------------------------------------------------------

phones_2013 = st.text("0123456789", min_size=12, max_size=12)
phones_2019 = st.text("0123456789", min_size=20, max_size=20)


@st.composite
def headers(draw: st.DrawFn) -> Header:
    version = draw(st.none() | st.integers(0, 255))
    return Header(
        msg_id=draw(st.integers(0, 0xFFFF)),
        phone=draw(phones_2019 if version is not None else phones_2013),
        serial=draw(st.integers(0, 0xFFFF)),
        protocol_version=version,
        encryption=draw(st.integers(0, 7)),
        packet=draw(st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))),
    )


# Bodies rich in the two bytes framing must escape.
bodies = st.binary(max_size=MAX_BODY_BYTES) | st.lists(
    st.sampled_from([0x7E, 0x7D, 0x01, 0x02, 0x00]), max_size=MAX_BODY_BYTES
).map(bytes)


@given(headers(), bodies)
def test_any_frame_round_trips_and_only_its_flags_are_7e(header: Header, body: bytes) -> None:
    frame = pack_frame(encode_header(header, len(body)) + body)
    assert frame[0] == frame[-1] == 0x7E and 0x7E not in frame[1:-1]
    assert len(frame) <= MAX_FRAME_BYTES + 2
    content = check_checksum(unescape(frame[1:-1]))
    assert decode_header(content) == (header, body)


microdegrees = st.integers(0, 180_000_000).map(lambda n: n / 1_000_000)


@st.composite
def reports(draw: st.DrawFn) -> LocationReport:
    return LocationReport(
        alarm=draw(st.integers(0, 0xFFFFFFFF)),
        status=draw(st.integers(0, 0xFFFFFFFF)) & ~0b1100,
        lon=draw(microdegrees) * draw(st.sampled_from([1, -1])),
        lat=draw(microdegrees.filter(lambda d: d <= 90)) * draw(st.sampled_from([1, -1])),
        altitude_m=draw(st.integers(-32768, 32767)),
        speed_kmh=draw(st.integers(0, 0xFFFF)) / 10,
        course_deg=draw(st.integers(0, 359)),
        local_time=draw(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31))).replace(
            microsecond=0
        ),
        extras=tuple(
            draw(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20)), max_size=5))
        ),
    )


def _sign_bits(report: LocationReport) -> LocationReport:
    """The report as decoded: its sign bits follow its coordinates' signs."""
    status = report.status
    status |= 0b100 if math.copysign(1, report.lat) < 0 else 0
    status |= 0b1000 if math.copysign(1, report.lon) < 0 else 0
    return LocationReport(
        report.alarm, status, report.lon, report.lat, report.altitude_m, report.speed_kmh,
        report.course_deg, report.local_time, report.extras,
    )  # fmt: skip


@given(reports(), st.none() | st.integers(0, 255))
def test_any_location_report_round_trips(report: LocationReport, version: int | None) -> None:
    phone = "9" * (20 if version is not None else 12)
    decoded = only(encode_message(report, phone=phone, serial=1, protocol_version=version))
    assert isinstance(decoded, Decoded), decoded
    assert decoded.message == _sign_bits(report)


@given(st.lists(reports(), min_size=0, max_size=12), st.booleans())
def test_any_batch_round_trips(items: list[LocationReport], backfill: bool) -> None:
    batch = LocationBatch(backfill, tuple(items))
    try:
        frame = encode_message(batch, phone="013800138000", serial=2)
    except ValueError:
        return  # more than one frame's 1,023 bytes
    decoded = only(frame)
    assert isinstance(decoded, Decoded)
    assert decoded.message == LocationBatch(backfill, tuple(_sign_bits(r) for r in items))


def _stream(draw: st.DrawFn) -> bytes:
    frames = draw(
        st.lists(
            st.one_of(
                reports().map(lambda r: encode_message(r, phone="013800138000", serial=3)),
                st.just(GOOD),
                st.just(bytes.fromhex(C)),
                st.binary(max_size=40),  # junk between frames
            ),
            max_size=12,
        )
    )
    return b"".join(frames)


@given(st.data())
def test_any_chunking_yields_the_same_messages(data: st.DataObject) -> None:
    stream = _stream(data.draw)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    whole = decode_all(stream)
    decoder = StreamDecoder()
    chunked = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        chunked += decoder.feed(stream[start:end])
    chunked += decoder.close()
    assert chunked == whole


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=3000), max_size=8))
def test_random_bytes_never_raise_out_of_the_decoder(chunks: list[bytes]) -> None:
    decoder = StreamDecoder()
    out = [item for chunk in chunks for item in decoder.feed(chunk)] + decoder.close()
    assert all(isinstance(item, Decoded | Malformed) for item in out)
    assert len(decoder._frame) <= MAX_FRAME_BYTES


@given(st.data())
def test_corrupted_valid_frames_never_raise(data: st.DataObject) -> None:
    stream = bytearray(_stream(data.draw) or GOOD)
    for _ in range(data.draw(st.integers(1, 8))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    out = decode_all(bytes(stream))
    assert all(isinstance(item, Decoded | Malformed) for item in out)
    assert all(isinstance(item.reason, Reason) for item in out if isinstance(item, Malformed))


# --- on our wire ----------------------------------------------------------------------


def test_a_report_becomes_the_location_an_owntracks_terminal_would_send() -> None:
    decoded = only(bytes.fromhex(C))
    assert isinstance(decoded, Decoded) and isinstance(decoded.message, LocationReport)
    location = wire_location(decoded.message, Terminal("019172511329", crs=Datum.GCJ02))
    assert location == Location(
        lat=22.601586,
        lon=113.86072,
        tst=1715570418,
        alt=55.0,
        vel=0.0,
        cog=132.0,
        crs="gcj02",
        sat=29,
        fix=1,
    )
    wgs84 = wire_location(decoded.message, Terminal("019172511329", utc_offset_s=0))
    assert wgs84.crs is None and wgs84.tst == 1715570418 + 8 * 3600


def test_an_emergency_report_is_an_sos_placed_only_with_a_fix() -> None:
    decoded = only(bytes.fromhex(A))
    assert isinstance(decoded, Decoded) and isinstance(decoded.message, LocationReport)
    sos = wire_sos(decoded.message, Terminal("094027587492"))
    assert (sos.alarm, sos.lat, sos.lon, sos.tst) == ("sos", 50.871735, -1.255923, 1365756592)
    unfixed = replace(decoded.message, status=0)
    assert wire_location(unfixed, Terminal("094027587492")).fix == 0
    unplaced = wire_sos(unfixed, Terminal("094027587492"))
    assert (unplaced.lat, unplaced.lon, unplaced.crs) == (None, None, None)


def test_a_terminal_record_round_trips_and_checks_its_code() -> None:
    terminal = Terminal("013800138000", crs=Datum.GCJ02, utc_offset_s=0).registered(
        "c0de", at=1.0, model="BC-100", plate="浙G12345"
    )
    assert Terminal.from_json(terminal.phone, terminal.to_json()) == terminal
    assert terminal.accepts("c0de") and not terminal.accepts("c0dE")
    assert not Terminal("013800138000").accepts("")


def test_an_urgent_text_is_flagged_per_version_and_fits_one_frame() -> None:
    assert urgent_text("出发", is_2019=False).flags == 0x0D
    assert urgent_text("出发", is_2019=True).flags == 0x0E
    long = urgent_text("占" * 600 + "😀", is_2019=False)
    assert len(long.text.encode("gbk")) == 1022 and set(long.text) == {"占"}
    for version in (None, 1):
        frame = encode_message(
            urgent_text("事件" * 400, is_2019=version is not None),
            phone="1" * (20 if version else 12),
            serial=1,
            protocol_version=version,
        )
        assert isinstance(only(frame), Decoded)
    assert urgent_text("火警😀", is_2019=False).text == "火警?"
