"""Topics and payload decoding: every real client's message decodes, junk says why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import messages
from devices.topics import Channel, TopicError, device_topic, parse_topic, uplink_filters
from tests.owntracks_fixtures import ACCEPTED, REJECTED, TRANSITION


def test_topic_round_trip_for_every_channel() -> None:
    for channel in Channel:
        topic = device_topic("owntracks", "zhang3", "BC-0042", channel)
        parsed = parse_topic("owntracks", topic)
        assert (parsed.user, parsed.device, parsed.channel) == ("zhang3", "BC-0042", channel)


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


def test_one_shared_filter_per_uplink_and_never_the_downlinks() -> None:
    filters = uplink_filters("owntracks")
    assert "$share/ingest/owntracks/+/+" in filters
    assert "$share/ingest/owntracks/+/+/ack" in filters
    assert not any(f.endswith(("/cmd", "/dispatch", "+/+/+")) for f in filters)
    assert len(filters) == len(set(filters)) == 7


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
