"""Key names: the prefix of a deployment (or a test) followed by what the key holds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def device(self, dev: str) -> str:
        return f"{self.prefix}:dev:{dev}"

    def track(self, dev: str) -> str:
        return f"{self.prefix}:track:{dev}"

    def archive(self, dev: str) -> str:
        """Where the device's sealed archive ends: chain head and last stream id sealed."""
        return f"{self.prefix}:archive:{dev}"

    def seen(self, dev: str) -> str:
        return f"{self.prefix}:seen:{dev}"

    def geo(self, team: str) -> str:
        return f"{self.prefix}:geo:{team}"

    @property
    def seen_at(self) -> str:
        return f"{self.prefix}:seen_at"

    @property
    def registry(self) -> str:
        """Device bindings: `user/device` for a pair, the bare serial for a terminal."""
        return f"{self.prefix}:registry"

    @property
    def credentials(self) -> str:
        """Devices' broker-account records, keyed as the registry: issued to whom, when, and
        revoked when."""
        return f"{self.prefix}:credentials"

    @property
    def http_keys(self) -> str:
        """Devices' keys for the HTTP channels (OsmAnd), keyed as the registry: their sha256
        and when they were issued."""
        return f"{self.prefix}:http_keys"

    @property
    def jt808_terminals(self) -> str:
        """JT/T 808 terminals by phone number: auth code, datum and clock offset."""
        return f"{self.prefix}:jt808_terminals"

    @property
    def sensors(self) -> str:
        """IoT sensors by id: type, place, area, heartbeat."""
        return f"{self.prefix}:sensors"

    @property
    def silent_sensors(self) -> str:
        """Sensors the engine reported silent, each with the time it is silent since."""
        return f"{self.prefix}:silent_sensors"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def accepted_by_channel(self) -> str:
        """Accepted messages by the channel they came in by (mqtt, osmand, jt808, iot)."""
        return f"{self.prefix}:accepted_by_channel"

    @property
    def channel_stats(self) -> str:
        """Outcomes per intake channel other than MQTT (`channel|outcome`)."""
        return f"{self.prefix}:channel_stats"

    @property
    def rejected_by_device(self) -> str:
        return f"{self.prefix}:rejected_by_device"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}:deadletter"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def positions(self) -> str:
        """Live positions for the engine, read through its consumer group."""
        return f"{self.prefix}:positions"

    @property
    def inbox(self) -> str:
        return f"{self.prefix}:inbox"

    @property
    def conn(self) -> str:
        return f"{self.prefix}:conn"

    @property
    def clips(self) -> str:
        return f"{self.prefix}:clips"

    @property
    def file_tracks(self) -> str:
        """Tracks read from clip files' telemetry, by clip id (kept apart from device chains)."""
        return f"{self.prefix}:file_tracks"

    def clips_by_officer(self, officer: str) -> str:
        return f"{self.prefix}:clips_by_officer:{officer}"

    @property
    def broker(self) -> str:
        return f"{self.prefix}:broker"

    @property
    def ingest_members(self) -> str:
        """The ingest workers' registrations and heartbeats, by worker name."""
        return f"{self.prefix}:ingest:members"

    @property
    def ingest_status(self) -> str:
        return f"{self.prefix}:ingest_status"

    @property
    def incidents(self) -> str:
        return f"{self.prefix}:incidents"

    @property
    def deadlines(self) -> str:
        return f"{self.prefix}:deadlines"

    @property
    def engine_lease(self) -> str:
        return f"{self.prefix}:engine_lease"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    @property
    def released(self) -> str:
        """Ended incidents the history holds: the engine may forget them."""
        return f"{self.prefix}:released"

    @property
    def engine_deadletter(self) -> str:
        """Inbox entries whose processing raised twice, with the error."""
        return f"{self.prefix}:engine_deadletter"

    @property
    def engine_stats(self) -> str:
        return f"{self.prefix}:engine_stats"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    def intake_ticket(self, ticket: str) -> str:
        """The incident an external work order number (工单号) given at intake opened; it
        expires (`INTAKE_TICKET_TTL_S`), so the keys stay bounded."""
        return f"{self.prefix}:intake:ticket:{ticket}"

    @property
    def hotline_tickets(self) -> str:
        """Hotline work orders received, by `source:ticket`: the incident each opened."""
        return f"{self.prefix}:hotline:tickets"

    @property
    def hotline_open(self) -> str:
        """Tickets whose result is not queued yet (`source:ticket` → incident)."""
        return f"{self.prefix}:hotline:open"

    @property
    def hotline_notices(self) -> str:
        """Results waiting to be delivered to the hotline, by ticket."""
        return f"{self.prefix}:hotline:notices"

    @property
    def hotline_due(self) -> str:
        """When each waiting result is tried next (a ZSET; a claim pushes it a lease ahead)."""
        return f"{self.prefix}:hotline:due"

    @property
    def hotline_attempts(self) -> str:
        return f"{self.prefix}:hotline:attempts"

    @property
    def hotline_delivered(self) -> str:
        """Tickets whose result the hotline took, and when."""
        return f"{self.prefix}:hotline:delivered"

    @property
    def hotline_deadletter(self) -> str:
        """Results given up on after the last attempt, with the last error."""
        return f"{self.prefix}:hotline:deadletter"

    @property
    def citizen_reports(self) -> str:
        """Citizens' reports by the incident each opened: photo, place, contact, address."""
        return f"{self.prefix}:citizen:reports"

    def citizen_sent(self, who: str) -> str:
        """When `who` (`contact:digits` or `address:ip`) sent reports in the last window (ZSET)."""
        return f"{self.prefix}:citizen:sent:{who}"

    def session(self, digest: str) -> str:
        return f"{self.prefix}:session:{digest}"

    def sessions_of(self, account: str) -> str:
        return f"{self.prefix}:sessions_of:{account}"

    def login_failures(self, who: str) -> str:
        """Failed logins of an account (`acct:name`) or an address (`addr:ip`) in a window."""
        return f"{self.prefix}:login_failures:{who}"

    def lockout(self, who: str) -> str:
        return f"{self.prefix}:lockout:{who}"

    def request_count(self, who: str, window: int) -> str:
        return f"{self.prefix}:requests:{who}:{window}"

    @property
    def alerts(self) -> str:
        """Alerts by id: the record screens see (dispatch.core.alerts)."""
        return f"{self.prefix}:alerts"

    @property
    def alerts_by_raise(self) -> str:
        """Alert ids by when each was raised (a ZSET): the order screens and replay read."""
        return f"{self.prefix}:alerts_by_raise"

    @property
    def alerts_by_ack(self) -> str:
        """Acknowledged alert ids by when each was acknowledged (a ZSET), to drop them after."""
        return f"{self.prefix}:alerts_by_ack"

    @property
    def patrol_checked(self) -> str:
        """Until when ended shifts have been judged for patrol shortfalls."""
        return f"{self.prefix}:patrol_checked"
