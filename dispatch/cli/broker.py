"""Commands for broker accounts: the center's workers' (`yiwang broker setup`) and devices'
(`yiwang devices issue-credentials | revoke-credentials`, `bind --issue-credentials`,
`register-sensor --issue-credentials`)."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time

from devices.registry import Binding, CredentialRecord, split_binding_key
from devices.topics import SENSOR_LEVEL, Channel, sensor_topic
from dispatch.broker_accounts import BrokerAccountError, BrokerAccounts, Worker
from dispatch.settings import Settings
from dispatch.store import Store
from dispatch.store.sensors import sensor_device

# What a device connects to: the TLS listener of deploy/mosquitto.conf.
DEVICE_PORT = 8883


def _accounts(settings: Settings) -> BrokerAccounts:
    if not settings.broker_admin_password:
        raise BrokerAccountError(
            "set YIWANG_BROKER_ADMIN_PASSWORD (and YIWANG_BROKER_ADMIN_USERNAME if not 'admin') "
            "to the broker's dynamic-security admin account"
        )
    return BrokerAccounts(settings.broker_login("admin"), settings.topic_root)


def issue_credentials(settings: Settings, store: Store, key: str, broker_host: str) -> int:
    """Issue the account of the device bound as `key` (`USER/DEVICE` or a terminal serial,
    or `iot/SENSOR` for a registered sensor)."""
    user, device = split_binding_key(key)
    if user == SENSOR_LEVEL:
        return issue_sensor_credentials(settings, store, device, broker_host)
    binding = store.registry.bindings().get(key)
    if binding is None:
        officer = "" if "/" in key else " --officer LOGIN"
        print(
            f"device {key!r} is not bound; bind it first with "
            f"`yiwang devices bind {key}{officer} --team TEAM --issue-credentials`",
            file=sys.stderr,
        )
        return 1
    password = secrets.token_urlsafe(18)
    with _accounts(settings) as accounts:
        accounts.issue_device(binding.key, binding.officer, binding.device, password)
    store.registry.record_credentials(
        CredentialRecord(binding.key, binding.key, binding.officer, issued_at=time.time())
    )
    print(owntracks_instructions(settings.topic_root, binding, password, broker_host))
    return 0


def issue_sensor_credentials(
    settings: Settings, store: Store, sensor_id: str, broker_host: str
) -> int:
    """Issue the account of a registered sensor, named as its device key `iot/SENSOR`."""
    if store.sensors.sensor(sensor_id) is None:
        print(
            f"sensor {sensor_id!r} is not registered; register it first with "
            f"`yiwang devices register-sensor {sensor_id} --type TYPE --lon LON --lat LAT`",
            file=sys.stderr,
        )
        return 1
    username = sensor_device(sensor_id)
    password = secrets.token_urlsafe(18)
    with _accounts(settings) as accounts:
        accounts.issue_sensor(username, sensor_id, password)
    store.registry.record_credentials(
        CredentialRecord(username, username, SENSOR_LEVEL, issued_at=time.time())
    )
    root = settings.topic_root
    print(
        f"Broker credentials of sensor {sensor_id}. They are shown once: hand them over now.\n"
        f"  host      {broker_host}:{DEVICE_PORT} (TLS)\n"
        f"  username  {username}\n"
        f"  password  {password}\n"
        f"  readings  {sensor_topic(root, sensor_id, Channel.ALARM)}\n"
        f"  heartbeat {sensor_topic(root, sensor_id, Channel.HB)}"
    )
    return 0


def owntracks_instructions(root: str, binding: Binding, password: str, broker_host: str) -> str:
    """The credentials once, and the OwnTracks settings that publish where the ACL allows."""
    base = f"{root}/{binding.officer}/{binding.device}"
    username = binding.key
    otrc = {
        "_type": "configuration",
        "mode": 0,  # MQTT
        "host": broker_host,
        "port": DEVICE_PORT,
        "tls": True,
        "username": username,
        "password": password,
        "deviceId": binding.device,
        "tid": binding.device[-2:],
        "pubTopicBase": base,
        "subTopic": f"{base}/cmd",
        "pubQos": 1,
        "cmd": True,
    }
    return (
        f"Broker credentials of device {binding.device} (officer {binding.officer}). "
        "They are shown once: hand them over now.\n"
        f"  username  {username}\n"
        f"  password  {password}\n"
        "OwnTracks app, Preferences → Connection:\n"
        "  Mode MQTT; Host "
        f"{broker_host}; Port {DEVICE_PORT}; TLS on (install the broker's CA certificate);\n"
        f"  Username {username}; Password as above; Device ID {binding.device}; "
        f"Tracker ID {binding.device[-2:]}\n"
        "and in Preferences → Configuration management (the broker refuses any other topic):\n"
        f"  pubTopicBase {base}\n"
        f"  subTopic     {base}/cmd\n"
        "Or save this as a .otrc file and open it on the phone:\n"
        f"  {json.dumps(otrc, ensure_ascii=False)}"
    )


def revoke_credentials(settings: Settings, store: Store, key: str) -> int:
    record = store.registry.credentials(key)
    if record is None or record.revoked_at is not None:
        print(f"device {key!r} holds no broker credentials", file=sys.stderr)
        return 1
    with _accounts(settings) as accounts:
        if not accounts.revoke_device(record.username):
            print(f"the broker had no account {record.username!r}; recorded as revoked")
    store.registry.record_credentials(
        CredentialRecord(
            key, record.username, record.officer, record.issued_at, revoked_at=time.time()
        )
    )
    print(f"{key}: credentials revoked; its session is closed and its login refused")
    return 0


def follow_binding(settings: Settings, store: Store, binding: Binding) -> None:
    """A device with credentials bound to another officer may publish only under the new one."""
    record = store.registry.credentials(binding.key)
    if record is None or record.revoked_at is not None or record.officer == binding.officer:
        return
    with _accounts(settings) as accounts:
        accounts.confine_device(record.username, binding.officer, binding.device)
    store.registry.record_credentials(
        CredentialRecord(binding.key, record.username, binding.officer, record.issued_at)
    )


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    """Create or reset the accounts of the center's workers from their settings.

    Workers that share YIWANG_MQTT_USERNAME get one account holding each of their roles.
    """
    configured = 0
    with _accounts(settings) as accounts:
        for worker in Worker:
            login = settings.broker_login(worker.value)
            if login.username is None:
                continue
            if not login.password:
                print(f"{worker}: {login.username} has no password set; skipped", file=sys.stderr)
                continue
            accounts.ensure_worker(worker, login.username, login.password)
            print(f"{worker}: account {login.username} may do what the {worker} role allows")
            configured += 1
    if not configured:
        print(
            "no worker account configured: set YIWANG_INGEST_MQTT_USERNAME/PASSWORD and "
            "YIWANG_DELIVERY_MQTT_USERNAME/PASSWORD",
            file=sys.stderr,
        )
        return 1
    return 0


def add_broker_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    broker = commands.add_parser("broker", help="broker accounts of the center's workers")
    broker.add_argument(
        "action",
        choices=["setup"],
        help="setup: create or reset the ingest, delivery and simulator accounts "
        "named in YIWANG_*_MQTT_USERNAME/PASSWORD",
    )
    broker.set_defaults(func=cmd_broker)
