"""Telemetry parsers: the published MISB ST 0601 vectors, every DJI SRT layout in the shared
samples (and the broken ones rejected with the place), GPMF structures and ISO 6709."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime

import pytest

from devices.telemetry.gpmf import entries, gps_points
from devices.telemetry.iso6709 import parse_iso6709
from devices.telemetry.klv import UAS_LOCAL_SET, decode_item, parse_packet
from devices.telemetry.points import TelemetryError
from devices.telemetry.srt import parse_srt, utc_times


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("02 08 00 04 59 F4 A6 AA 4A A8", datetime(2008, 10, 24, 0, 13, 29, 913000, UTC)),
        ("02 08 00 04 60 50 58 4E 01 80", datetime(2009, 1, 12, 22, 8, 22, tzinfo=UTC)),
        ("05 02 71 C2", 159.97436484321355),
        ("06 02 FD 3D", -0.4315317239905987),
        ("0D 04 55 95 B6 6D", 60.176822966978335),
        ("0E 04 5B 53 60 C4", 128.42675904204452),
    ],
)
def test_misb_0601_published_vectors(item: str, expected: object) -> None:
    raw = bytes.fromhex(item)
    _name, value = decode_item(raw[0], raw[2 : 2 + raw[1]])
    assert value == (pytest.approx(expected, abs=1e-9) if isinstance(expected, float) else expected)


def test_misb_packets_from_the_shared_samples(shared_data) -> None:
    folder = shared_data / "video-telemetry" / "klv"
    full = parse_packet((folder / "DynamicConstantMISMMSPacketData.bin").read_bytes())
    # This sample was put together without recomputing its checksum (stored 0xAA43, the
    # bytes sum to 0x3E1E): the values decode, the packet is flagged.
    assert full.checksum_ok is False
    assert full.values["mission_id"] == "Mission 12"
    assert full.values["timestamp"] == datetime(2009, 1, 12, 22, 8, 22, tzinfo=UTC)
    assert full.values["sensor_lat"] == pytest.approx(60.176822966978335)
    assert full.values["sensor_lon"] == pytest.approx(128.42675904204452)
    dynamic = (folder / "DynamicOnlyMISMMSPacketData.bin").read_bytes()
    assert parse_packet(dynamic).checksum_ok is True
    tampered = bytearray(dynamic)
    tampered[30] ^= 0x01
    assert parse_packet(bytes(tampered)).checksum_ok is False
    with pytest.raises(TelemetryError, match="not a MISB ST 0601 packet"):
        parse_packet(b"\x00" * 20)
    with pytest.raises(TelemetryError, match="declares"):
        parse_packet(UAS_LOCAL_SET + b"\x20\x02\x08")


# file: (cues, first (lat, lon, alt), satellites, local time of the first cue)
SRT_EXPECTED = {
    "air2s.srt": (None, (41.424724, 2.234156, 117.0), None, "2022-08-07 13:40:40,774"),
    "mavic_air2.srt": (None, (41.420684, 2.162162, 27.3), None, "2022-05-01 15:01:58,531"),
    "matrice_300.srt": (None, (36.6146, -6.1120, 0.0), None, "2022.06.21 16:06:17"),
    # `GPS(lon, lat, 16) BAROMETER:1.9`: 16 satellites, 1.9 m up.
    "mavic_pro.SRT": (None, (-20.2533, 149.0251, 1.9), 16, "2017.08.05 14:11:51"),
    "old_format.SRT": (None, (-20.2533, 149.0251, 1.9), 16, "2017.8.5 14:11:51"),
    "mavic_mini.SRT": (None, (48.0771, -121.7458, 200.70), 17, None),
    "p4p_sample.SRT": (5, (47.4692, 8.2090, 45.60), 18, None),
}


def cue(number: int, body: str) -> str:
    return f"{number}\n00:00:{number - 1:02d},000 --> 00:00:{number:02d},000\n{body}\n\n"


@pytest.mark.parametrize("name", sorted(SRT_EXPECTED))
def test_every_dji_srt_layout(shared_data, name: str) -> None:
    text = (shared_data / "video-telemetry" / "dji_srt" / name).read_text(encoding="utf-8")
    track = parse_srt(text, name)
    cues, (lat, lon, alt), satellites, local = SRT_EXPECTED[name]
    assert len(track.points) == (cues or text.count("-->"))
    assert track.bad == []
    first = track.points[0]
    assert (first.point.lat, first.point.lon, first.point.alt_m) == pytest.approx((lat, lon, alt))
    assert first.satellites == satellites
    assert first.local_time == local
    offsets = [p.point.offset_s for p in track.points]
    assert offsets == sorted(offsets)


def test_broken_srt_files_are_rejected_with_the_place(shared_data) -> None:
    folder = shared_data / "video-telemetry" / "dji_srt"
    with pytest.raises(TelemetryError, match="is empty"):
        parse_srt((folder / "broken_empty.SRT").read_text(), "broken_empty.SRT")
    truncated = (folder / "broken_incomplete.SRT").read_text()
    where = r"cue 20 \(line \d+\) has no position, the file ends inside it"
    with pytest.raises(TelemetryError, match=where):
        parse_srt(truncated, "broken_incomplete.SRT", strict=True)
    track = parse_srt(truncated, "broken_incomplete.SRT")
    assert [p.cue for p in track.points] == list(range(1, 20))
    assert len(track.bad) == 1 and re.search(where, track.bad[0])


def test_srt_bracketed_layouts_with_spaces_before_the_colons() -> None:
    text = cue(
        1,
        '<font size="28">FrameCnt: 1, DiffTime: 33ms\n2017.08.05 14:11:51,452,120\n'
        "[iso : 110] [focal_len : 240] [latitude : 22.543096] [longtitude : 114.057865] "
        "[altitude : 30.5] </font>",
    ) + cue(2, "[latitude: 30.25] [longtitude: 120.16] [rel_alt: 5.2 abs_alt: 30.1]")
    first, second = parse_srt(text).points
    assert (first.point.lat, first.point.lon, first.point.alt_m) == (22.543096, 114.057865, 30.5)
    assert first.local_time == "2017.08.05 14:11:51,452"
    assert (second.point.lat, second.point.lon, second.point.alt_m) == (30.25, 120.16, 5.2)


def test_srt_third_gps_value_is_satellites_only_beside_a_height_of_its_own() -> None:
    with_height = parse_srt(cue(1, "GPS(114.0578,22.5430,9) BAROMETER:31.4")).points[0]
    assert (with_height.point.alt_m, with_height.satellites) == (31.4, 9)
    one_line = parse_srt(cue(1, "F/2.8, GPS (114.0578, 22.5430, 12), D 10.0m, H 88.20m")).points[0]
    assert (one_line.point.alt_m, one_line.satellites) == (88.2, 12)
    # No height beside it, or a decimal: the third value is the height.
    assert parse_srt(cue(1, "GPS(114.0578,22.5430,16)")).points[0].point.alt_m == 16.0
    decimal = parse_srt(cue(1, "GPS(114.0578,22.5430,16.5) BAROMETER:2.0")).points[0]
    assert (decimal.point.alt_m, decimal.satellites) == (16.5, None)


def test_srt_with_n_a_cues_keeps_the_good_ones_and_names_the_bad() -> None:
    good = "HOME(114.05,22.54) 2021.03.04 09:00:0{}\nGPS(114.0578,22.543{},10) BAROMETER:5.0"
    text = (
        cue(1, good.format(1, 1))
        + cue(2, "HOME(114.05,22.54) 2021.03.04 09:00:02\nGPS(N/A,N/A,0) BAROMETER:N/A")
        + cue(3, "[latitude: N/A] [longitude: N/A]")
        + cue(4, good.format(4, 4))
    )
    track = parse_srt(text, "flight.SRT")
    assert [p.cue for p in track.points] == [1, 4]
    assert track.bad == [
        "flight.SRT: cue 2 (line 7) says N/A where its position should be",
        "flight.SRT: cue 3 (line 12) says N/A where its position should be",
    ]
    with pytest.raises(TelemetryError, match=r"cue 2 \(line 7\) says N/A"):
        parse_srt(text, "flight.SRT", strict=True)
    with pytest.raises(TelemetryError, match="none of its 2 cues has a position"):
        parse_srt(cue(1, "GPS(N/A,N/A,0)") + cue(2, "GPS(1.0, 95.0, 3)"), "flight.SRT")


def test_srt_local_times_become_utc_only_in_a_named_zone() -> None:
    track = parse_srt(cue(1, "2021.03.04 09:00:01,250\nGPS(114.0578,22.5430,10) BAROMETER:5.0"))
    (point,) = utc_times(track, "Asia/Shanghai")
    assert point.at == 1614819601.25  # 2021-03-04 01:00:01.25 UTC
    with pytest.raises(TelemetryError, match="not a time zone"):
        utc_times(track, "Mars/Olympus")
    with pytest.raises(TelemetryError, match="no date and time"):
        utc_times(parse_srt(cue(1, "GPS(114.0578,22.5430,10)")), "Asia/Shanghai")


def gpmf(key: str, kind: str, size: int, values: bytes, repeat: int) -> bytes:
    body = values + b"\0" * (-len(values) % 4)
    return key.encode() + kind.encode() + bytes([size]) + struct.pack(">H", repeat) + body


def test_gpmf_gps5_and_gps9_with_scaling_and_times() -> None:
    gps5 = struct.pack(
        ">10i", 331266674, -1173273436, -23637, 100, 120, 331266700, -1173273400, -23600, 90, 100
    )
    scal = struct.pack(">5i", 10_000_000, 10_000_000, 1000, 1000, 100)
    stream = (
        gpmf("SCAL", "l", 4, scal, 5)
        + gpmf("GPSU", "U", 16, b"191118173834.000", 1)
        + gpmf("GPS5", "l", 20, gps5, 2)
    )
    packet = gpmf("DEVC", "\0", 1, gpmf("STRM", "\0", 1, stream, len(stream)), len(stream) + 8)
    assert [e.key for e in entries(packet)] == ["SCAL", "GPSU", "GPS5"]
    first, second = gps_points([(2.0, 1.0, packet)])
    assert (first.lat, first.lon, first.alt_m) == pytest.approx((33.1266674, -117.3273436, -23.637))
    assert first.at == datetime(2019, 11, 18, 17, 38, 34, tzinfo=UTC).timestamp()
    assert (second.offset_s, second.at - first.at) == (2.5, 0.5)
    layout = "lllllllSS"
    sample = struct.pack(">7i2H", 301234567, 1201234567, 12345, 0, 0, 9000, 3600_000, 150, 3)
    scal9 = struct.pack(">9i", 10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)
    stream9 = (
        gpmf("SCAL", "l", 4, scal9, 9)
        + gpmf("TYPE", "c", 1, layout.encode(), 9)
        + gpmf("GPS9", "?", 32, sample, 1)
    )
    (point,) = gps_points([(0.0, 1.0, stream9)])
    assert (point.lat, point.lon) == pytest.approx((30.1234567, 120.1234567))
    assert (
        point.at == datetime(2024, 8, 22, 1, 0, tzinfo=UTC).timestamp()
    )  # day 9000 since 2000, 01:00
    with pytest.raises(TelemetryError, match="runs past the packet end"):
        list(entries(gpmf("GPS5", "l", 20, gps5, 2)[:-4]))


def test_iso6709_locations() -> None:
    assert parse_iso6709("+33.1268-117.3273/") == (33.1268, -117.3273, None)
    assert parse_iso6709("+47.5577+008.4697+482.123/") == (47.5577, 8.4697, 482.123)
    assert parse_iso6709("-33.71000+150.31000+100.000/") == (-33.71, 150.31, 100.0)
    with pytest.raises(TelemetryError):
        parse_iso6709("Carlsbad, CA")
