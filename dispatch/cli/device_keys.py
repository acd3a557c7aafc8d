"""Devices' keys for the HTTP channels (`yiwang devices issue-http-key | revoke-http-key`):
what a Traccar Client or OsmAnd phone sends with each position to /api/osmand."""

from __future__ import annotations

import sys
import time
from urllib.parse import quote

from devices.osmand import key_digest, new_device_key
from dispatch.store import Store


def issue_http_key(store: Store, key: str, server_url: str) -> int:
    """Issue (or replace) the HTTP key of the device bound as `key`; prints it once."""
    binding = store.registry.binding(key)
    if binding is None:
        print(
            f"device {key!r} is not bound; bind it first with `yiwang devices bind {key} ...`",
            file=sys.stderr,
        )
        return 1
    secret = new_device_key()
    store.registry.record_http_key(key, key_digest(secret), issued_at=time.time())
    url = f"{server_url.rstrip('/')}/api/osmand?key={quote(secret)}"
    print(
        f"HTTP key of device {key} (officer {binding.officer}). It is shown once: hand it over "
        "now; a key issued before no longer works.\n"
        f"  key  {secret}\n"
        "Traccar Client, Settings:\n"
        f"  Device identifier  {key}\n"
        f"  Server URL         {url}\n"
        "OsmAnd, Trip recording → Online tracking → Web address:\n"
        f"  {url}&id={quote(key)}&lat={{0}}&lon={{1}}&timestamp={{2}}&hdop={{3}}"
        "&altitude={4}&speed={5}"
    )
    return 0


def revoke_http_key(store: Store, key: str) -> int:
    if not store.registry.revoke_http_key(key):
        print(f"device {key!r} holds no HTTP key", file=sys.stderr)
        return 1
    print(f"{key}: HTTP key revoked; its positions are refused from now on")
    return 0
