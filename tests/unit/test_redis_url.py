"""Reading Redis URLs: one server as redis-py reads it, or a primary through Sentinel."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dispatch.settings import Settings
from dispatch.store import Durability, NotReplicated, RedisUrlError, without_password
from dispatch.store.connect import SentinelTarget, sentinel_target


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    assert sentinel_target(
        "redis+sentinel://:s%40cret@10.0.0.1:26379,sentinel-2:26380/yiwang/3"
    ) == (SentinelTarget((("10.0.0.1", 26379), ("sentinel-2", 26380)), "yiwang", 3, None, "s@cret"))


def test_a_sentinel_url_without_credentials_or_database_uses_database_0() -> None:
    target = sentinel_target("redis+sentinel://127.0.0.1:26379/center")
    assert target == SentinelTarget((("127.0.0.1", 26379),), "center", 0, None, None)


def test_a_user_and_password_are_both_read() -> None:
    target = sentinel_target("redis+sentinel://yiwang:pw@h:1/s")
    assert target is not None
    assert (target.username, target.password) == ("yiwang", "pw")


def test_a_plain_url_is_left_to_redis_py() -> None:
    assert sentinel_target("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:hunter2@h:26379",  # no service
        "redis+sentinel://:hunter2@h/yiwang",  # no port
        "redis+sentinel://:hunter2@h:0/yiwang",
        "redis+sentinel://:hunter2@h:26379/yiwang/x",
    ],
)
def test_an_unreadable_sentinel_url_says_the_form_and_never_the_password(url: str) -> None:
    with pytest.raises(RedisUrlError) as caught:
        sentinel_target(url)
    assert "hunter2" not in str(caught.value)
    assert "redis+sentinel://" in str(caught.value) or "host:port" in str(caught.value)


def test_settings_refuse_an_unreadable_redis_url_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="YIWANG_REDIS_URL"):
        Settings(redis_url="redis+sentinel://:pw@nowhere/")


def test_a_url_for_a_log_line_hides_its_password() -> None:
    assert without_password("redis+sentinel://:pw@a:1,b:2/yiwang") == (
        "redis+sentinel://a:1,b:2/yiwang"
    )
    assert without_password("postgresql://u:pw@h:5432/db") == "postgresql://u@h:5432/db"
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_write_confirmed_by_too_few_replicas_is_not_stored() -> None:
    Durability(1).confirm(1)
    Durability(0).confirm(0)
    with pytest.raises(NotReplicated, match="0 of 2 Redis replicas"):
        Durability(2, timeout_ms=50).confirm(0)
