"""Framing: `7E | escaped(content | checksum) | 7E`, the checksum the XOR of the content.

Inside a frame 0x7E is sent as `7D 02` and 0x7D as `7D 01`, so a 0x7E on the wire always
delimits. `content` is header and body, unescaped.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import xor

from devices.jt808.errors import Jt808Error, Reason

FLAG = 0x7E
_FLAG_BYTES = b"\x7e"
_ESCAPE = b"\x7d"
# A 0x7D that does not start `7D 01` or `7D 02` (a frame never ends in one either).
_BAD_ESCAPE = re.compile(rb"\x7d(?![\x01\x02])")


def checksum(content: bytes) -> int:
    return reduce(xor, content, 0)


def escape(data: bytes) -> bytes:
    # 0x7D first: escaping 0x7E produces 0x7D bytes that must stay as they are.
    return data.replace(_ESCAPE, b"\x7d\x01").replace(_FLAG_BYTES, b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """The bytes `escape` was given; raise Jt808Error for a 0x7D that escapes nothing."""
    bad = _BAD_ESCAPE.search(data)
    if bad is not None:
        follower = data[bad.start() + 1 : bad.start() + 2]
        what = f"followed by 0x{follower.hex()}" if follower else "at the end of the frame"
        raise Jt808Error(
            Reason.BAD_ESCAPE,
            f"0x7d at offset {bad.start()} is {what}; only 7d 01 and 7d 02 are escapes",
        )
    # Every 0x7D starts a pair here, so no replacement can create or split another pair.
    return data.replace(b"\x7d\x02", _FLAG_BYTES).replace(b"\x7d\x01", _ESCAPE)


def pack_frame(content: bytes) -> bytes:
    """A whole frame, flags included, for `content` (header and body)."""
    return _FLAG_BYTES + escape(content + bytes((checksum(content),))) + _FLAG_BYTES


def check_checksum(content_and_checksum: bytes) -> bytes:
    """The content without its checksum byte; raise Jt808Error if the byte disagrees."""
    content, sent = content_and_checksum[:-1], content_and_checksum[-1]
    computed = checksum(content)
    if computed != sent:
        raise Jt808Error(
            Reason.BAD_CHECKSUM,
            f"checksum byte 0x{sent:02x} but the content XORs to 0x{computed:02x}",
        )
    return content
