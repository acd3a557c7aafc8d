"""The JT/T 808 gateway against a real Redis, driven by terminals on raw sockets: register,
authenticate, report; each report answered only once Redis holds it; junk from one terminal
costs nobody else anything."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
import pytest

from devices.batch import BatchWriter
from devices.downlink import OrderNotice
from devices.jt808.errors import Reason
from devices.jt808.frame import pack_frame
from devices.jt808.header import Header, encode_header
from devices.jt808.messages import (
    ALARM_EMERGENCY,
    STATUS_LOCATED,
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
)
from devices.jt808.stream import Decoded, StreamDecoder
from devices.jt808.terminals import Terminal
from devices.jt808_gateway import GatewayConfig, Jt808Gateway
from devices.registry import make_binding
from dispatch.core.track import DeviceKey, verify_chain
from dispatch.jt808_delivery import TerminalOrders
from dispatch.store import Store
from gis.coords import Datum, to_wgs84
from harness.daemons import ManagedRedis, free_port
from tests.conftest import ingest_config
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration

JINHUA = (119.65, 29.08)
BEIJING = timedelta(hours=8)
T = TypeVar("T")


@dataclass
class RunningGateway:
    gateway: Jt808Gateway
    loop: asyncio.AbstractEventLoop
    port: int

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)


@pytest.fixture
def gateway(store: Store, prefix: str) -> Iterator[RunningGateway]:
    writer = BatchWriter(store.ingest, ingest_config(prefix))
    gateway = Jt808Gateway(writer, store.terminals, GatewayConfig(root=prefix, batch_wait_s=0.002))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = RunningGateway(gateway, loop, 0)
    server = running.call(gateway.start("127.0.0.1", 0))
    running.port = server.sockets[0].getsockname()[1]
    yield running
    running.call(gateway.stop(server))
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


class TestTerminal:
    """A terminal written from the standard: raw TCP, frames from the codec."""

    __test__ = False

    def __init__(self, port: int, phone: str, version: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.phone, self.version = phone, version
        self.serial = 0
        self.decoder = StreamDecoder()
        self.inbox: list[Decoded] = []

    def send(self, message: Message) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        self.sock.sendall(
            encode_message(
                message, phone=self.phone, serial=self.serial, protocol_version=self.version
            )
        )
        return self.serial

    def receive(self) -> Decoded:
        while not self.inbox:
            data = self.sock.recv(65536)
            assert data, "the gateway closed the connection"
            for item in self.decoder.feed(data):
                assert isinstance(item, Decoded), item
                self.inbox.append(item)
        return self.inbox.pop(0)

    def request(self, message: Message) -> Message:
        serial = self.send(message)
        reply = self.receive().message
        assert getattr(reply, "reply_serial", None) == serial, reply
        return reply

    def result(self, message: Message) -> Result:
        """Send `message` and return the result of the center's general response to it."""
        reply = self.request(message)
        assert isinstance(reply, PlatformResponse), reply
        return reply.result

    def sign_in(self, code: str | None = None) -> str:
        if code is None:
            answer = self.request(Registration(33, 701, "YW", "BC-100", "T1", 1, "浙G12345"))
            assert isinstance(answer, RegistrationResponse)
            assert answer.result is RegistrationResult.SUCCESS
            code = answer.auth_code
        assert self.request(Authentication(code)) == PlatformResponse(
            self.serial, MessageId.AUTHENTICATION, Result.SUCCESS
        )
        return code

    def close(self) -> None:
        self.sock.close()


def report(
    fix_at: float, n: int = 0, alarm: int = 0, lon_lat: tuple[float, float] = JINHUA
) -> LocationReport:
    local = datetime.fromtimestamp(int(fix_at), UTC).replace(tzinfo=None) + BEIJING
    return LocationReport(
        alarm=alarm,
        status=STATUS_LOCATED,
        lon=round(lon_lat[0] + n * 1e-5, 6),
        lat=round(lon_lat[1] + n * 1e-5, 6),
        altitude_m=40,
        speed_kmh=12.5,
        course_deg=45,
        local_time=local,
    )


