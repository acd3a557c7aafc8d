"""Alerts in Redis: raised once by id (with their screen entry), acknowledged once, bounded.

Three keys (Keys.alerts, alerts_by_raise, alerts_by_ack): the records by id, and their ids by
raise and by acknowledgement time. Raising goes through the `raise_alert` function
(store.lua), inside the engine's step transaction or alone for the watchers; it also drops
alerts acknowledged more than KEEP_ACKNOWLEDGED_S ago and, past ALERTS_CAP, the oldest.
Acknowledging goes through `ack_alert`, which writes only if the record is still the one the
core decided on, so a storm of other alerts never makes an acknowledgement retry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from dispatch.core.alerts import (
    KEEP_ACKNOWLEDGED_S,
    Alert,
    acknowledged,
    alert_from_record,
    alert_record,
)
from dispatch.store.keys import Keys

ALERTS_CAP = 2000


class UnknownAlertError(Exception):
    """No alert has this id (never raised, or dropped since)."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(
            f"no alert {alert_id[:64]!r}: never raised, or dropped 12 h after its acknowledgement"
        )


def raise_alerts(pipe: Any, keys: Keys, alerts: Sequence[Alert], zone: str) -> None:
    """Queue the raising of `alerts` on `pipe` (a transaction, or a plain client)."""
    for alert in alerts:
        record = json.dumps(alert_record(alert, zone), ensure_ascii=False)
        pipe.fcall(
            "raise_alert",
            4,
            keys.alerts,
            keys.alerts_by_raise,
            keys.alerts_by_ack,
            keys.events,
            alert.id,
            f"{alert.raised_at:.3f}",
            record,
            ALERTS_CAP,
            f"{alert.raised_at - KEEP_ACKNOWLEDGED_S:.3f}",
        )


class AlertStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def raise_alert(self, alert: Alert, zone: str) -> bool:
        """Raise one alert outside the engine's step; False if its id was raised before."""
        pipe = self.redis.pipeline(transaction=True)
        raise_alerts(pipe, self.keys, [alert], zone)
        return bool(pipe.execute()[0])

    def alert(self, alert_id: str) -> Alert | None:
        raw = self.redis.hget(self.keys.alerts, alert_id)
        return None if raw is None else alert_from_record(json.loads(raw))

    def alerts(self, since: float = float("-inf"), until: float = float("inf")) -> list[Alert]:
        """Every alert held raised between `since` and `until`, oldest first."""
        ids = self.redis.zrangebyscore(self.keys.alerts_by_raise, since, until)
        if not ids:
            return []
        raw = self.redis.hmget(self.keys.alerts, ids)
        return [alert_from_record(json.loads(r)) for r in raw if r is not None]

    def acknowledge(self, alert_id: str, by: str, *, now: float, zone: str) -> Alert:
        """Acknowledge an alert and tell the screens; UnknownAlertError, or
        AlreadyAcknowledgedError (dispatch.core.alerts) naming the first acknowledgement. Two
        dispatchers at once: one wins, the other is refused with the winner's name."""
        raw = self.redis.hget(self.keys.alerts, alert_id)
        # Each round either writes, or reads a record that changed since: at most a refusal
        # (acknowledged meanwhile) or a drop (gone) follows.
        while True:
            if raw is None:
                raise UnknownAlertError(alert_id)
            done = acknowledged(alert_from_record(json.loads(raw)), by, now, zone=zone)
            record = json.dumps(alert_record(done, zone), ensure_ascii=False)
            written = self.redis.fcall(
                "ack_alert",
                3,
                self.keys.alerts,
                self.keys.alerts_by_ack,
                self.keys.events,
                alert_id,
                raw,
                record,
                f"{now:.3f}",
            )
            if written == 1:
                return done
            raw = written or None
