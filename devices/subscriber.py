"""A QoS 1 subscriber session on one socket: the I/O around devices.mqttwire.

Blocking and single-threaded by design: the ingest's one thread reads a kernel buffer at a
time, decodes every packet in it, and acknowledges a stored batch with one write. Nothing is
acknowledged unless the caller asks, so the broker redelivers whatever was read but not
acknowledged when the session ends. Every connect subscribes again, so a broker that lost its
sessions (restarted without persistence) still routes to this one.

Leaving for good is three steps the caller takes in order: `unsubscribe` (the broker routes
nothing new here once `awaiting_answer` turns false), reading and acknowledging what is still
in flight, then `end`, which has an MQTT 5 broker discard the session instead of queueing for
it until it expires.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence

from devices import mqttwire
from devices.broker import BrokerLogin
from devices.mqttwire import (
    ConnAck,
    Disconnect,
    PingResp,
    ProtocolError,
    Publish,
    SubAck,
    UnsubAck,
)

_READ_BYTES = 256 * 1024
_MAX_PACKET_BYTES = 1 << 20


class SessionError(Exception):
    """The session cannot go on; the reason says whether it was the broker, the account or
    the network. Reconnecting is the remedy for all of them."""


class RefusedError(SessionError):
    """The broker refused the login: reconnecting will not help until the account is fixed."""


class TakenOverError(SessionError):
    """Another client connected with this client id and the broker gave it the session
    (MQTT 5 reason 0x8E): reconnecting would only take it back, and so on, twice a second."""


class Subscriber:
    def __init__(
        self,
        login: BrokerLogin,
        client_id: str,
        *,
        protocol: int = mqttwire.MQTT_5,
        session_expiry_s: int = 3600,
        keepalive_s: int = 30,
    ) -> None:
        self.login = login
        self.client_id = client_id
        self.protocol = protocol
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.session_present = False
        self._sock: socket.socket | None = None
        self._decoder = mqttwire.Decoder(protocol, _MAX_PACKET_BYTES)
        self._sent_at = 0.0
        self._ping_sent_at: float | None = None
        self._packet_id = 0
        # Packet ids of the SUBSCRIBE and UNSUBSCRIBE packets not answered yet.
        self._awaiting: set[int] = set()
        self._early: list[Publish] = []
        self._on_subscribed: Callable[[SubAck], None] = lambda suback: None

    def connect(
        self,
        filters: Sequence[tuple[str, int]],
        on_subscribed: Callable[[SubAck], None],
        timeout_s: float = 10.0,
    ) -> None:
        """Open the session and ask for `filters`; `on_subscribed` gets the broker's SUBACK
        (one code per filter) from within a later `read`. No filters resumes the session with
        the subscriptions it has, asking for nothing.

        A resumed session's queued messages flow from the moment the broker accepts the
        login, ahead of the SUBACK: they are read like any others, so a long queue is never
        held in memory while waiting for the answer. Raises `RefusedError` when the broker
        refuses the login, `SessionError` or `OSError` when it does not answer like a broker.
        """
        self.close()
        sock = socket.create_connection((self.login.host, self.login.port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.login.tls_ca:
            try:
                context = ssl.create_default_context(cafile=self.login.tls_ca)
                sock = context.wrap_socket(sock, server_hostname=self.login.host)
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._decoder = mqttwire.Decoder(self.protocol, _MAX_PACKET_BYTES)
        self._ping_sent_at = None
        self._on_subscribed = on_subscribed
        self._send(
            mqttwire.encode_connect(
                self.client_id,
                protocol=self.protocol,
                keepalive_s=self.keepalive_s,
                clean_start=False,
                username=self.login.username,
                password=self.login.password if self.login.username else None,
                session_expiry_s=self.session_expiry_s,
                max_packet_bytes=_MAX_PACKET_BYTES,
            )
        )
        connack = self._connack(time.monotonic() + timeout_s)
        if connack.reason_code:
            self.close()
            raise RefusedError(
                f"broker {self.login!r} refused the session "
                f"(reason {connack.reason_code:#04x}): check the account and its password"
            )
        self.session_present = connack.session_present
        if filters:
            self._send(
                mqttwire.encode_subscribe(self._next_request(), filters, protocol=self.protocol)
            )

    def unsubscribe(self, filters: Sequence[str]) -> None:
        """Leave `filters`; `awaiting_answer` stays true until the broker's UNSUBACK has been
        read. Messages it sent before still arrive, and need acknowledging like any other."""
        self._send(
            mqttwire.encode_unsubscribe(self._next_request(), filters, protocol=self.protocol)
        )

    @property
    def awaiting_answer(self) -> bool:
        """A SUBSCRIBE or UNSUBSCRIBE the broker has not answered yet."""
        return bool(self._awaiting)

    def read(self, timeout_s: float) -> list[Publish]:
        """The PUBLISH packets that arrive within `timeout_s` (all that one read holds);
        an empty list when none did. Keeps the session alive meanwhile."""
        if self._early:
            early, self._early = self._early, []
            return early
        sock = self._connected()
        self._keep_alive()
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        if not pending:
            ready, _, _ = select.select([sock], [], [], timeout_s)
            if not ready:
                return []
        try:
            data = sock.recv(_READ_BYTES)
        except (BlockingIOError, ssl.SSLWantReadError):
            return []
        if not data:
            self.close()
            raise SessionError(f"broker {self.login!r} closed the connection")
        publishes, answers = self._sorted(data)
        for answer in answers:
            if not isinstance(answer, SubAck | UnsubAck) or answer.packet_id not in self._awaiting:
                self.close()
                raise SessionError(f"broker {self.login!r} sent an unexpected {answer}")
            self._awaiting.discard(answer.packet_id)
            if isinstance(answer, SubAck):
                self._on_subscribed(answer)
        return publishes

    def acknowledge(self, packet_ids: Iterable[int]) -> None:
        """PUBACK each of `packet_ids` (QoS 1 messages), in one write."""
        data = mqttwire.encode_pubacks(packet_ids)
        if data:
            self._send(data)

    def close(self) -> None:
        """Disconnect politely if the socket still works; the broker keeps the session."""
        self._disconnect(mqttwire.encode_disconnect())

    def end(self) -> None:
        """Disconnect and have the broker discard the session (MQTT 5 session expiry 0).
        A 3.1.1 broker keeps it until its own expiry, without the subscriptions left."""
        if self.protocol == mqttwire.MQTT_5:
            self._disconnect(mqttwire.encode_disconnect(session_expiry_s=0))
        else:
            self._disconnect(mqttwire.encode_disconnect())

    def _disconnect(self, packet: bytes) -> None:
        sock, self._sock = self._sock, None
        self._early = []
        self._awaiting.clear()
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.sendall(packet)
        sock.close()

    def _next_request(self) -> int:
        self._packet_id = self._packet_id % 0xFFFF + 1
        self._awaiting.add(self._packet_id)
        return self._packet_id

    def _sorted(self, data: bytes) -> tuple[list[Publish], list[ConnAck | SubAck | UnsubAck]]:
        """Decode `data`: the messages, and the broker's answers to this client's requests."""
        try:
            packets = self._decoder.feed(data)
        except ProtocolError as exc:
            self.close()
            raise SessionError(f"broker {self.login!r} broke MQTT: {exc}") from exc
        publishes: list[Publish] = []
        answers: list[ConnAck | SubAck | UnsubAck] = []
        for packet in packets:
            if type(packet) is Publish:
                publishes.append(packet)
            elif type(packet) is PingResp:
                self._ping_sent_at = None
            elif type(packet) is Disconnect:
                self.close()
                if packet.reason_code == mqttwire.SESSION_TAKEN_OVER:
                    raise TakenOverError(
                        f"broker {self.login!r} gave session {self.client_id!r} to another "
                        "client that connected with the same client id"
                    )
                raise SessionError(
                    f"broker {self.login!r} ended the session (reason {packet.reason_code:#04x})"
                )
            else:
                answers.append(packet)  # type: ignore[arg-type]
        return publishes, answers

    def _keep_alive(self) -> None:
        now = time.monotonic()
        if self._ping_sent_at is not None and now - self._ping_sent_at > self.keepalive_s:
            self.close()
            raise SessionError(
                f"broker {self.login!r} did not answer a ping within {self.keepalive_s} s"
            )
        # Anything sent resets the broker's keep-alive timer; ping only when idle.
        if self._ping_sent_at is None and now - self._sent_at >= self.keepalive_s / 2:
            self._send(mqttwire.PINGREQ_PACKET)
            self._ping_sent_at = now

    def _connack(self, deadline: float) -> ConnAck:
        """Read until the broker answers the login. Messages of a resumed session that came
        in the same read are kept for the next `read`."""
        sock = self._connected()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise SessionError(f"broker {self.login!r} did not answer the login in time")
            sock.settimeout(remaining)
            try:
                data = sock.recv(_READ_BYTES)
            except TimeoutError:
                continue
            finally:
                if self._sock is not None:
                    sock.settimeout(None)
            if not data:
                self.close()
                raise SessionError(f"broker {self.login!r} closed the connection at login")
            publishes, answers = self._sorted(data)
            self._early.extend(publishes)
            if answers:
                if isinstance(answers[0], ConnAck) and len(answers) == 1:
                    return answers[0]
                self.close()
                raise SessionError(f"broker {self.login!r} answered the login with {answers}")

    def _connected(self) -> socket.socket:
        if self._sock is None:
            raise SessionError("the session is not connected")
        return self._sock

    def _send(self, data: bytes) -> None:
        self._connected().sendall(data)
        self._sent_at = time.monotonic()
