"""The JT/T 808 gateway: terminals over TCP in, the MQTT path's store path out.

An asyncio server around the sans-I/O codec (`devices.jt808`). A terminal registers (0x0100;
only a phone number the device registry binds to an officer gets an auth code, kept per
terminal), authenticates on each connection (0x0102), then reports. Every report becomes the
OwnTracks `location` an MQTT terminal would publish on `{root}/{officer}/{phone}` (and an
`sos` when the emergency bit rises) and goes through the same `BatchWriter` as MQTT
messages: judged, chained and stored in batches shared by all connections. A report's general
response (0x8001) leaves only once Redis holds its verdict, so a terminal whose report was
not answered resends it, and the store recognises what it already holds.

A connection's replies leave in the order its frames came. A frame that cannot be used is
dead-lettered with its reason and answered when its header can be trusted; it costs only
itself, never the connection, let alone another terminal's. Redis work (the batch writer and
the terminal records) runs on one thread of its own, so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from devices import messages as wire
from devices.batch import BatchWriter, Received
from devices.jt808.errors import Reason
from devices.jt808.header import Header
from devices.jt808.messages import (
    Authentication,
    Heartbeat,
    LocationBatch,
    LocationReport,
    Logout,
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
from devices.jt808.stream import Decoded, Malformed, StreamDecoder
from devices.jt808.terminals import Terminal, TerminalBook
from devices.sink import IngestBatch
from devices.topics import Channel, device_topic

log = logging.getLogger(__name__)

_READ_BYTES = 64 * 1024
_LOG_EVERY_S = 60.0
# Malformed frames whose reason says the center cannot read them, not that they are broken.
_UNSUPPORTED = frozenset({Reason.UNKNOWN_MESSAGE, Reason.ENCRYPTED, Reason.SUBPACKAGED})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    root: str
    batch_max: int = 1000
    batch_wait_s: float = 0.005
    # Three heartbeats missed at the standard's default interval of 60 s.
    idle_timeout_s: float = 180.0
    # Replies a connection may owe (reports waiting for Redis) before its reading pauses.
    max_in_flight: int = 256
    max_connections: int = 20_000
    max_auth_failures: int = 3
    # How long a terminal has to answer a text message with its general response.
    downlink_timeout_s: float = 30.0


@dataclass(slots=True)
class _Pending:
    received: list[Received]
    stored: asyncio.Future[None] | None  # None: only wakes the lane to write dead letters


class StoreLane:
    """Every connection's messages, written in batches by one BatchWriter on one thread.

    `store()` returns a future that is done once Redis holds a verdict for each message, or
    fails with what the write raised. Malformed frames join the next write as dead letters.
    """

    def __init__(
        self, writer: BatchWriter, executor: ThreadPoolExecutor, *, batch_max: int, wait_s: float
    ) -> None:
        self.writer = writer
        self.executor = executor
        self.batch_max = batch_max
        self.wait_s = wait_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._rejects = IngestBatch()

    def store(self, received: list[Received]) -> asyncio.Future[None]:
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(received, stored))
        return stored

    def reject(self, device: str, reason: Reason, detail: str, frame: bytes, peer: str) -> None:
        self._rejects.add_reject(
            device,
            f"jt808_{reason}",
            detail,
            f"jt808 {peer}",
            frame,
            hashlib.sha256(frame).hexdigest(),
        )
        if self._queue.empty():
            # Nothing else is coming to carry it: let an empty write take it.
            self._queue.put_nowait(_Pending([], None))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            if self._queue.empty():
                # A lone message waits a moment for company; what queued during the last
                # write goes at once.
                await asyncio.sleep(self.wait_s)
            count = len(batch[0].received)
            while count < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                count += len(batch[-1].received)
            received = [message for pending in batch for message in pending.received]
            rejects, self._rejects = self._rejects, IngestBatch()
            error: Exception | None = None
            try:
                await loop.run_in_executor(self.executor, self._write, received, rejects)
            except Exception as exc:
                error = exc
            for pending in batch:
                # A waiter that gave up (a cancelled delivery) has no use for the answer.
                if pending.stored is None or pending.stored.done():
                    continue
                if error is None:
                    pending.stored.set_result(None)
                else:
                    pending.stored.set_exception(error)

    def _write(self, received: list[Received], rejects: IngestBatch) -> None:
        if received:
            try:
                self.writer.write(received)
            except self.writer.sink.unavailable:
                self.writer.forget()
                raise
            except Exception:
                # Not Redis: one message broke the batch. Apart, only that one is refused.
                log.exception("writing %d jt808 messages raised; writing them apart", len(received))
                self.writer.write_apart(received)
        if len(rejects):
            self.writer.sink.write_batch(rejects, self.writer.clock())


@dataclass(slots=True)
class _Session:
    """What one connection has established: the terminal it speaks for, once authenticated."""

    peer: str
    stream: asyncio.StreamWriter
    terminal: Terminal | None = None
    officer: str = ""
    version: int | None = None  # the 2019 protocol version the terminal speaks, if it does
    auth_failures: int = 0
    next_serial: int = 0
    awaiting: dict[int, asyncio.Future[TerminalResponse]] = field(default_factory=dict)
    logged: dict[str, float] = field(default_factory=dict)

    def serial(self) -> int:
        """The serial of the center's next message on this connection."""
        self.next_serial = (self.next_serial + 1) & 0xFFFF
        return self.next_serial