def bind(store: Store, phone: str, officer: str) -> None:
    store.registry.bind([make_binding(device=phone, officer=officer, team="wucheng")])


def stored_fix_at(store: Store, device: str) -> int | None:
    record = store.tracks.device_record(device)
    return int(record["fix_at"]) if "fix_at" in record else None


def test_a_terminal_registers_authenticates_and_every_report_is_stored_before_its_answer(
    gateway: RunningGateway, store: Store
) -> None:
    phone = "013800138000"
    bind(store, phone, "zhang3")
    terminal = TestTerminal(gateway.port, phone)
    code = terminal.sign_in()
    kept = store.terminals.terminal(phone)
    assert kept is not None and kept.auth_code == code
    assert (kept.model, kept.plate) == ("BC-100", "浙G12345")
    # Registering again (an answer lost) repeats the code; a wrong code is refused.
    again = terminal.request(Registration(33, 701, "YW", "BC-100", "T1", 1, "浙G12345"))
    assert isinstance(again, RegistrationResponse) and again.auth_code == code
    assert terminal.result(Authentication("wrong")) is Result.FAILURE
    terminal.sign_in(code)

    device = DeviceKey(f"zhang3/{phone}")
    start = time.time() - 2000
    for n in range(1000):
        answer = terminal.request(report(start + n, n))
        assert answer == PlatformResponse(terminal.serial, MessageId.LOCATION, Result.SUCCESS)
        # The answer came: Redis must already hold this very report.
        assert stored_fix_at(store, device) == int(start + n)
    # A batch of blind-area reports, answered once all of them are stored.
    batch = LocationBatch(True, tuple(report(start + 1000 + n, 1000 + n) for n in range(12)))
    answer = terminal.request(batch)
    assert answer == PlatformResponse(terminal.serial, MessageId.LOCATION_BATCH, Result.SUCCESS)
    assert stored_fix_at(store, device) == int(start + 1011)
    assert store.ingest.stats()["accepted"] == 1012
    assert terminal.result(Heartbeat()) is Result.SUCCESS
    assert store.ingest.stats()["msg:devstat"] == 1

    # The stored fix is the MQTT path's: chained, converted, the officer's and team's.
    record = store.tracks.device_record(device)
    assert (float(record["lon"]), float(record["lat"])) == pytest.approx(
        (JINHUA[0] + 1011e-5, JINHUA[1] + 1011e-5)
    )
    links = [link for _, link, _ in store.tracks.chain_links(device)]
    assert len(links) == 1012 and verify_chain(device, links) == record["head"]
    first = json.loads(links[0].canonical)
    assert (first["vel_kmh"], first["cog_deg"], first["alt_m"]) == (12.5, 45.0, 40.0)
    terminal.close()


def test_the_emergency_bit_opens_one_sos_per_rise_and_is_confirmed(
    gateway: RunningGateway, store: Store
) -> None:
    phone = "013800138001"
    bind(store, phone, "li4")
    terminal = TestTerminal(gateway.port, phone)
    terminal.sign_in()
    now = time.time() - 100
    results = [
        terminal.result(report(now + n, n, alarm=alarm))
        for n, alarm in enumerate([0, ALARM_EMERGENCY, ALARM_EMERGENCY, 0, ALARM_EMERGENCY])
    ]
    assert results == [
        Result.SUCCESS,
        Result.ALARM_CONFIRMED,
        Result.ALARM_CONFIRMED,
        Result.SUCCESS,
        Result.ALARM_CONFIRMED,
    ]
    alarms = [e for e in store.incidents.inbox_entries() if e["kind"] == "sos"]
    assert [e["officer"] for e in alarms] == ["li4", "li4"]
    body = json.loads(alarms[0]["body"])
    assert (body["lon"], body["lat"], body["tst"]) == (
        round(JINHUA[0] + 1e-5, 6),
        round(JINHUA[1] + 1e-5, 6),
        int(now + 1),
    )
    terminal.close()


