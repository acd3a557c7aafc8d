"""The broker's accounts: who may log in, and which topics each may publish and subscribe to.

Mosquitto's dynamic-security plugin holds the accounts (usernames with password hashes) and
their roles (ACLs), applies a change at once and disconnects a deleted account's session.
This module is the only one that speaks its control API (`$CONTROL/dynamic-security/v1`);
the ACLs are built by the pure functions at the top, so tests can read what each role allows.

Each device has its own account and its own role naming its topics explicitly, rather than a
shared role with `%u`: a device's topics carry its officer *and* its name, a username can
stand for only one of them, and two devices of one officer must not share an account (revoking
a lost phone must leave the officer's body camera connected). The account is named as the
registry keys the device's binding: the serial of a terminal, `user/device` for a pair (ten
officers' phones named `phone` are ten accounts). An explicit role says exactly
`{root}/{officer}/{device}`, is rewritten when the device is bound to another officer, and
goes with the account. An IoT sensor's account (`iot/{sensor}`) may publish its two topics,
`{root}/iot/{sensor}/alarm` and `/hb`, and read nothing.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import paho.mqtt.client as mqtt

from devices.batch import BROKER_DROPPED_TOPIC
from devices.broker import BrokerLogin
from devices.registry import level_problem
from devices.topics import INGEST_GROUP, SENSOR_UPLINK, Channel, device_topic, sensor_topic

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
_TIMEOUT_S = 10.0


class Worker(StrEnum):
    """The center's own broker accounts, one role each."""

    INGEST = "ingest"  # reads every device's uplink through the shared subscription
    DELIVERY = "delivery"  # writes orders to devices' /cmd and /dispatch
    SIMULATOR = "simulator"  # plays every device of a simulated city or a replayed feed


@dataclass(frozen=True, slots=True)
class Acl:
    kind: str  # publishClientSend | subscribeLiteral | subscribePattern | ...
    topic: str
    allow: bool = True
    priority: int = 0

    def command(self) -> dict[str, Any]:
        return {
            "acltype": self.kind,
            "topic": self.topic,
            "allow": self.allow,
            "priority": self.priority,
        }


class BrokerAccountError(RuntimeError):
    """The broker refused or did not answer an account change; the text says what to do."""


class CredentialsExistError(BrokerAccountError):
    """The device already has an account."""


def device_role(username: str) -> str:
    return f"device:{username}"


def worker_role(worker: Worker, root: str) -> str:
    return f"{worker}@{root}"


def check_topic_level(name: str, value: str) -> None:
    """Refuse an officer login or device name that cannot be one topic level (so one ACL)."""
    problem = level_problem(name, value)
    if problem:
        raise BrokerAccountError(problem)


def device_acls(root: str, officer: str, device: str) -> list[Acl]:
    """Publish under the device's own topic and one level below; read only its downlinks.

    Its `/cmd` and `/dispatch` are the center's to write, so no device can forge an order.
    The one-level wildcard also admits OwnTracks topics the center ignores (`/waypoint`,
    `/status`, ...), which the app publishes and would otherwise retry.
    """
    base = device_topic(root, officer, device, Channel.LOCATION)
    downlinks = [device_topic(root, officer, device, c) for c in (Channel.CMD, Channel.DISPATCH)]
    return [
        Acl("publishClientSend", base),
        Acl("publishClientSend", f"{base}/+"),
        *(Acl("publishClientSend", topic, allow=False, priority=1) for topic in downlinks),
        *(Acl("subscribeLiteral", topic) for topic in downlinks),
    ]


def sensor_acls(root: str, sensor: str) -> list[Acl]:
    """Publish the sensor's readings and heartbeats; nothing comes down to a sensor."""
    return [Acl("publishClientSend", sensor_topic(root, sensor, c)) for c in SENSOR_UPLINK]


def worker_acls(worker: Worker, root: str) -> list[Acl]:
    if worker is Worker.INGEST:
        # Only through the ingest's shared group: a worker outside it would take a share too.
        return [
            Acl("subscribePattern", f"$share/{INGEST_GROUP}/{root}/#"),
            Acl("subscribeLiteral", BROKER_DROPPED_TOPIC),
        ]
    if worker is Worker.DELIVERY:
        return [
            Acl("publishClientSend", f"{root}/+/+/{Channel.CMD}"),
            Acl("publishClientSend", f"{root}/+/+/{Channel.DISPATCH}"),
        ]
    # The simulator plays each device and each terminal, which read their downlinks.
    return [Acl("publishClientSend", f"{root}/#"), Acl("subscribePattern", f"{root}/#")]


def _create_role(name: str, acls: Iterable[Acl]) -> dict[str, Any]:
    return {"command": "createRole", "rolename": name, "acls": [a.command() for a in acls]}


