"""Why a JT/T 808 frame or message cannot be used: one reason code per failure."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """The value is counted in the ingest's stats as `rejected:jt808_<value>`."""

    BAD_ESCAPE = "bad_escape"
    BAD_CHECKSUM = "bad_checksum"
    TRUNCATED = "truncated"
    BAD_LENGTH = "bad_length"
    OVERSIZE = "oversize"
    OUTSIDE_FRAME = "outside_frame"
    UNKNOWN_MESSAGE = "unknown_message"
    BAD_BODY = "bad_body"
    ENCRYPTED = "encrypted"
    SUBPACKAGED = "subpackaged"


class Jt808Error(ValueError):
    """A frame or body that cannot be decoded or encoded; the message says why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
