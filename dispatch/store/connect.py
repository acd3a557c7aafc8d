"""Connecting to Redis by URL: one server (`redis://`, `rediss://`, `unix://`, read by
redis-py) or the primary of a monitored group found through Sentinel:

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]

With Sentinel every new connection asks the sentinels for the current primary, and a
connection to a primary that became a replica is dropped, so a fail-over costs a client one
failed command (a `redis.ConnectionError`), never a restart. The password authenticates to
the Redis servers; the sentinels are asked without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

SENTINEL_SCHEME = "redis+sentinel://"
# Sentinels answer at once or not at all: a dead one is skipped quickly for the next.
_SENTINEL_TIMEOUT_S = 0.5
_URL = re.compile(
    r"redis\+sentinel://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<hosts>[^/@]+)/(?P<service>[^/]+)(?:/(?P<db>\d+))?/?"
)


class RedisUrlError(ValueError):
    """A Redis URL that cannot be read; the message never repeats the URL (it may hold a
    password)."""


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service: str  # the name the sentinels monitor the primary under
    db: int
    username: str | None
    password: str | None


def sentinel_target(url: str) -> SentinelTarget | None:
    """What a `redis+sentinel://` URL names; None for any other URL."""
    if not url.startswith(SENTINEL_SCHEME):
        return None
    match = _URL.fullmatch(url)
    if match is None:
        raise RedisUrlError(
            "a Sentinel URL reads redis+sentinel://[:password@]host:port[,host:port]/service[/db]"
        )
    sentinels = tuple(_host_port(part) for part in match["hosts"].split(","))
    return SentinelTarget(
        sentinels,
        match["service"],
        int(match["db"] or 0),
        unquote(match["user"] or "") or None,
        unquote(match["password"]) if match["password"] is not None else None,
    )


def connect(url: str) -> redis.Redis:
    """A client of the server, or of the current primary, that `url` names."""
    target = sentinel_target(url)
    if target is None:
        return redis.Redis.from_url(url, decode_responses=True)
    sentinel = redis.sentinel.Sentinel(
        list(target.sentinels), socket_timeout=_SENTINEL_TIMEOUT_S, decode_responses=True
    )
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=True,
    )


def connect_async(url: str) -> aioredis.Redis:
    """`connect` for asyncio."""
    target = sentinel_target(url)
    if target is None:
        return aioredis.Redis.from_url(url, decode_responses=True)
    sentinel = aiosentinel.Sentinel(
        list(target.sentinels), socket_timeout=_SENTINEL_TIMEOUT_S, decode_responses=True
    )
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=True,
    )


def without_password(url: str) -> str:
    """`url` fit for a log line or a banner: any password left out (and the `@` with it
    when there is no user name either)."""
    return re.sub(
        r"://([^:@/]*):[^@/]*@",
        lambda m: f"://{m[1]}@" if m[1] else "://",
        url,
        count=1,
    )


def _host_port(part: str) -> tuple[str, int]:
    host, _, port = part.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RedisUrlError(f"a sentinel is host:port, with a port from 1 to 65535 (got {part!r})")
    return host, int(port)
