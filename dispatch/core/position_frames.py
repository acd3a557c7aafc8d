"""Positions updates as compact binary frames: columns a browser views in place as typed arrays.

A screen that asks for `?positions=binary` gets each positions update as one WebSocket binary
message instead of JSON rows. The columns are laid out so the page hands them (after one pass
into its own slots) to deck.gl as binary attributes, with no object per officer; a device's
name crosses the wire once per connection and is referred to by number after that.

Frame, version 1, all numbers little-endian:

    offset  size     field
    0       4        magic b"YWPF"
    4       1        version (1)
    5       1        flags: bit 0 = the dictionary was reset before this frame's names
    6       2        seq_len: bytes of the stream sequence
    8       4        n: rows
    12      4        names: new device names this frame adds to the dictionary
    16      4        names_len: bytes of the names block
    20      seq_len  seq, ASCII (`<ms>-<n>`, the entry the update covers up to)
    ...     names_len  each new name: u16 byte length, then UTF-8; numbered on from the
                     dictionary's size (from 0 after a reset), in order
    ...     0-7      zero padding to a multiple of 8
    then n-long columns, largest element first so every column is aligned to its size:
            f64      received_at (UTC epoch s, when the center heard the device)
            u32      device: number in the dictionary
            i32      lon × 10^7 (1.1 cm; ±214° fits in an i32, so every lon and lat does)
            i32      lat × 10^7
            u32      fix_at (UTC epoch s)
            f32      acc_m
            f32      cog_deg
            u8       status: bit 0 acc_m reported, bit 1 cog_deg reported, bit 2 received_at
                     known; a field not reported is sent as 0 and read as null

The reader keeps the same dictionary: it starts empty on each connection, appends each frame's
names, and clears it first when the reset flag is set. Frames must be read in order.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

MAGIC = b"YWPF"
VERSION = 1
HEADER = struct.Struct("<4sBBHIII")
FLAG_RESET = 1
STATUS_ACC = 1
STATUS_COG = 2
STATUS_RECEIVED = 4
SCALE = 10_000_000
# Names kept per connection: beyond this the dictionary starts afresh (and says so), so a
# screen left open while devices come and go does not grow without end.
DICTIONARY_MAX = 100_000


class FrameError(ValueError):
    """A positions update that cannot be put in a frame."""


def _column(typecode: str, values: Iterable[Any]) -> bytes:
    column = array(typecode, values)
    if sys.byteorder == "big":
        column.byteswap()
    return column.tobytes()


class PositionFrames:
    """The encoder of one connection: it remembers which device names it has sent.

    `encode(seq, rows)` returns the frame for rows `[device, lon, lat, fix_at, acc_m, cog_deg,
    received_at]` (the feed's position rows); the caller must send every frame it encodes, in
    order, on the connection this encoder belongs to, since later frames refer to the names
    this one carries.
    """

    def __init__(self, max_names: int = DICTIONARY_MAX) -> None:
        self.max_names = max_names
        self.numbers: dict[str, int] = {}
        self.resets = 0

    def encode(self, seq: str, rows: Sequence[Sequence[Any]]) -> bytes:
        unseen = list(dict.fromkeys(row[0] for row in rows if row[0] not in self.numbers))
        flags = 0
        if len(self.numbers) + len(unseen) > self.max_names:
            unseen = list(dict.fromkeys(row[0] for row in rows))
            if len(unseen) > self.max_names:
                raise FrameError(
                    f"an update of {len(unseen)} devices exceeds the {self.max_names} names "
                    "a frame's dictionary holds"
                )
            self.numbers.clear()
            self.resets += 1
            flags |= FLAG_RESET
        names = bytearray()
        for name in unseen:
            encoded = name.encode()
            if len(encoded) > 0xFFFF:
                raise FrameError(f"device name of {len(encoded)} bytes is too long for a frame")
            names += struct.pack("<H", len(encoded)) + encoded
            self.numbers[name] = len(self.numbers)
        seq_bytes = seq.encode("ascii")
        head = HEADER.pack(
            MAGIC, VERSION, flags, len(seq_bytes), len(rows), len(unseen), len(names)
        )
        head += seq_bytes + bytes(names)
        head += bytes(-len(head) % 8)
        # Rows may stop after fix_at: the feed's rows leave out trailing fields not reported.
        acc, cog, received = ([row[k] if len(row) > k else None for row in rows] for k in (4, 5, 6))
        status = [
            (STATUS_ACC if a is not None else 0)
            | (STATUS_COG if c is not None else 0)
            | (STATUS_RECEIVED if r is not None else 0)
            for a, c, r in zip(acc, cog, received, strict=True)
        ]
        return b"".join(
            (
                head,
                _column("d", (r or 0.0 for r in received)),
                _column("I", (self.numbers[row[0]] for row in rows)),
                _column("i", (round(row[1] * SCALE) for row in rows)),
                _column("i", (round(row[2] * SCALE) for row in rows)),
                _column("I", (int(row[3]) for row in rows)),
                _column("f", (a or 0.0 for a in acc)),
                _column("f", (c or 0.0 for c in cog)),
                _column("B", status),
            )
        )
