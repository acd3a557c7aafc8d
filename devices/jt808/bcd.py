"""Packed BCD, two decimal digits a byte: terminal phone numbers and report times."""

from __future__ import annotations

from devices.jt808.errors import Jt808Error, Reason


def decode_bcd(data: bytes) -> str:
    """The digits of `data`; raise Jt808Error for a nibble that is not a decimal digit."""
    digits = data.hex()
    if not digits.isdigit():
        raise Jt808Error(Reason.BAD_BODY, f"BCD {digits!r} holds a nibble that is not a digit")
    return digits


def encode_bcd(digits: str, size: int) -> bytes:
    """`digits` as `size` bytes, padded with leading zeros."""
    if not digits.isascii() or not digits.isdigit() or len(digits) > 2 * size:
        raise Jt808Error(Reason.BAD_BODY, f"{digits!r} is not at most {2 * size} decimal digits")
    return bytes.fromhex(digits.rjust(2 * size, "0"))
