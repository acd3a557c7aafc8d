"""Bytes from a terminal's connection, in any chunking, to messages or reasons.

`StreamDecoder.feed` never raises: each frame comes out as `Decoded` or, if it cannot be used,
as `Malformed` with a reason code and a sentence, so one bad frame costs only itself. Every
0x7E delimits; what lies between two is one frame (terminals that share the flag between
frames and those that send `7E 7E` are both read). A frame that grows past the largest the
standard allows is dropped as `oversize` up to the next flag, so a peer sending no flags
cannot make the decoder hold more than that.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.jt808.errors import Jt808Error, Reason
from devices.jt808.frame import FLAG, check_checksum, unescape
from devices.jt808.header import MAX_BODY_BYTES, MAX_HEADER_BYTES, Header, decode_header
from devices.jt808.messages import Message, decode_body

# Header, the largest body and the checksum, every byte escaped into two.
MAX_FRAME_BYTES = 2 * (MAX_HEADER_BYTES + MAX_BODY_BYTES + 1)
_FLAG = bytes((FLAG,))


@dataclass(frozen=True, slots=True)
class Decoded:
    header: Header
    message: Message
    frame: bytes  # as received, flags included


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: Reason
    detail: str
    # Only when the frame's checksum held: a reply may then name its serial and id.
    header: Header | None
    frame: bytes  # as received (at most MAX_FRAME_BYTES of an oversize one)


class StreamDecoder:
    """One connection's decoder. Feed it what the socket gives; `close()` at its end."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._frame = bytearray()
        self._opened = False  # a flag has been seen: bytes now belong to a frame
        self._dropping = False  # an oversize frame is being skipped up to its closing flag

    def feed(self, data: bytes) -> list[Decoded | Malformed]:
        out: list[Decoded | Malformed] = []
        at = 0
        while at < len(data):
            flag = data.find(_FLAG, at)
            end = len(data) if flag < 0 else flag
            if not self._dropping:
                self._frame += data[at:end]
                if len(self._frame) > self.max_frame_bytes:
                    out.append(self._oversize())
            if flag < 0:
                break
            if self._frame:
                frame = bytes(self._frame)
                out.append(decode_frame(frame) if self._opened else _outside(frame))
            self._frame.clear()
            self._opened, self._dropping = True, False
            at = flag + 1
        return out

    def close(self) -> list[Malformed]:
        """The connection ended: an unfinished frame is reported as truncated."""
        if not self._frame:
            return []
        frame, self._frame = bytes(self._frame), bytearray()
        if not self._opened:
            return [_outside(frame)]
        return [
            Malformed(
                Reason.TRUNCATED,
                f"the connection ended {len(frame)} bytes into a frame, before its closing 7e",
                None,
                _FLAG + frame,
            )
        ]

    def _oversize(self) -> Malformed:
        frame = bytes(self._frame[: self.max_frame_bytes])
        self._frame.clear()
        self._dropping = True
        if not self._opened:
            return _outside(frame)
        return Malformed(
            Reason.OVERSIZE,
            f"no closing 7e within {self.max_frame_bytes} bytes, the most a frame can take; "
            "skipping to the next 7e",
            None,
            _FLAG + frame,
        )


def decode_frame(escaped: bytes) -> Decoded | Malformed:
    """One frame's bytes between its flags, decoded; never raises."""
    frame = _FLAG + escaped + _FLAG
    try:
        content = unescape(escaped)
        header, body = decode_header(content[:-1])
        check_checksum(content)
    except Jt808Error as exc:
        return Malformed(exc.reason, str(exc), None, frame)
    try:
        return Decoded(header, decode_body(header, body), frame)
    except Jt808Error as exc:
        return Malformed(exc.reason, str(exc), header, frame)


def _outside(data: bytes) -> Malformed:
    return Malformed(
        Reason.OUTSIDE_FRAME,
        f"{len(data)} bytes before the first 7e belong to no frame",
        None,
        data,
    )
