"""Topics and payload decoding: every real client's message decodes, junk says why."""

from __future__ import annotations

import contextlib
import re
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import messages
from devices.quality import Reason
from devices.topics import (
    SENSOR_LEVEL,
    SENSOR_UPLINK,
    UPLINK,
    Channel,
    TopicError,
    device_topic,
    parse_topic,
    sensor_topic,
    uplink_filters,
)
from tests.owntracks_fixtures import ACCEPTED, REJECTED, TRANSITION


def test_topic_round_trip_for_every_channel() -> None:
    for channel in Channel:
        # An officer's device and a sensor each have channels of their own.
        user = SENSOR_LEVEL if channel in SENSOR_UPLINK and channel not in UPLINK else "zhang3"
        topic = device_topic("owntracks", user, "BC-0042", channel)
        parsed = parse_topic("owntracks", topic)
        assert (parsed.user, parsed.device, parsed.channel) == (user, "BC-0042", channel)
    for channel in SENSOR_UPLINK:
        assert parse_topic("owntracks", sensor_topic("owntracks", "SM-1", channel)).sensor


@pytest.mark.parametrize(
    "topic",
    [
        "other/a/b",
        "owntracks/a",
        "owntracks/a/b/c/d",
        "owntracks//b",
        "owntracks/a/b/nope",
        "owntracks/+/b",
    ],
)
def test_foreign_topics_are_refused_with_a_reason(topic: str) -> None:
    with pytest.raises(TopicError, match="topic"):
        parse_topic("owntracks", topic)


@pytest.mark.parametrize(
    ("level", "reason"),
    [
        ("..", "path step"),
        (".", "path step"),
        ("a\x00b", "U+0000"),
        ("a\nb", "U+000A"),
        ("\x7f", "U+007F"),
        ("a\u202eb", "U+202E"),
        ("a\u2028b", "U+2028"),
        ("a\\b", "backslash"),
        ("..\\keys", "backslash"),
        ("   ", "whitespace"),
        ("\t", "whitespace"),
        ("a+b", "wildcard"),
        ("x" * 300, "300 characters"),
        ("", "empty"),
    ],
)
@pytest.mark.parametrize("where", ["user", "device"])
def test_hostile_levels_are_refused_with_the_reason(level: str, reason: str, where: str) -> None:
    topic = f"owntracks/{level}/BC-1" if where == "user" else f"owntracks/zhang3/{level}"
    with pytest.raises(TopicError, match=f"invalid {where} level: .*{re.escape(reason)}"):
        parse_topic("owntracks", topic)


@pytest.mark.parametrize(
    "level", ["张三", "李四-02", "zhang.san", "z@team_7", "...x", "a..b", "Ünal", "Li Si", "x" * 64]
)
def test_names_of_any_script_with_inner_dots_and_signs_are_kept(level: str) -> None:
    parsed = parse_topic("owntracks", f"owntracks/{level}/{level}/sos")
    assert (parsed.user, parsed.device, parsed.channel) == (level, level, Channel.SOS)


def test_the_ingest_hears_the_whole_root_through_its_shared_group() -> None:
    # Unknown channels too: each must reach the ingest to be rejected with a reason.
    assert uplink_filters("owntracks") == ["$share/ingest/owntracks/#"]


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_owntracks_fixtures_decode(name: str) -> None:
    decoded = messages.decode(Channel.LOCATION, ACCEPTED[name])
    assert isinstance(decoded, messages.Location | messages.Lwt)


def test_transition_fixture_decodes() -> None:
    decoded = messages.decode(Channel.EVENT, TRANSITION)
    assert isinstance(decoded, messages.Transition)
    assert (decoded.event, decoded.desc) == ("enter", "blukii")


@pytest.mark.parametrize(("name", "suffix", "payload", "reason"), REJECTED)
def test_negative_fixtures_are_rejected_with_reasons(name, suffix, payload, reason) -> None:
    with pytest.raises(messages.PayloadError) as err:
        messages.decode(Channel(suffix), payload)
    assert err.value.reason == reason
    assert "lat" in str(err.value) or "_type" in str(err.value)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "malformed_json"),
        (b'{"_type":"location","lat":NaN,"lon":1,"tst":1}', "malformed_json"),
        (b'{"_type":"location","lat":1e400,"lon":1,"tst":1}', "bad_field"),
        (b"[1,2]", "bad_field"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":"yesterday"}', "bad_field"),
    ],
)
def test_malformed_payloads_name_the_problem(payload: bytes, reason: str) -> None:
    with pytest.raises(messages.PayloadError) as err:
        messages.decode(Channel.LOCATION, payload)
    assert err.value.reason == reason


