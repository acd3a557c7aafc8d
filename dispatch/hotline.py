"""The hotline notifier: the result of each work order, pushed to the hotline's callback once
its incident has ended, durably and once.

Each pass finds the open tickets whose incidents have ended (in Redis, or in the history once
released), reads each one's result from its audit (`dispatch.core.workorders`) and queues it
in the call that closes the ticket, then POSTs every result that is due. A result the hotline
answers 2xx is delivered and forgotten; any other answer or no answer is tried again later
(`retry_delay_s`), up to `attempts` tries, then kept in the hotline's dead letters. Results
wait in Redis, so a restart loses none; a try holds a lease, so several centers' notifiers
share the outbox without sending one result twice, and a notifier killed mid-try leaves it to
the next when the lease ends. Only that case, a hotline that took a result but whose answer
never came back, sends it again: each POST carries `Idempotency-Key: <source>:<ticket>`.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

from dispatch.clock import Clock
from dispatch.core.workorders import closing_notice, retry_delay_s
from dispatch.db import DatabaseUnavailable
from dispatch.records import IncidentRecords
from dispatch.store import UNAVAILABLE, Store, decode_incident
from dispatch.store.hotline import Claimed

log = logging.getLogger(__name__)

CHANNEL = "hotline"
_TIMEOUT_S = 10.0
# A try's lease: longer than any try (the POST's timeout) with room to record its answer.
_LEASE_S = 6 * _TIMEOUT_S
# Finding ended incidents reads every open ticket's incident: less often than delivering.
_CHECK_EVERY_S = 5.0


class HotlineNotifier:
    def __init__(
        self,
        store: Store,
        records: IncidentRecords,
        *,
        url: str,
        token: str | None = None,
        attempts: int = 30,
        retry_s: float = 5.0,
        poll_s: float = 1.0,
        zone: str = "Asia/Shanghai",
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.records = records
        self.url = url
        self.token = token
        self.attempts = attempts
        self.retry_s = retry_s
        self.poll_s = poll_s
        self.zone = ZoneInfo(zone)
        self.clock = clock or Clock()

    def run(self, stop: threading.Event) -> None:
        """Queue and deliver until `stop`; an unreachable Redis or PostgreSQL is waited out."""
        check_at = 0.0
        while not stop.is_set():
            try:
                if self.clock() >= check_at:
                    check_at = self.clock() + _CHECK_EVERY_S * self.clock.rate
                    self.queue_ended()
                self.deliver_due()
            except (*UNAVAILABLE, *DatabaseUnavailable) as exc:
                log.error("hotline: a store is unreachable (%s); retrying in 1 s", exc)
                stop.wait(1.0)
                continue
            except Exception:
                # Not a store away: the pass is tried again, the thread never ends for it.
                log.exception("hotline: a pass failed; trying again in 10 s")
                stop.wait(10.0)
                continue
            stop.wait(self.poll_s)

    def queue_ended(self) -> int:
        """Queue the result of every open ticket whose incident has ended; returns how many."""
        tickets = self.store.hotline.open_tickets()
        if not tickets:
            return 0
        now = self.clock()
        live = self.store.incidents.snapshots(list(set(tickets.values())))
        queued = 0
        for ticket, incident_id in tickets.items():
            raw = live.get(incident_id)
            # Not in Redis: released to the history, or not opened by the engine yet.
            incident = decode_incident(raw) if raw else self.records.incident(incident_id)
            if incident is None or not incident.phase.terminal:
                continue
            source, _, ticket_id = ticket.partition(":")
            notice = closing_notice(
                ticket_id,
                source,
                incident,
                self.records.audit(incident_id),
                seen_at=now,
                zone=self.zone,
            )
            assert notice is not None  # the incident has ended
            if self.store.hotline.queue_notice(ticket, notice.body(self.zone), due_at=now):
                queued += 1
        return queued

    def deliver_due(self) -> int:
        """Try every result that is due; returns how many were delivered."""
        delivered = 0
        now = self.clock()
        for ticket in self.store.hotline.due_notices(now):
            claimed = self.store.hotline.claim(
                ticket, now=now, lease_until=now + _LEASE_S * self.clock.rate
            )
            if claimed is None:
                continue  # another notifier holds it
            error = self._post(claimed)
            at = self.clock()
            if error is None:
                self.store.hotline.delivered(ticket, at=at)
                self.store.ingest.count_channel(CHANNEL, "notice_delivered")
                delivered += 1
            elif claimed.attempt >= self.attempts:
                log.error("hotline: gave up on the result of %s: %s", ticket, error)
                self.store.hotline.give_up(claimed, error, at=at)
                self.store.ingest.count_channel(CHANNEL, "notice_given_up")
            else:
                delay_s = retry_delay_s(claimed.attempt, self.retry_s) * self.clock.rate
                log.warning(
                    "hotline: result of %s not taken (%s); again in %.1f s", ticket, error, delay_s
                )
                self.store.hotline.retry(ticket, at=at + delay_s)
                self.store.ingest.count_channel(CHANNEL, "notice_retried")
        return delivered

    def _post(self, claimed: Claimed) -> str | None:
        """POST one result; None when the hotline took it, else what went wrong."""
        headers = {
            "content-type": "application/json; charset=utf-8",
            "idempotency-key": claimed.ticket,
        }
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        body = json.dumps(claimed.notice, ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            return f"the hotline answered {exc.code} {exc.reason}"
        except (OSError, ValueError) as exc:
            return f"no answer from {self.url}: {exc}"
        return None if 200 <= status < 300 else f"the hotline answered {status}"
