"""A reader of positions frames (dispatch.core.position_frames), written from the layout the
encoder documents, so tests check the encoder against its documentation, not against itself."""

from __future__ import annotations

import struct
from typing import Any

_HEADER = struct.Struct("<4sBBHIII")


class FrameReader:
    """One connection's reader: it keeps the device dictionary the frames build up."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def read(self, frame: bytes) -> tuple[str, list[list[Any]]]:
        """(seq, rows `[device, lon, lat, fix_at, acc_m, cog_deg, received_at]`)."""
        magic, version, flags, seq_len, n, names, names_len = _HEADER.unpack_from(frame)
        assert magic == b"YWPF", magic
        assert version == 1, version
        at = _HEADER.size
        seq = frame[at : at + seq_len].decode("ascii")
        at += seq_len
        if flags & 1:
            self.names.clear()
        end = at + names_len
        for _ in range(names):
            (size,) = struct.unpack_from("<H", frame, at)
            self.names.append(frame[at + 2 : at + 2 + size].decode())
            at += 2 + size
        assert at == end
        at += -at % 8
        columns = {}
        for name, code, width in (
            ("received", "d", 8), ("device", "I", 4), ("lon", "i", 4), ("lat", "i", 4),
            ("fix_at", "I", 4), ("acc", "f", 4), ("cog", "f", 4), ("status", "B", 1),
        ):  # fmt: skip
            columns[name] = struct.unpack_from(f"<{n}{code}", frame, at)
            at += n * width
        assert at == len(frame), (at, len(frame))
        rows = []
        for k in range(n):
            status = columns["status"][k]
            rows.append(
                [
                    self.names[columns["device"][k]],
                    columns["lon"][k] / 1e7,
                    columns["lat"][k] / 1e7,
                    columns["fix_at"][k],
                    columns["acc"][k] if status & 1 else None,
                    columns["cog"][k] if status & 2 else None,
                    columns["received"][k] if status & 4 else None,
                ]
            )
        return seq, rows
