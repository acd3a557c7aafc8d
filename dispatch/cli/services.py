"""The running demo's services file, and which Redis, broker and PostgreSQL a command uses.

`yiwang demo` starts its daemons on free ports; it writes where they are, and the accounts its
workers log in with, to `<data_dir>/demo/services.json` and removes the file on a clean stop.
Every other command reads it: a setting the user gave (a YIWANG_* variable or `.env`) wins,
else the running demo's, else the default. Each command says on stderr which services it uses
and why, so none talks to the wrong ones unnoticed. A file whose services do not answer is
left by a demo that did not stop cleanly: it is ignored, with a note.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import TypeAdapter

from dispatch.settings import Settings
from dispatch.store import without_password

SERVICES_FILE = Path("demo") / "services.json"

# The broker's accounts and topic root mean something on the demo's broker only: they are
# taken with its address or not at all.
_BROKER = ("mqtt_host", "mqtt_port")
_BROKER_ACCOUNTS = (
    "topic_root",
    "broker_admin_username",
    "broker_admin_password",
    "ingest_mqtt_username",
    "ingest_mqtt_password",
    "delivery_mqtt_username",
    "delivery_mqtt_password",
    "simulator_mqtt_username",
    "simulator_mqtt_password",
)
# Each taken on its own, unless the user set it; the city lets `users add --scope` and the
# reports name the demo's areas.
_SINGLE = (
    "redis_url",
    "key_prefix",
    "database_url",
    "areas_file",
    "roster_file",
    "streets_file",
    "basemap_file",
)
RECORDED_FIELDS = (*_SINGLE, *_BROKER, *_BROKER_ACCOUNTS)

_PROBE_TIMEOUT_S = 0.5
DEMO = "the running demo's"


def services_path(data_dir: Path) -> Path:
    return data_dir / SERVICES_FILE


def write_services(path: Path, settings: Settings, http_base: str) -> None:
    """Record the demo's services (readable by its owner only: it holds passwords)."""
    recorded = {
        name: str(value) if isinstance(value, Path) else value
        for name in RECORDED_FIELDS
        if (value := getattr(settings, name)) is not None
    }
    document = {"pid": os.getpid(), "http": http_base, "settings": recorded}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def read_services(path: Path) -> dict[str, Any] | None:
    """The recorded settings, or None without a file (or with one no demo could have written)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recorded = document.get("settings") if isinstance(document, dict) else None
    return recorded if isinstance(recorded, dict) else None


@dataclass(frozen=True)
class Choice:
    """The settings a command runs with, and the line that says where they point and why."""

    settings: Settings
    taken: frozenset[str]  # the settings that come from the demo
    line: str


def choose_services(settings: Settings, recorded: Mapping[str, Any] | None) -> Choice:
    """Take from the demo's `recorded` settings every one the user did not set. Pure."""
    explicit = settings.model_fields_set
    taken: dict[str, Any] = {}
    if recorded is not None:
        names = [*_SINGLE]
        if not explicit & set(_BROKER):
            names += [*_BROKER, *_BROKER_ACCOUNTS]
        for name in names:
            if name in recorded and name not in explicit:
                annotation: Any = Settings.model_fields[name].annotation
                taken[name] = TypeAdapter(annotation).validate_python(recorded[name])
    chosen = settings.model_copy(update=taken)
    line = (
        f"Redis {without_password(chosen.redis_url)} ({_why(('redis_url',), explicit, taken)}), "
        f"broker {chosen.mqtt_host}:{chosen.mqtt_port} ({_why(_BROKER, explicit, taken)}), "
        f"PostgreSQL {without_password(chosen.database_url)} "
        f"({_why(('database_url',), explicit, taken)})"
    )
    return Choice(chosen, frozenset(taken), line)


def _why(names: tuple[str, ...], explicit: Set[str], taken: Mapping[str, Any]) -> str:
    given = [f"YIWANG_{name.upper()}" for name in names if name in explicit]
    if given:
        return ", ".join(given)
    return DEMO if any(name in taken for name in names) else "default"


def silent_services(recorded: Mapping[str, Any]) -> list[str]:
    """The recorded services that do not answer on loopback, each as `name host:port`."""
    silent = []
    for name, host, port, hello, expect in _probes(recorded):
        if not _answers(host, port, hello, expect):
            silent.append(f"{name} {host}:{port}")
    return silent


def _probes(recorded: Mapping[str, Any]) -> list[tuple[str, str, int, bytes, bytes]]:
    probes = []
    for name, field, hello, expect in (
        # Redis says +PONG once it has loaded its data; the others just accept the connection.
        ("Redis", "redis_url", b"PING\r\n", b"+PONG"),
        ("PostgreSQL", "database_url", b"", b""),
    ):
        if field in recorded:
            parts = urlsplit(str(recorded[field]))
            probes.append((name, parts.hostname or "127.0.0.1", parts.port or 0, hello, expect))
    if "mqtt_port" in recorded:
        host = str(recorded.get("mqtt_host", "127.0.0.1"))
        probes.append(("broker", host, int(recorded["mqtt_port"]), b"", b""))
    return probes


def _answers(host: str, port: int, hello: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S) as sock:
            if hello:
                sock.sendall(hello)
                return sock.recv(64).startswith(expect)
            return True
    except OSError:
        return False


def running_demo(path: Path) -> bool:
    """Whether a demo's services file is there and its services answer."""
    recorded = read_services(path)
    return recorded is not None and not silent_services(recorded)


def settings_for_command(settings: Settings, err: TextIO) -> Settings:
    """The settings a command runs with; says on `err` which services and why."""
    path = services_path(settings.data_dir)
    recorded = read_services(path)
    if recorded is not None and choose_services(settings, recorded).taken:
        silent = silent_services(recorded)
        if silent:
            print(
                f"yiwang: ignoring {path}: {', '.join(silent)} not answering "
                "(left by a demo that did not stop cleanly)",
                file=err,
            )
            recorded = None
    choice = choose_services(settings, recorded)
    print(f"yiwang: {choice.line}", file=err, flush=True)
    return choice.settings