def test_a_gcj02_terminal_is_stored_in_wgs84(gateway: RunningGateway, store: Store) -> None:
    phone = "12345678901234567890"  # a 2019 terminal
    bind(store, phone, "wang5")
    store.terminals.save(Terminal(phone, crs=Datum.GCJ02))
    terminal = TestTerminal(gateway.port, phone, version=1)
    terminal.sign_in()
    assert terminal.result(report(time.time() - 5)) is Result.SUCCESS
    record = store.tracks.device_record(f"wang5/{phone}")
    expected = to_wgs84(*JINHUA, Datum.GCJ02)
    assert (float(record["lon"]), float(record["lat"])) == pytest.approx(expected, abs=1e-7)
    terminal.close()


def test_unbound_and_unauthenticated_terminals_store_nothing(
    gateway: RunningGateway, store: Store
) -> None:
    stranger = TestTerminal(gateway.port, "099999999999")
    answer = stranger.request(Registration(33, 701, "YW", "X", "T9", 1, ""))
    assert answer == RegistrationResponse(stranger.serial, RegistrationResult.NO_SUCH_TERMINAL)
    assert stranger.result(report(time.time())) is Result.FAILURE
    bind(store, "013800138002", "zhao6")
    impostor = TestTerminal(gateway.port, "013800138002")
    assert impostor.result(Authentication("guess")) is Result.FAILURE
    assert store.ingest.stats().get("accepted", 0) == 0
    stranger.close()
    impostor.close()


def test_malformed_frames_get_reasons_and_end_no_other_terminals_connection(
    gateway: RunningGateway, store: Store
) -> None:
    bind(store, "013800138010", "sun7")
    bind(store, "013800138011", "zhou8")
    noisy = TestTerminal(gateway.port, "013800138010")
    calm = TestTerminal(gateway.port, "013800138011")
    noisy.sign_in()
    calm.sign_in()
    now = time.time() - 100

    good = encode_message(report(now), phone=noisy.phone, serial=900)
    bad_checksum = good[:-2] + bytes([good[-2] ^ 0xFF]) + good[-1:]
    bad_escape = good[:20] + b"\x7d\x05" + good[22:]
    unknown = pack_frame(encode_header(Header(0x0F01, noisy.phone, 901), 2) + b"\x00\x01")
    # Bytes before any flag, from a connection that never becomes a terminal.
    stray = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    stray.sendall(b"GET / HTTP/1.1\r\n\r\n")
    junk = [bad_checksum, bad_escape, good[:25], b"\x7e" + b"\x01" * 3000]
    for piece in junk:
        noisy.sock.sendall(piece)
    noisy.sock.sendall(b"\x7e" + unknown)
    # Only the unknown message's header can be trusted: it alone is answered.
    assert noisy.receive().message == PlatformResponse(901, 0x0F01, Result.UNSUPPORTED)
    # Both connections still carry reports.
    assert calm.result(report(now + 1)) is Result.SUCCESS
    assert noisy.result(report(now + 2, 1)) is Result.SUCCESS
    stray.close()  # what it sent is judged when it ends: it held no flag
    wait_until(lambda: len(store.ingest.deadletters()) == 6, what="six dead letters")
    reasons = sorted(d["reason"] for d in store.ingest.deadletters())
    assert reasons == sorted(
        f"jt808_{r}"
        for r in (
            Reason.OUTSIDE_FRAME,
            Reason.BAD_CHECKSUM,
            Reason.BAD_ESCAPE,
            Reason.TRUNCATED,
            Reason.OVERSIZE,
            Reason.UNKNOWN_MESSAGE,
        )
    )
    # A terminal that hangs up mid-frame costs the other nothing either.
    noisy.sock.sendall(good[:30])
    noisy.close()
    assert calm.result(report(now + 3, 2)) is Result.SUCCESS
    calm.close()


