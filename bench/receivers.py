"""MQTT receive paths side by side, each draining the same queue under the ingest's contract.

Every candidate has a persistent session in the ingest's shared group, QoS 1, and
acknowledges each message only after handing it on (here: after counting it). A candidate
first subscribes and leaves, the bench publishes N messages the broker queues for it, then it
reconnects and drains the queue while timed; the publisher's CPU stays out of the figure.
Afterwards its session is discarded, so the next candidate has the group to itself.

libmosquitto acknowledges in the library before the application sees a message, so it cannot
hold the contract; it runs as the reference for what a C client costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable

import gmqtt
import paho.mqtt.client as mqtt
import uvloop
from gmqtt.mqtt.constants import MQTTv50
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import mqttwire
from devices.broker import BrokerLogin
from devices.subscriber import Subscriber

DRAIN_TIMEOUT_S = 600.0
_SESSION_EXPIRY_S = 3600

Publish = Callable[[], None]


def drain_paho(login: BrokerLogin, filters: list[str], count: int, publish: Publish) -> float:
    """paho-mqtt 2 with manual acknowledgements, as the ingest used it."""

    def session() -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="bench-paho",
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        login.apply(client)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        client.connect(login.host, login.port, clean_start=False, properties=props)
        return client

    client = session()
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.subscribe([(f, 1) for f in filters])
    while not subscribed.is_set():
        client.loop(0.1)
    client.disconnect()
    publish()
    received = 0

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        c.ack(msg.mid, msg.qos)

    client = session()
    client.on_message = on_message
    started = time.perf_counter()
    deadline = started + DRAIN_TIMEOUT_S
    while received < count and time.perf_counter() < deadline:
        client.loop(0.1)
    rate = received / (time.perf_counter() - started)
    client.disconnect()
    forget_session(login, "bench-paho")
    return rate


def drain_wire(login: BrokerLogin, filters: list[str], count: int, publish: Publish) -> float:
    """Our subscriber: one socket read decodes every packet in it, one write acknowledges."""
    subscriptions = [(f, 1) for f in filters]
    subscriber = Subscriber(login, "bench-wire", session_expiry_s=_SESSION_EXPIRY_S)
    subscribed = threading.Event()
    subscriber.connect(subscriptions, lambda suback: subscribed.set())
    while not subscribed.is_set():
        subscriber.read(0.1)
    subscriber.close()
    publish()
    received = 0
    subscriber.connect(subscriptions, lambda suback: None)
    started = time.perf_counter()
    deadline = started + DRAIN_TIMEOUT_S
    while received < count and time.perf_counter() < deadline:
        publishes = subscriber.read(0.1)
        received += len(publishes)
        subscriber.acknowledge([p.packet_id for p in publishes if p.qos])
    rate = received / (time.perf_counter() - started)
    subscriber.close()
    forget_session(login, "bench-wire")
    return rate


def drain_gmqtt(login: BrokerLogin, filters: list[str], count: int, publish: Publish) -> float:
    """gmqtt on uvloop, acknowledging after each handler returns."""
    received = 0
    done = asyncio.Event()

    def on_message(client: object, topic: str, payload: bytes, qos: int, props: object) -> int:
        nonlocal received
        received += 1
        if received >= count:
            done.set()
        return 0

    def client() -> gmqtt.Client:
        c = gmqtt.Client(
            "bench-gmqtt",
            clean_session=False,
            optimistic_acknowledgement=False,
            session_expiry_interval=_SESSION_EXPIRY_S,
        )
        if login.username:
            c.set_auth_credentials(login.username, login.password)
        c.on_message = on_message
        return c

    async def subscribe() -> None:
        c = client()
        await c.connect(login.host, login.port, version=MQTTv50)
        for f in filters:
            c.subscribe(f, qos=1)
        await asyncio.sleep(0.5)
        await c.disconnect()

    async def drain() -> float:
        c = client()
        started = time.perf_counter()
        await c.connect(login.host, login.port, version=MQTTv50)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), DRAIN_TIMEOUT_S)
        rate = received / (time.perf_counter() - started)
        await c.disconnect()
        return rate

    uvloop.run(subscribe())
    publish()
    done = asyncio.Event()
    rate = uvloop.run(drain())
    forget_session(login, "bench-gmqtt")
    return rate


def drain_libmosquitto(
    login: BrokerLogin, filters: list[str], count: int, publish: Publish
) -> float:
    """libmosquitto through pymosquitto (ctypes), MQTT 3.1.1 with a persistent session."""
    # Imported here: it loads libmosquitto1 (a Debian package) as it is imported, and a
    # machine without it still measures the other candidates.
    from pymosquitto import Mosquitto  # noqa: PLC0415

    received = 0

    def on_message(client: object, userdata: object, msg: object) -> None:
        nonlocal received
        received += 1

    def client() -> Mosquitto:
        c = Mosquitto("bench-libmosquitto", clean_start=False)
        if login.username:
            c.username_pw_set(login.username, login.password)
        c.on_message = on_message
        c.connect(login.host, login.port)
        return c

    c = client()
    for f in filters:
        c.subscribe(f, 1)
    for _ in range(20):
        c.loop(50, 1)
    c.disconnect()
    publish()
    c = client()
    started = time.perf_counter()
    deadline = started + DRAIN_TIMEOUT_S
    while received < count and time.perf_counter() < deadline:
        c.loop(100, 1)
    rate = received / (time.perf_counter() - started)
    c.disconnect()
    forget_session(login, "bench-libmosquitto", mqttwire.MQTT_311)
    return rate


def forget_session(login: BrokerLogin, client_id: str, protocol: int = mqttwire.MQTT_5) -> None:
    """Make the broker discard a client's session and its subscriptions: a clean-start
    connect that asks for no expiry, then a goodbye."""
    with socket.create_connection((login.host, login.port), timeout=10) as sock:
        sock.sendall(
            mqttwire.encode_connect(
                client_id,
                protocol=protocol,
                clean_start=True,
                username=login.username,
                password=login.password if login.username else None,
            )
        )
        sock.recv(64)  # CONNACK
        sock.sendall(mqttwire.encode_disconnect())


CANDIDATES: dict[str, Callable[[BrokerLogin, list[str], int, Publish], float]] = {
    "paho": drain_paho,
    "gmqtt": drain_gmqtt,
    "libmosquitto": drain_libmosquitto,
    "wire": drain_wire,
}