def test_downlink_channels_are_not_accepted() -> None:
    with pytest.raises(messages.PayloadError, match="does not accept"):
        messages.decode(Channel.DISPATCH, b"{}")


coords = st.floats(-90, 90, allow_nan=False)


@given(
    lat=coords,
    lon=st.floats(-180, 180, allow_nan=False),
    tst=st.integers(0, 2**40),
    acc=st.none() | st.floats(0, 1e4, allow_nan=False),
    seq=st.none() | st.integers(0, 2**32),
    badge=st.none() | st.text(max_size=12),
)
def test_location_wire_round_trip(lat, lon, tst, acc, seq, badge) -> None:
    original = messages.Location(lat=lat, lon=lon, tst=tst, acc=acc, seq=seq, badge=badge)
    assert messages.decode(Channel.LOCATION, messages.encode(original)) == original


def test_every_uplink_kind_round_trips() -> None:
    samples = {
        Channel.SOS: messages.Sos(tst=1, alarm="fallDown", lat=30.0, lon=120.0),
        Channel.CLIP: messages.Clip(clip_id="c1", start=1, end=2, important=True),
        Channel.HB: messages.DevStat(tst=1, batt=50, rec=True),
        Channel.CONN: messages.Conn(online=False, tst=1),
        Channel.ACK: messages.Ack(order_id="o1", status="accepted", tst=1),
    }
    for channel, message in samples.items():
        assert messages.decode(channel, messages.encode(message)) == message


def test_every_payload_reason_is_a_counted_reason() -> None:
    assert set(typing.get_args(messages.PayloadReason)) <= {r.value for r in Reason}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[" * 17 + b"]" * 17, "too_deep"),
        (b'{"_type":"location","x":' + b"[" * 1000 + b"]" * 1000 + b"}", "too_deep"),
        (b'{"a":' * 17 + b"1" + b"}" * 17, "too_deep"),
        (b"[" * 3000, "too_deep"),  # never closed: still measured, never parsed
        (b" " * (messages.MAX_PAYLOAD_BYTES + 1), "oversize"),
    ],
)
def test_payloads_beyond_the_bounds_are_refused_before_parsing(payload, reason) -> None:
    with pytest.raises(messages.PayloadError) as err:
        messages.check_bounds(payload, messages.MAX_PAYLOAD_BYTES)
    assert err.value.reason == reason


def test_brackets_inside_strings_and_the_limit_itself_pass() -> None:
    messages.check_bounds(b"[" * 16 + b"]" * 16, 100)
    messages.check_bounds(b'{"t":"' + b"[{" * 500 + b'\\"[[["}', 2000)
    location = b'{"_type":"location","lat":29.1,"lon":119.6,"tst":1,"tid":"' + b"[" * 40 + b'"}'
    assert messages.decode(Channel.LOCATION, location).tid == "[" * 40


def test_the_size_bound_is_the_caller_s() -> None:
    with pytest.raises(messages.PayloadError, match="exceeds 10") as err:
        messages.decode(Channel.LOCATION, b'{"_type":"location"}', max_bytes=10)
    assert err.value.reason == "oversize"


@pytest.mark.parametrize(
    "text", ['{"a":NaN}', '{"a":Infinity}', '{"a":-1e999}', '{"a":"\\ud800"', "\ud800"]
)
def test_any_json_is_finite_and_well_formed(text: str) -> None:
    with pytest.raises(messages.PayloadError) as err:
        messages.decode_json(text)
    assert err.value.reason == "malformed_json"


@given(st.binary(max_size=300))
def test_no_bytes_make_decoding_raise_anything_but_a_payload_error(payload: bytes) -> None:
    for channel in UPLINK:
        with contextlib.suppress(messages.PayloadError):
            messages.decode(channel, payload)
