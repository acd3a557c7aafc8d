"""Orders to JT/T 808 terminals: the engine's outbox as urgent 0x8300 texts.

Like MQTT delivery (`dispatch.delivery`) it reads the outbox, with a consumer group of its
own per gateway, since each gateway holds the connections of its own terminals. An entry is
settled once every terminal of the order's officers connected to this gateway has confirmed
its text (which is stored as the order's `received` ack) or the wait for it ran out. A
terminal connected nowhere at that moment misses the order; the officer's other devices get
it over MQTT.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import tzinfo

import msgspec

from devices.downlink import OrderNotice, order_text, withdrawal_text
from devices.jt808_gateway import Jt808Gateway
from dispatch.store import UNAVAILABLE, Store

log = logging.getLogger(__name__)


class TerminalOrders:
    def __init__(self, store: Store, gateway: Jt808Gateway, *, group: str, zone: tzinfo) -> None:
        self.store = store
        self.gateway = gateway
        self.group = group
        self.zone = zone

    async def run(self, stop: asyncio.Event) -> None:
        outbox = self.store.incidents
        while not stop.is_set():
            try:
                await asyncio.to_thread(outbox.ensure_outbox_group, self.group)
                for unsettled in (True, False):
                    entries = await asyncio.to_thread(
                        lambda u=unsettled: outbox.read_outbox(
                            unsettled=u, block_ms=1000, group=self.group
                        )
                    )
                    for entry_id, fields in entries:
                        await self._deliver(fields)
                        await asyncio.to_thread(outbox.settle_outbox, entry_id, self.group)
            except UNAVAILABLE as exc:
                log.error("jt808 order delivery lost Redis (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _deliver(self, fields: dict[str, str]) -> None:
        if fields.get("action") == "send":
            notice = msgspec.json.decode(fields["notice"], type=OrderNotice)
            text, order, officers = order_text(notice, self.zone), notice.order_id, notice.officers
        elif fields.get("action") == "withdraw":
            withdrawal = msgspec.json.decode(fields["withdrawal"])
            text = withdrawal_text(withdrawal["order"], withdrawal.get("reason", ""))
            order, officers = None, tuple(withdrawal["officers"])
        else:
            return
        phones = [
            device
            for officer in officers
            for device in await asyncio.to_thread(self.store.registry.devices_of, officer)
            if self.gateway.connected(device)
        ]
        await asyncio.gather(*(self.gateway.deliver(p, text, order_id=order) for p in phones))
