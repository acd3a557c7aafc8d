"""JT/T 808 terminals' records (auth code, datum, clock offset), one hash keyed by phone
number; the officer comes from the device registry, where the phone number is a serial.

`TerminalStore` is the Redis `devices.jt808.terminals.TerminalBook`.
"""

from __future__ import annotations

import redis

from devices.jt808.terminals import Terminal
from devices.registry import Binding
from dispatch.store.keys import Keys


class TerminalStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def terminal(self, phone: str) -> Terminal | None:
        text = self.redis.hget(self.keys.jt808_terminals, phone)
        return None if text is None else Terminal.from_json(phone, text)

    def save(self, terminal: Terminal) -> None:
        self.redis.hset(self.keys.jt808_terminals, terminal.phone, terminal.to_json())

    def officer_of(self, phone: str) -> str | None:
        text = self.redis.hget(self.keys.registry, phone)
        return None if text is None else Binding.from_json(phone, text).officer