def test_reports_pipelined_by_many_terminals_are_all_answered_in_order(
    gateway: RunningGateway, store: Store
) -> None:
    terminals = []
    for n in range(20):
        phone = f"0138001390{n:02d}"
        bind(store, phone, f"officer{n}")
        terminals.append(TestTerminal(gateway.port, phone))
        terminals[-1].sign_in()
    start = time.time() - 500
    sent = {t.phone: [t.send(report(start + k, k)) for k in range(50)] for t in terminals}
    for t in terminals:
        answers = [t.receive().message for _ in range(50)]
        assert answers == [
            PlatformResponse(serial, MessageId.LOCATION, Result.SUCCESS) for serial in sent[t.phone]
        ]
    assert store.ingest.stats()["accepted"] == 20 * 50
    for t in terminals:
        t.close()


def test_a_resent_report_is_stored_once(gateway: RunningGateway, store: Store) -> None:
    phone = "013800138020"
    bind(store, phone, "wu9")
    terminal = TestTerminal(gateway.port, phone)
    terminal.sign_in()
    at = time.time() - 10
    assert terminal.result(report(at)) is Result.SUCCESS
    # Its answer was lost: the terminal sends the same report again and is answered again.
    assert terminal.result(report(at)) is Result.SUCCESS
    stats = store.ingest.stats()
    assert (stats["accepted"], stats["rejected:duplicate"]) == (1, 1)
    terminal.close()


def test_an_order_reaches_the_officers_terminal_as_text_and_its_confirmation_is_the_ack(
    gateway: RunningGateway, store: Store
) -> None:
    phone = "013800138030"
    bind(store, phone, "zheng1")
    store.registry.bind([make_binding(device="phone", user="zheng1")])  # not here: MQTT's
    terminal = TestTerminal(gateway.port, phone)
    terminal.sign_in()
    stop = asyncio.Event()
    orders = TerminalOrders(
        store, gateway.gateway, group="jt808-test", zone=ZoneInfo("Asia/Shanghai")
    )
    running = asyncio.run_coroutine_threadsafe(orders.run(stop), gateway.loop)
    issued = time.time()
    notice = OrderNotice(
        order_id="O-7",
        incident_id="INC-7",
        issued=issued,
        respond_by=issued + 60,
        dispatch_by=issued + 180,
        handle_by=None,
        priority=2,
        category="street_vending",
        title="东门占道经营",
        lon=119.65,
        lat=29.08,
        radius_m=50,
        team="wucheng",
        dispatcher="d1",
        officers=("zheng1",),
    )
    store.redis.xadd(
        store.keys.outbox, {"action": "send", "notice": msgspec.json.encode(notice).decode()}
    )
    text = terminal.receive()
    assert isinstance(text.message, TextMessage)
    assert text.message.flags == 0x0D  # emergency, display, read aloud (2013)
    assert "占道经营：东门占道经营" in text.message.text and "指令号：O-7" in text.message.text
    due = datetime.fromtimestamp(issued + 60, ZoneInfo("Asia/Shanghai"))
    assert f"响应时限：{due:%H:%M:%S}" in text.message.text
    terminal.sock.sendall(
        encode_message(
            TerminalResponse(text.header.serial, MessageId.TEXT, Result.SUCCESS),
            phone=phone,
            serial=99,
        )
    )

    def acks() -> list[dict[str, object]]:
        return [
            {"officer": e["officer"], **json.loads(e["body"])}
            for e in store.incidents.inbox_entries()
            if e["kind"] == "ack"
        ]

    wait_until(lambda: bool(acks()), what="the terminal's confirmation as an ack")
    (ack,) = acks()
    assert (ack["officer"], ack["order_id"], ack["status"]) == ("zheng1", "O-7", "received")
    wait_until(
        lambda: store.redis.xpending(store.keys.outbox, "jt808-test")["pending"] == 0,
        what="the order settled",
    )
    # The withdrawal follows the same way, without an ack of its own.
    withdrawal = {"incident": "INC-7", "order": "O-7", "officers": ["zheng1"], "reason": "已撤销"}
    store.redis.xadd(
        store.keys.outbox, {"action": "withdraw", "withdrawal": json.dumps(withdrawal)}
    )
    text = terminal.receive()
    assert isinstance(text.message, TextMessage) and "撤销" in text.message.text
    terminal.sock.sendall(
        encode_message(
            TerminalResponse(text.header.serial, MessageId.TEXT, Result.SUCCESS),
            phone=phone,
            serial=100,
        )
    )
    wait_until(
        lambda: store.redis.xpending(store.keys.outbox, "jt808-test")["pending"] == 0,
        what="the withdrawal settled",
    )
    assert len(acks()) == 1
    gateway.loop.call_soon_threadsafe(stop.set)
    running.result(10)
    terminal.close()


