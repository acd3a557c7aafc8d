"""What the center keeps per JT/T 808 terminal, and the port to where it is kept.

A terminal is known by its phone number (the header's BCD digits, leading zeros kept); that
number is its serial in the device registry, which says which officer carries it. Beside the
binding the center keeps the auth code it issued at registration, the datum the terminal
reports in (the standard names none: WGS-84 or GCJ-02 depends on the vendor) and its clock's
offset from UTC (Beijing time by the standard, not always in practice).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, replace
from typing import Protocol

from devices.jt808.messages import BEIJING_UTC_OFFSET_S
from gis.coords import Datum


@dataclass(frozen=True, slots=True)
class Terminal:
    phone: str
    auth_code: str = ""  # empty until the terminal registers
    crs: Datum = Datum.WGS84
    utc_offset_s: int = BEIJING_UTC_OFFSET_S
    registered_at: float | None = None
    model: str = ""
    plate: str = ""

    def registered(self, auth_code: str, *, at: float, model: str, plate: str) -> Terminal:
        return replace(self, auth_code=auth_code, registered_at=at, model=model, plate=plate)

    def accepts(self, code: str) -> bool:
        """Whether `code` is the auth code this terminal was issued (compared in constant time)."""
        return bool(self.auth_code) and hmac.compare_digest(self.auth_code.encode(), code.encode())

    def to_json(self) -> str:
        return json.dumps(
            {
                "auth_code": self.auth_code,
                "crs": self.crs.value,
                "utc_offset_s": self.utc_offset_s,
                "registered_at": self.registered_at,
                "model": self.model,
                "plate": self.plate,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, phone: str, text: str) -> Terminal:
        data = json.loads(text)
        return cls(
            phone,
            auth_code=data.get("auth_code", ""),
            crs=Datum(data.get("crs", Datum.WGS84.value)),
            utc_offset_s=int(data.get("utc_offset_s", BEIJING_UTC_OFFSET_S)),
            registered_at=data.get("registered_at"),
            model=data.get("model", ""),
            plate=data.get("plate", ""),
        )


class TerminalBook(Protocol):
    """Where terminals' records live; `dispatch.store` satisfies it."""

    def terminal(self, phone: str) -> Terminal | None:
        """The record of `phone`, or None before it was configured or registered."""

    def save(self, terminal: Terminal) -> None:
        """Add or replace the record of `terminal.phone`."""

    def officer_of(self, phone: str) -> str | None:
        """The officer the registry binds the serial `phone` to, or None if it is unbound."""
