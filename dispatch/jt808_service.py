"""The JT/T 808 gateway as a worker: its listener, a batch writer of its own over the ingest's
store path, and the delivery of orders to the terminals connected to it, on one event loop.

`yiwang jt808` runs it alone; `yiwang serve` and the demo run it on a thread beside the other
workers when `YIWANG_JT808_PORT` is set (0, the default there, runs none). The terminals'
traffic then has a loop of its own and never waits behind the API's requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from zoneinfo import ZoneInfo

from devices.batch import BatchWriter
from devices.jt808_gateway import GatewayConfig, Jt808Gateway
from dispatch.city import City
from dispatch.jt808_delivery import TerminalOrders
from dispatch.settings import Settings
from dispatch.store import Store

log = logging.getLogger(__name__)

CHANNEL = "jt808"
# How often a gateway on a worker thread looks whether the process is stopping.
_STOP_POLL_S = 0.2


class Jt808Service:
    def __init__(
        self, settings: Settings, store: Store, city: City | None, *, host: str, port: int
    ) -> None:
        self.settings = settings
        self.store = store
        self.city = city
        self.host = host
        self.port = port
        self.listening = threading.Event()
        # Where it listens once `listening` is set (the port chosen, when 0 was asked for).
        self.address: tuple[str, int] | None = None

    async def serve(self, stopping: asyncio.Event) -> None:
        """Listen and deliver orders until `stopping` is set, then close every connection."""
        settings = self.settings
        config = settings.ingest_config(self.city)
        gateway = Jt808Gateway(
            BatchWriter(self.store.ingest, config, clock=settings.clock(), channel=CHANNEL),
            self.store.terminals,
            GatewayConfig(
                root=config.root, batch_max=config.batch_max, batch_wait_s=config.batch_wait_s
            ),
        )
        orders = TerminalOrders(
            self.store, gateway, group=settings.jt808_gateway_id, zone=ZoneInfo(settings.timezone)
        )
        server = await gateway.start(self.host, self.port)
        self.address = server.sockets[0].getsockname()[:2]
        self.listening.set()
        delivering = asyncio.create_task(orders.run(stopping))
        try:
            await stopping.wait()
            await delivering
        finally:
            self.listening.clear()
            await gateway.stop(server)

    def run(self, stop: threading.Event) -> None:
        """Serve on this thread's own event loop until `stop` is set. A port it cannot listen
        on is logged and ends the worker, never the process that runs it."""
        try:
            asyncio.run(self._serve_until(stop))
        except OSError as exc:
            log.error("jt808 gateway cannot listen on %s:%d: %s", self.host, self.port, exc)

    async def _serve_until(self, stop: threading.Event) -> None:
        stopping = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(_STOP_POLL_S)
            stopping.set()

        watcher = asyncio.create_task(watch())
        try:
            await self.serve(stopping)
        finally:
            watcher.cancel()
