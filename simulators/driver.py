"""Runs a simulated city against a real center: MQTT for the devices, HTTP for the people.

Devices publish through one multiplexed connection whose ledger lists everything the broker
acknowledged; orders come back on `/dispatch`. Citizens' reports and the simulated
dispatcher's actions go through the REST API like any client's. The clock is the center's
(`now()`), so the same driver runs at real speed in the demo and accelerated in a scenario.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from simulators.city import CityModel
from simulators.faults import FaultInjector
from simulators.incidents import DispatcherBot, IncidentArrivals, Report
from simulators.publisher import Publisher

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """The center's API refused a request; the text has the status and the reason."""


@dataclass
class Api:
    base: str
    token: str  # a bearer token of an account allowed to report and dispatch

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise ApiError(
                f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}"
            ) from None


@dataclass
class CityDriver:
    model: CityModel
    api: Api
    publisher: Publisher
    root: str
    now: Callable[[], float]
    broker: tuple[str, int]
    login: tuple[str, str] | None = None  # (username, password) allowed to read orders
    arrivals: IncidentArrivals | None = None
    faults: FaultInjector | None = None
    dispatcher: DispatcherBot | None = None
    tick_s: float = 0.1
    errors: list[str] = field(default_factory=list)
    _orders: queue.Queue[tuple[str, dict[str, Any]]] = field(default_factory=queue.Queue)

    def report(self, report: Report) -> str:
        """Open an incident through the API; returns its id."""
        return str(self.api.call("POST", "/api/incidents", report.body())["incident"])

    def run(
        self,
        stop: threading.Event,
        *,
        until: float | None = None,
        script: Callable[[float], None] | None = None,
    ) -> None:
        """Advance the city every tick until `stop` is set or the clock passes `until`."""
        terminals = self._subscribe()
        next_poll = 0.0
        try:
            while not stop.is_set():
                now = self.now()
                if until is not None and now >= until:
                    break
                if script is not None:
                    script(now)
                self._tick(now)
                if self.dispatcher is not None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + 0.25
                    self._dispatch(now)
                stop.wait(self.tick_s)
        finally:
            terminals.disconnect()
            terminals.loop_stop()
            self.publisher.wait_acknowledged()

    def _subscribe(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{self.publisher.client_id}-terminals",
            protocol=mqtt.MQTTv5,
        )

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            try:
                self._orders.put((message.topic.split("/")[-3], json.loads(message.payload)))
            except ValueError:
                log.warning("unreadable order on %s", message.topic)

        if self.login is not None:
            client.username_pw_set(*self.login)
        client.on_message = on_message
        ready = threading.Event()
        refused: list[str] = []

        def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, reasons: list, _p: object) -> None:
            refused.extend(str(r) for r in reasons if r.is_failure)
            ready.set()

        client.on_subscribe = on_subscribe
        client.connect(*self.broker)
        client.subscribe(f"{self.root}/+/+/dispatch", qos=1)
        client.loop_start()
        if not ready.wait(10) or refused:
            raise ApiError(
                f"no subscription to orders on {self.broker[0]}:{self.broker[1]} "
                f"({', '.join(refused) or 'no answer'}): log in with the simulator's account"
            )
        return client

    def _tick(self, now: float) -> None:
        messages = []
        while not self._orders.empty():
            officer, payload = self._orders.get_nowait()
            messages += self.model.deliver(officer, payload, now)
        messages += self.model.step(now)
        if self.faults is not None:
            messages = self.faults.apply(messages, now)
        for message in messages:
            self.publisher.publish(message.topic(self.root), message.payload)
        if self.arrivals is not None:
            for report in self.arrivals.due(now):
                self._try(lambda r=report: self.report(r))

    def _dispatch(self, now: float) -> None:
        assert self.dispatcher is not None
        try:
            incidents = self.api.call("GET", "/api/incidents")
        except (ApiError, OSError) as exc:
            self.errors.append(f"listing incidents: {exc}")
            return
        for incident_id, action in self.dispatcher.actions(incidents, now):
            self._try(lambda i=incident_id, a=action: self._act(i, a))

    def _act(self, incident_id: str, action: str) -> None:
        path = f"/api/incidents/{incident_id}"
        if action == "close":
            self.api.call("POST", f"{path}/close", {"reason": "处置完毕"})
            return
        if action == "dispatch":
            self.api.call("POST", f"{path}/acknowledge", {})
        best = self.api.call("GET", f"{path}/recommendations?k=1")
        if best:
            self.api.call("POST", f"{path}/assign", {"officers": [best[0]["officer"]]})

    def _try(self, call: Callable[[], object]) -> None:
        # The center may refuse an action that a race made moot (409); the city goes on.
        try:
            call()
        except (ApiError, OSError) as exc:
            self.errors.append(str(exc))
            log.info("%s", exc)