class BrokerAccounts:
    """A session with the broker's dynamic-security plugin, as its admin account.

    Use as a context manager; each method sends one batch of commands and waits for the answer.
    """

    def __init__(self, admin: BrokerLogin, root: str) -> None:
        self.admin = admin
        self.root = root
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=16)
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"yiwang-accounts-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        admin.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._connected.set()
        self.client.on_message = self._on_message

    def __enter__(self) -> BrokerAccounts:
        try:
            self.client.connect(self.admin.host, self.admin.port, keepalive=30)
        except OSError as exc:
            raise BrokerAccountError(f"cannot reach the broker {self.admin!r}: {exc}") from None
        self.client.loop_start()
        if not self._connected.wait(_TIMEOUT_S) or self._refused:
            self.__exit__()
            raise BrokerAccountError(
                f"the broker {self.admin!r} refused the admin account "
                f"({self._refused or 'no answer'}): check YIWANG_BROKER_ADMIN_USERNAME and "
                "YIWANG_BROKER_ADMIN_PASSWORD"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def issue_device(self, username: str, officer: str, device: str, password: str) -> None:
        """Create the account `username` for `officer`'s device, confined to its topics."""
        check_topic_level("device", device)
        check_topic_level("officer", officer)
        self._create_client(username, password)
        self.confine_device(username, officer, device)

    def issue_sensor(self, username: str, sensor: str, password: str) -> None:
        """Create the account `username` for an IoT sensor, confined to its two topics."""
        check_topic_level("sensor", sensor)
        self._create_client(username, password)
        self._confine(username, sensor_acls(self.root, sensor))

    def confine_device(self, username: str, officer: str, device: str) -> None:
        """(Re)write the account's role for the device's current officer; its sessions obey
        at once."""
        self._confine(username, device_acls(self.root, officer, device))

    def _create_client(self, username: str, password: str) -> None:
        command = {"command": "createClient", "username": username, "password": password}
        answer = self._run([command])
        if answer[0].get("error") == "Client already exists":
            raise CredentialsExistError(
                f"device {username!r} already has broker credentials; revoke them first with "
                f"`yiwang devices revoke-credentials {username}`"
            )
        self._raise_errors(answer)

    def _confine(self, username: str, acls: list[Acl]) -> None:
        role = device_role(username)
        answer = self._run(
            [
                {"command": "deleteRole", "rolename": role},
                _create_role(role, acls),
                {"command": "addClientRole", "username": username, "rolename": role},
            ]
        )
        self._raise_errors(answer, tolerated={"Role not found"})

    def revoke_device(self, username: str) -> bool:
        """Delete the device's account and role: its session is closed, its login refused.

        False when the broker had no account by that name.
        """
        answer = self._run(
            [
                {"command": "deleteClient", "username": username},
                {"command": "deleteRole", "rolename": device_role(username)},
            ]
        )
        self._raise_errors(answer, tolerated={"Client not found", "Role not found"})
        return "error" not in answer[0]

    def ensure_worker(self, worker: Worker, username: str, password: str) -> None:
        """Create the worker's account, or reset its password and role: safe to repeat."""
        role = worker_role(worker, self.root)
        client = {
            "command": "createClient",
            "username": username,
            "password": password,
            "roles": [{"rolename": role}],
        }
        answer = self._run(
            [
                {"command": "deleteRole", "rolename": role},
                _create_role(role, worker_acls(worker, self.root)),
                client,
            ]
        )
        self._raise_errors(answer, tolerated={"Role not found", "Client already exists"})
        if answer[2].get("error"):
            answer = self._run(
                [
                    {"command": "setClientPassword", "username": username, "password": password},
                    {"command": "addClientRole", "username": username, "rolename": role},
                ]
            )
            self._raise_errors(answer)

    def _run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send one batch; the plugin answers every command in order, each with its error."""
        tag = uuid.uuid4().hex
        commands[0]["correlationData"] = tag
        info = self.client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
        info.wait_for_publish(_TIMEOUT_S)
        try:
            while True:
                responses = self._answers.get(timeout=_TIMEOUT_S)["responses"]
                if responses and responses[0].get("correlationData") == tag:
                    return list(responses)
        except queue.Empty:
            raise BrokerAccountError(
                f"the broker {self.admin!r} did not answer on {RESPONSE_TOPIC} in "
                f"{_TIMEOUT_S:.0f} s: load the dynamic-security plugin (see deploy/mosquitto.conf)"
            ) from None

    @staticmethod
    def _raise_errors(
        answer: list[dict[str, Any]], tolerated: frozenset[str] | set[str] = frozenset()
    ) -> None:
        for response in answer:
            error = response.get("error")
            if error and error not in tolerated:
                raise BrokerAccountError(f"the broker refused {response['command']}: {error}")

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: mqtt.ReasonCode,
        props: object,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._connected.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            answer = json.loads(msg.payload)
        except ValueError:
            log.warning("unreadable answer on %s", msg.topic)
            return
        try:
            self._answers.put_nowait(answer)
        except queue.Full:
            log.warning("dropped an unclaimed dynamic-security answer")