_Reply = asyncio.Future[bytes | None]


class Jt808Gateway:
    def __init__(
        self,
        writer: BatchWriter,
        terminals: TerminalBook,
        config: GatewayConfig,
        *,
        new_auth_code: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.writer = writer
        self.terminals = terminals
        self.config = config
        self.new_auth_code = new_auth_code
        # Redis is used from this one thread only: the writer's caches need no locks.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jt808-store")
        self.lane = StoreLane(
            writer, self.executor, batch_max=config.batch_max, wait_s=config.batch_wait_s
        )
        self._sessions: dict[str, _Session] = {}  # authenticated connections by phone
        self._streams: set[asyncio.StreamWriter] = set()  # every open connection
        self._handlers: set[asyncio.Task[None]] = set()
        # Whether each terminal's last report had the emergency bit: an SOS is raised when it
        # rises, not again for every report the terminal sends until it is confirmed.
        self._alarm_on: dict[str, bool] = {}
        self._lane_task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> asyncio.Server:
        self._lane_task = asyncio.create_task(self.lane.run(), name="jt808-store-lane")
        server = await asyncio.start_server(self._serve, host, port)
        log.info("jt808 gateway listening on %s", [s.getsockname() for s in server.sockets])
        return server

    async def stop(self, server: asyncio.Server) -> None:
        server.close()
        for stream in self._streams:
            stream.close()  # each handler then reads the end of its stream and finishes
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await server.wait_closed()
        if self._lane_task is not None:
            self._lane_task.cancel()
        self.executor.shutdown(wait=True)

    def connected(self, phone: str) -> bool:
        return phone in self._sessions

    async def send_text(self, phone: str, message: TextMessage) -> TerminalResponse | None:
        """Send a text to `phone` if it is connected here; its general response, or None if
        it is not connected or did not answer within the downlink timeout."""
        session = self._sessions.get(phone)
        if session is None:
            return None
        serial = session.serial()
        answered: asyncio.Future[TerminalResponse] = asyncio.get_running_loop().create_future()
        session.awaiting[serial] = answered
        session.stream.write(
            encode_message(message, phone=phone, serial=serial, protocol_version=session.version)
        )
        try:
            return await asyncio.wait_for(answered, self.config.downlink_timeout_s)
        except (TimeoutError, ConnectionError):
            return None
        finally:
            session.awaiting.pop(serial, None)

    async def deliver(self, phone: str, text: str, *, order_id: str | None = None) -> bool:
        """Send `text` to `phone` as an urgent text if it is connected here; True once the
        terminal confirmed it. The confirmation of an order is stored as the `received` ack
        an MQTT terminal would send."""
        session = self._sessions.get(phone)
        if session is None:
            return False
        answer = await self.send_text(phone, urgent_text(text, is_2019=session.version is not None))
        if answer is None or answer.result != Result.SUCCESS:
            log.warning("jt808 %s did not confirm a text (%s)", phone, answer or "no answer")
            return False
        if order_id is not None:
            now = self.writer.clock()
            topic = device_topic(self.config.root, session.officer, phone, Channel.ACK)
            ack = wire.encode(wire.Ack(order_id=order_id, status="received", tst=int(now)))
            await self.lane.store([Received(0, 0, topic, ack, now)])
        return True

    async def _serve(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        peername = stream.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        if len(self._streams) >= self.config.max_connections:
            log.warning("jt808 refused %s: %d connections open", peer, len(self._streams))
            stream.close()
            return
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self._streams.add(stream)
        session = _Session(peer, stream)
        replies: asyncio.Queue[_Reply | None] = asyncio.Queue(self.config.max_in_flight)
        responder = asyncio.create_task(self._respond(replies, stream))
        decoder = StreamDecoder()
        try:
            while not responder.done():
                data = await asyncio.wait_for(reader.read(_READ_BYTES), self.config.idle_timeout_s)
                for item in decoder.feed(data) if data else decoder.close():
                    reply = await self._handle(session, item)
                    if reply is not None:
                        await replies.put(reply)
                if not data:
                    break
                if session.auth_failures >= self.config.max_auth_failures:
                    log.warning("jt808 %s: failed to authenticate; closing", peer)
                    break
        except TimeoutError:
            log.info("jt808 %s silent for %.0f s; closing", peer, self.config.idle_timeout_s)
        except OSError as exc:
            log.info("jt808 %s dropped: %s", peer, exc)
        finally:
            self._handlers.discard(handler)
            self._streams.discard(stream)
            self._forget(session)
            if not responder.done():
                await replies.put(None)
            await responder
            stream.close()

    async def _respond(
        self, replies: asyncio.Queue[_Reply | None], stream: asyncio.StreamWriter
    ) -> None:
        """Write each reply once it is ready, in the order the frames came; the replies
        already ready behind it leave in the same write."""
        ahead: _Reply | None = None  # taken from the queue, not ready yet
        ended = False
        try:
            while not ended:
                reply = ahead if ahead is not None else await replies.get()
                ahead = None
                if reply is None:
                    break
                frames = [await reply]
                while not replies.empty():
                    following = replies.get_nowait()
                    if following is None:
                        ended = True
                        break
                    if not following.done():
                        ahead = following
                        break
                    frames.append(following.result())
                stream.write(b"".join(frame for frame in frames if frame is not None))
                await stream.drain()
        except OSError:
            pass  # the terminal is gone; what it was not answered it resends
        for pending in (ahead, *(replies.get_nowait() for _ in range(replies.qsize()))):
            if pending is not None:
                pending.cancel()

    async def _handle(self, session: _Session, item: Decoded | Malformed) -> _Reply | None:
        """Act on one frame; the reply it will get (None for none). Registration and
        authentication are settled before the next frame is read: what follows depends on them."""
        if isinstance(item, Malformed):
            return self._malformed(session, item)
        header, message = item.header, item.message
        match message:
            case Registration():
                return await self._register(session, header, message)
            case Authentication():
                return await self._authenticate(session, header, message)
            case TerminalResponse():
                answered = session.awaiting.get(message.reply_serial)
                if answered is not None and not answered.done():
                    answered.set_result(message)
                return None
            case PlatformResponse() | RegistrationResponse() | TextMessage():
                return self._answer(session, header, Result.UNSUPPORTED)
        if session.terminal is None or header.phone != session.terminal.phone:
            self._log(
                session,
                "unauthenticated",
                "message 0x%04x from %s before it authenticated on this connection",
                header.msg_id,
                header.phone,
            )
            return self._answer(session, header, Result.FAILURE)
        match message:
            case LocationReport():
                return self._store(session, header, [message])
            case LocationBatch():
                return self._store(session, header, list(message.reports))
            case Heartbeat():
                return self._heartbeat(session, header)
            case Logout():
                reply = self._answer(session, header, Result.SUCCESS)
                self._forget(session)
                return reply
        return None

    def _malformed(self, session: _Session, item: Malformed) -> _Reply | None:
        if item.header is not None:
            device = item.header.phone
        else:
            device = session.terminal.phone if session.terminal else ""
        self.lane.reject(device, item.reason, item.detail, item.frame, session.peer)
        self._log(
            session,
            item.reason,
            "frame from %s refused (%s): %s",
            device or "-",
            item.reason,
            item.detail,
        )
        if item.header is None:
            return None  # a frame whose checksum failed: its serial cannot be trusted
        result = Result.UNSUPPORTED if item.reason in _UNSUPPORTED else Result.MESSAGE_ERROR
        return self._answer(session, item.header, result)

    async def _register(
        self, session: _Session, header: Header, message: Registration
    ) -> _Reply | None:
        """Issue (or repeat) the auth code of a terminal the registry binds to an officer."""
        try:
            terminal = await self._in_thread(lambda: self._registered(header.phone, message))
        except Exception:
            log.exception("jt808 registration of %s failed; the terminal will retry", header.phone)
            return None
        if terminal is None:
            log.warning(
                "jt808 registration from %s (%s) refused: phone %s is not bound to an officer; "
                "bind it with `yiwang devices bind %s --officer LOGIN`",
                session.peer,
                message.model,
                header.phone,
                header.phone,
            )
            return self._registration(session, header, RegistrationResult.NO_SUCH_TERMINAL)
        return self._registration(session, header, RegistrationResult.SUCCESS, terminal.auth_code)

    def _registered(self, phone: str, message: Registration) -> Terminal | None:
        """In the store thread: the terminal's record with its auth code, None if unbound."""
        officer = self.terminals.officer_of(phone)
        if officer is None:
            return None
        terminal = self.terminals.terminal(phone) or Terminal(phone)
        if terminal.auth_code:
            return terminal  # registering again (its answer was lost): the code it has
        terminal = terminal.registered(
            self.new_auth_code(), at=self.writer.clock(), model=message.model, plate=message.plate
        )
        self.terminals.save(terminal)
        log.info("jt808 terminal %s registered for officer %s", phone, officer)
        return terminal

    async def _authenticate(
        self, session: _Session, header: Header, message: Authentication
    ) -> _Reply | None:
        """Check the code and make the connection speak for its terminal."""
        try:
            terminal, officer = await self._in_thread(
                lambda: (
                    self.terminals.terminal(header.phone),
                    self.terminals.officer_of(header.phone),
                )
            )
        except Exception:
            log.exception(
                "jt808 authentication of %s failed; the terminal will retry", header.phone
            )
            return None
        if terminal is None or officer is None or not terminal.accepts(message.code):
            session.auth_failures += 1
            if officer is None:
                why = "it is not bound to an officer"
            else:
                why = "it never registered" if terminal is None else "a wrong auth code"
            log.warning(
                "jt808 %s failed to authenticate as %s: %s", session.peer, header.phone, why
            )
            return self._answer(session, header, Result.FAILURE)
        self._forget(session)
        session.terminal, session.officer, session.version = (
            terminal,
            officer,
            header.protocol_version,
        )
        previous = self._sessions.get(header.phone)
        if previous is not None:
            # The terminal reconnected before its old connection timed out: that one is dead.
            previous.stream.close()
        self._sessions[header.phone] = session
        return self._answer(session, header, Result.SUCCESS)

    def _store(self, session: _Session, header: Header, reports: list[LocationReport]) -> _Reply:
        assert session.terminal is not None
        terminal, now = session.terminal, self.writer.clock()
        topic = device_topic(self.config.root, session.officer, terminal.phone, Channel.LOCATION)
        alarm_topic = device_topic(self.config.root, session.officer, terminal.phone, Channel.SOS)
        received, alarmed = [], False
        for report in reports:
            location = wire.encode(wire_location(report, terminal))
            received.append(Received(0, 0, topic, location, now))
            if report.emergency and not self._alarm_on.get(terminal.phone, False):
                alarm = wire.encode(wire_sos(report, terminal))
                received.append(Received(0, 0, alarm_topic, alarm, now))
            self._alarm_on[terminal.phone] = report.emergency
            alarmed |= report.emergency
        # The confirmation tells the terminal to clear its emergency bit (JT/T 808 table 24).
        result = Result.ALARM_CONFIRMED if alarmed else Result.SUCCESS
        return self._answer_once_stored(session, header, received, result)

    def _heartbeat(self, session: _Session, header: Header) -> _Reply:
        assert session.terminal is not None
        now = self.writer.clock()
        topic = device_topic(self.config.root, session.officer, session.terminal.phone, Channel.HB)
        status = Received(0, 0, topic, wire.encode(wire.DevStat(tst=int(now))), now)
        return self._answer_once_stored(session, header, [status], Result.SUCCESS)

    def _answer_once_stored(
        self, session: _Session, header: Header, received: list[Received], result: Result
    ) -> _Reply:
        reply: _Reply = asyncio.get_running_loop().create_future()

        def answer(stored: asyncio.Future[None]) -> None:
            if reply.done():
                return  # the connection ended and its replies were dropped
            error = stored.exception()
            if error is not None:
                log.error(
                    "jt808 %s: message 0x%04x not stored (%s); answered as failed",
                    header.phone,
                    header.msg_id,
                    error,
                )
            reply.set_result(self._response(session, header, Result.FAILURE if error else result))

        self.lane.store(received).add_done_callback(answer)
        return reply

    def _answer(self, session: _Session, header: Header, result: Result) -> _Reply:
        done: _Reply = asyncio.get_running_loop().create_future()
        done.set_result(self._response(session, header, result))
        return done

    def _response(self, session: _Session, header: Header, result: Result) -> bytes:
        return encode_message(
            PlatformResponse(header.serial, header.msg_id, result),
            phone=header.phone,
            serial=session.serial(),
            protocol_version=header.protocol_version,
        )

    def _registration(
        self, session: _Session, header: Header, result: RegistrationResult, auth_code: str = ""
    ) -> _Reply:
        done: _Reply = asyncio.get_running_loop().create_future()
        done.set_result(
            encode_message(
                RegistrationResponse(header.serial, result, auth_code),
                phone=header.phone,
                serial=session.serial(),
                protocol_version=header.protocol_version,
            )
        )
        return done

    def _in_thread(self, work: Callable[[], _T]) -> asyncio.Future[_T]:
        return asyncio.get_running_loop().run_in_executor(self.executor, work)

    def _forget(self, session: _Session) -> None:
        """The connection no longer speaks for its terminal (it closed or logged out)."""
        if session.terminal is not None and self._sessions.get(session.terminal.phone) is session:
            del self._sessions[session.terminal.phone]
        session.terminal = None
        for answered in session.awaiting.values():
            if not answered.done():
                answered.set_exception(ConnectionResetError("the terminal's connection ended"))

    def _log(self, session: _Session, key: str, text: str, *args: object) -> None:
        """Warn at most once a minute per connection and kind: a broken terminal repeats."""
        now = asyncio.get_running_loop().time()
        if now - session.logged.get(key, float("-inf")) >= _LOG_EVERY_S:
            session.logged[key] = now
            log.warning("jt808 %s: " + text, session.peer, *args)