def _gateway_process(redis_url: str, prefix: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "YIWANG_REDIS_URL": redis_url,
        "YIWANG_KEY_PREFIX": prefix,
        "YIWANG_JT808_HOST": "127.0.0.1",
        "YIWANG_JT808_PORT": str(port),
    }
    process = subprocess.Popen([sys.executable, "-m", "dispatch.cli", "jt808"], env=env)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, what="yiwang jt808 listening")
    return process


def test_reports_unanswered_when_the_gateway_is_killed_are_resent_and_stored_once(
    redis_service: ManagedRedis, store: Store, prefix: str
) -> None:
    phone = "013800138040"
    bind(store, phone, "qian2")
    store.terminals.save(Terminal(phone, auth_code="k1"))
    port = free_port()
    gateway = _gateway_process(redis_service.url, prefix, port)
    terminal = TestTerminal(port, phone)
    terminal.sign_in("k1")
    start = time.time() - 1000
    reports = {terminal.serial + 1 + n: report(start + n, n) for n in range(400)}
    terminal.sock.sendall(
        b"".join(encode_message(r, phone=phone, serial=s) for s, r in reports.items())
    )
    answered: set[int] = set()
    try:
        while True:
            data = terminal.sock.recv(65536)
            if not data:
                break
            for item in terminal.decoder.feed(data):
                assert isinstance(item, Decoded) and isinstance(item.message, PlatformResponse)
                answered.add(item.message.reply_serial)
            if len(answered) >= 50 and gateway.returncode is None:
                gateway.kill()  # SIGKILL, mid-stream
                gateway.wait(10)
    except ConnectionResetError:
        pass
    terminal.close()
    assert 50 <= len(answered) < len(reports)

    gateway = _gateway_process(redis_service.url, prefix, port)
    try:
        again = TestTerminal(port, phone)
        again.sign_in("k1")
        # The unanswered reports, and for good measure the answered ones too (as a terminal
        # whose answers were lost in flight would): each is stored once.
        unanswered = [r for s, r in reports.items() if s not in answered]
        answered_too = [r for s, r in reports.items() if s in answered]
        assert {again.result(r) for r in unanswered + answered_too} == {Result.SUCCESS}
        again.close()
    finally:
        gateway.terminate()
        gateway.wait(10)
    device = DeviceKey(f"qian2/{phone}")
    fixes = [
        json.loads(link.canonical)["fix_at"] for _, link, _ in store.tracks.chain_links(device)
    ]
    assert sorted(fixes) == [int(start + n) for n in range(400)]
    stats = store.ingest.stats()
    assert stats["accepted"] == 400
    # Everything stored before the kill, answered or not, came back as a duplicate.
    assert len(answered) <= stats["rejected:duplicate"] < len(reports)
