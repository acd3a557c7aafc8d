"""The subscriber's MQTT codec: paho's encoder is the reference for PUBLISH, hand-built bytes
for the broker's answers, and no byte stream makes it raise anything but ProtocolError."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices import mqttwire
from devices.mqttwire import (
    ConnAck,
    Decoder,
    Disconnect,
    PingResp,
    ProtocolError,
    Publish,
    SubAck,
    UnsubAck,
)

topics = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"),
    min_size=1,
    max_size=80,
)
payloads = st.binary(max_size=3000)


class PahoPublisher:
    """A real paho client connected to a socket this test reads: what paho writes for a
    PUBLISH is the reference the decoder must read back (client and broker PUBLISH share
    one layout)."""

    def __init__(self, protocol: int) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="ref", protocol=protocol
        )
        self.client.connect("127.0.0.1", listener.getsockname()[1])
        self.peer, _ = listener.accept()
        listener.close()
        self.read_packet()  # CONNECT
        self.peer.sendall(
            b"\x20\x03\x00\x00\x00" if protocol == mqtt.MQTTv5 else b"\x20\x02\x00\x00"
        )
        while not self.client.is_connected():
            self.client.loop(0.1)

    def read_packet(self) -> bytes:
        """One whole packet from the socket, by its remaining length."""
        first = self._exactly(1)
        length_bytes = b""
        while True:
            byte = self._exactly(1)
            length_bytes += byte
            if byte[0] < 0x80:
                break
        length = sum((b & 0x7F) << (7 * n) for n, b in enumerate(length_bytes))
        return first + length_bytes + self._exactly(length)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            self.client.loop_write()
            chunk = self.peer.recv(size - len(data))
            assert chunk, "paho closed the connection"
            data += chunk
        return data

    def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool, props: Properties | None
    ) -> tuple[bytes, int]:
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        packet = self.read_packet()
        if qos:
            # Acknowledged as a broker would, or paho stops sending at its in-flight limit.
            self.peer.sendall(mqttwire.encode_pubacks([info.mid]))
            self.client.loop(0.01)
        return packet, info.mid

    def close(self) -> None:
        self.client.disconnect()
        self.peer.close()


@pytest.fixture(scope="module", params=[mqtt.MQTTv311, mqtt.MQTTv5], ids=["3.1.1", "5"])
def paho(request: pytest.FixtureRequest) -> Iterator[tuple[PahoPublisher, int]]:
    publisher = PahoPublisher(request.param)
    yield publisher, mqttwire.MQTT_5 if request.param == mqtt.MQTTv5 else mqttwire.MQTT_311
    publisher.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    topic=topics,
    payload=payloads,
    qos=st.sampled_from([0, 1]),
    retain=st.booleans(),
    expiry=st.none() | st.integers(1, 2**32 - 1),
    user=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=3),
    content_type=st.none() | st.text(max_size=30),
)
def test_decodes_what_paho_encodes(paho, topic, payload, qos, retain, expiry, user, content_type):
    publisher, protocol = paho
    props = None
    if protocol == mqttwire.MQTT_5 and (expiry or user or content_type is not None):
        props = Properties(PacketTypes.PUBLISH)
        if expiry:
            props.MessageExpiryInterval = expiry
        if user:
            props.UserProperty = user
        if content_type is not None:
            props.ContentType = content_type
    packet, mid = publisher.publish(topic, payload, qos, retain, props)
    assert Decoder(protocol).feed(packet) == [
        Publish(topic, payload, qos, mid if qos else 0, False, retain)
    ]


def _publish_packet(topic: str, payload: bytes, packet_id: int, protocol: int) -> bytes:
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode() + packet_id.to_bytes(2, "big")
    if protocol == mqttwire.MQTT_5:
        body += b"\x00"
    return b"\x32" + mqttwire.encode_varint(len(body) + len(payload)) + body + payload


@given(
    messages=st.lists(st.tuples(topics, payloads, st.integers(1, 0xFFFF)), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 100_000), max_size=40),
    protocol=st.sampled_from([mqttwire.MQTT_311, mqttwire.MQTT_5]),
)
def test_any_chunking_of_a_stream_yields_the_same_packets(messages, cuts, protocol):
    stream = b"".join(_publish_packet(t, p, n, protocol) for t, p, n in messages)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = Decoder(protocol)
    decoded = []
    for start, stop in itertools.pairwise(bounds):
        decoded += decoder.feed(stream[start:stop])
    assert decoded == [Publish(t, p, 1, n, False, False) for t, p, n in messages]
    assert decoder.buffered == 0


@given(data=st.binary(max_size=600), protocol=st.sampled_from([mqttwire.MQTT_311, mqttwire.MQTT_5]))
def test_random_bytes_raise_nothing_but_a_protocol_error(data, protocol):
    decoder = Decoder(protocol, max_packet_bytes=4096)
    try:
        for packet in decoder.feed(data):
            assert isinstance(packet, Publish | ConnAck | SubAck | UnsubAck | PingResp | Disconnect)
    except ProtocolError as exc:
        assert str(exc)


def test_the_brokers_answers_decode() -> None:
    v5, v311 = Decoder(mqttwire.MQTT_5), Decoder(mqttwire.MQTT_311)
    assert v311.feed(b"\x20\x02\x01\x00") == [ConnAck(session_present=True, reason_code=0)]
    assert v5.feed(b"\x20\x03\x00\x87\x00") == [ConnAck(session_present=False, reason_code=0x87)]
    # MQTT 5 SUBACK with a reason string property, then granted QoS 1 and a refusal.
    reason = b"\x1f\x00\x02ok"
    assert v5.feed(
        b"\x90"
        + bytes([2 + 1 + len(reason) + 2])
        + b"\x00\x07"
        + bytes([len(reason)])
        + reason
        + b"\x01\x87"
    ) == [SubAck(7, (1, 0x87))]
    assert v311.feed(b"\x90\x04\x00\x09\x01\x80") == [SubAck(9, (1, 0x80))]
    assert v5.feed(b"\xd0\x00\xe0\x01\x8b") == [PingResp(), Disconnect(0x8B)]
    assert v5.feed(b"\xe0\x01\x8e") == [Disconnect(mqttwire.SESSION_TAKEN_OVER)]
    # MQTT 5 UNSUBACK with a reason string, then success and "no subscription existed".
    assert v5.feed(
        b"\xb0" + bytes([2 + 1 + len(reason) + 2]) + b"\x00\x0b" + bytes([len(reason)]) + reason
        + b"\x00\x11"
    ) == [UnsubAck(11, (0x00, 0x11))]  # fmt: skip
    assert v311.feed(b"\xb0\x02\x00\x0c") == [UnsubAck(12, ())]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (b"\x30\x80\x80\x80\x01", "exceeds"),
        (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
        (b"\x32\x05\x00\x01a\x00\x00", "packet identifier 0"),
        (b"\x30\x03\x00\x09a", "topic runs past"),
        (b"\x30\x02\x00\x00", "without a topic"),
        (b"\x62\x02\x00\x01", "PUBREL"),
        (b"\xe0\x00", "DISCONNECT"),  # 3.1.1 brokers never send one
        (b"\x20\x01\x00", "CONNACK shorter"),
        (b"\xb0\x01\x00", "UNSUBACK without a packet identifier"),
    ],
)
def test_broken_packets_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        Decoder(mqttwire.MQTT_311).feed(data)


def test_an_invalid_utf8_topic_is_kept_readable_for_the_topic_parser() -> None:
    [publish] = Decoder(mqttwire.MQTT_311).feed(b"\x30\x05\x00\x02\xff\xfe{")
    assert publish.topic == "\ufffd\ufffd" and publish.payload == b"{"


def test_connect_subscribe_and_acks_have_the_standard_bytes() -> None:
    assert (
        mqttwire.encode_connect(
            "c1", protocol=mqttwire.MQTT_311, keepalive_s=30, username="u", password="p"
        )
        == b"\x10\x14\x00\x04MQTT\x04\xc0\x00\x1e\x00\x02c1\x00\x01u\x00\x01p"
    )
    assert (
        mqttwire.encode_connect("c", keepalive_s=60, session_expiry_s=3600, clean_start=True)
        == b"\x10\x13\x00\x04MQTT\x05\x02\x00\x3c\x05\x11\x00\x00\x0e\x10\x00\x01c"
    )
    assert mqttwire.encode_subscribe(3, [("a/#", 1)], protocol=mqttwire.MQTT_5) == (
        b"\x82\x09\x00\x03\x00\x00\x03a/#\x01"
    )
    assert mqttwire.encode_unsubscribe(4, ["a/#"], protocol=mqttwire.MQTT_311) == (
        b"\xa2\x07\x00\x04\x00\x03a/#"
    )
    assert mqttwire.encode_unsubscribe(4, ["a/#"]) == b"\xa2\x08\x00\x04\x00\x00\x03a/#"
    assert mqttwire.encode_disconnect() == b"\xe0\x00"
    assert mqttwire.encode_disconnect(session_expiry_s=0) == b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"
    with pytest.raises(ValueError, match="at least one topic filter"):
        mqttwire.encode_unsubscribe(1, [])
    assert mqttwire.encode_pubacks([1, 0x1234]) == b"\x40\x02\x00\x01\x40\x02\x12\x34"
    assert mqttwire.encode_varint(321) == b"\xc1\x02"
    with pytest.raises(ValueError, match="password needs a username"):
        mqttwire.encode_connect("c", password="p")


def test_a_packet_split_inside_its_length_waits_for_the_rest() -> None:
    decoder = Decoder(mqttwire.MQTT_311)
    packet = _publish_packet("t", b"x" * 200, 5, mqttwire.MQTT_311)
    assert decoder.feed(packet[:2]) == []
    assert decoder.buffered == 2
    assert decoder.feed(packet[2:]) == [Publish("t", b"x" * 200, 1, 5, False, False)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filters=st.lists(topics, min_size=1, max_size=4))
def test_unsubscribe_is_what_paho_sends(paho, filters) -> None:
    publisher, protocol = paho
    _, mid = publisher.client.unsubscribe(filters)
    assert publisher.read_packet() == mqttwire.encode_unsubscribe(mid, filters, protocol=protocol)


def test_a_disconnect_that_ends_the_session_is_what_paho_sends() -> None:
    publisher = PahoPublisher(mqtt.MQTTv5)
    try:
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        publisher.client.disconnect(
            reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=0), properties=props
        )
        assert publisher.read_packet() == mqttwire.encode_disconnect(session_expiry_s=0)
    finally:
        publisher.peer.close()
