"""How many live feed connections this API node holds, in all and per client address."""

from __future__ import annotations

from collections import Counter

# RFC 6455 1013 "try again later": the screen may reconnect once others have left.
TRY_AGAIN_LATER = 1013


class ConnectionLimits:
    """Admits a connection while both bounds allow it; every admitted one is released once."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self.open: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """None when admitted, else why not, for a person to read."""
        if self.open.total() >= self.total:
            return f"the live feed is full ({self.total} connections); try again later"
        if self.open[address] >= self.per_address:
            return (
                f"too many live feed connections from {address} ({self.per_address}); "
                "close some screens"
            )
        self.open[address] += 1
        return None

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
