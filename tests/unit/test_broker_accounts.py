"""What each broker role allows (pure ACL data), the registration budget, the binding check
and which account each of the center's clients logs in with."""

from __future__ import annotations

import pytest

from devices.quality import Reason, Rejection
from devices.registry import Binding, RegistrationBudget, UnknownDevicePolicy, resolve
from devices.topics import TopicError, parse_topic
from dispatch.broker_accounts import (
    Acl,
    BrokerAccountError,
    Worker,
    check_topic_level,
    device_acls,
    worker_acls,
)
from dispatch.settings import Settings


def test_a_device_role_names_only_its_own_topics() -> None:
    base = "owntracks/zhang3/BC-1"
    assert device_acls("owntracks", "zhang3", "BC-1") == [
        Acl("publishClientSend", base),
        Acl("publishClientSend", f"{base}/+"),
        Acl("publishClientSend", f"{base}/cmd", allow=False, priority=1),
        Acl("publishClientSend", f"{base}/dispatch", allow=False, priority=1),
        Acl("subscribeLiteral", f"{base}/cmd"),
        Acl("subscribeLiteral", f"{base}/dispatch"),
    ]


def test_worker_roles() -> None:
    assert [a.topic for a in worker_acls(Worker.INGEST, "ot")] == [
        "$share/ingest/ot/#",
        "$SYS/broker/publish/messages/dropped",
    ]
    assert worker_acls(Worker.DELIVERY, "ot") == [
        Acl("publishClientSend", "ot/+/+/cmd"),
        Acl("publishClientSend", "ot/+/+/dispatch"),
    ]
    assert {a.kind for a in worker_acls(Worker.SIMULATOR, "ot")} == {
        "publishClientSend",
        "subscribePattern",
    }


@pytest.mark.parametrize("level", ["", "a/b", "+", "x#", "$SYS"])
def test_a_name_that_is_not_one_topic_level_gets_no_account(level: str) -> None:
    with pytest.raises(BrokerAccountError, match="cannot be an MQTT topic level"):
        check_topic_level("device", level)


def test_registrations_are_rationed_and_refill() -> None:
    budget = RegistrationBudget(per_min=3)
    assert [budget.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not budget.take(110.0)  # 10 s refill half a registration
    assert budget.take(120.0)
    refusal = budget.refusal("li4", "X-9")
    assert refusal.reason is Reason.REGISTRATION_LIMIT
    assert "yiwang devices bind li4/X-9 --team TEAM" in refusal.detail


def test_a_topic_that_does_not_match_the_binding_is_refused_whatever_the_policy() -> None:
    bindings = {"BC-1": Binding("BC-1", "zhang3", "t1")}
    for policy in UnknownDevicePolicy:
        assert resolve(bindings, "li4", "BC-1", policy) == Rejection(
            Reason.WRONG_OFFICER,
            "device 'BC-1' is bound to officer 'zhang3' but published as 'li4'",
        )
        assert resolve(bindings, "zhang3", "BC-1", policy) == bindings["BC-1"]
    unknown = resolve(bindings, "li4", "BC-2", UnknownDevicePolicy.QUARANTINE)
    assert isinstance(unknown, Rejection) and unknown.reason is Reason.UNKNOWN_DEVICE


def test_overlong_topic_levels_are_not_device_names() -> None:
    with pytest.raises(TopicError, match="at most 64"):
        parse_topic("owntracks", f"owntracks/{'x' * 65}/d")


def test_each_worker_logs_in_with_its_own_account_else_the_shared_one() -> None:
    settings = Settings(
        _env_file=None,
        mqtt_username="shared",
        mqtt_password="hunter2",
        ingest_mqtt_username="ing",
        ingest_mqtt_password="i",
        mqtt_tls_ca="/etc/ca.crt",
    )
    ingest = settings.broker_login("ingest")
    assert (ingest.username, ingest.password, ingest.tls_ca) == ("ing", "i", "/etc/ca.crt")
    delivery = settings.broker_login("delivery")
    assert (delivery.username, delivery.password) == ("shared", "hunter2")
    assert "hunter2" not in repr(delivery)
    assert Settings(_env_file=None).unknown_devices is UnknownDevicePolicy.QUARANTINE
