"""Runtime settings, read once at start from the environment (prefix YIWANG_) or a .env file."""

from __future__ import annotations

import math
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from devices.batch import IngestConfig
from devices.broker import BrokerLogin
from devices.quality import Limits
from devices.registry import UnknownDevicePolicy
from devices.topics import DEFAULT_ROOT
from dispatch.city import City, load_city
from dispatch.clock import Clock
from dispatch.core.policy import PolicyBook
from dispatch.evidence.archive import Archive, SealPolicy
from dispatch.evidence.signing import Signer, load_or_create
from dispatch.photos import PhotoFolder
from dispatch.store.connect import RedisUrlError, sentinel_target
from dispatch.store.durability import Durability
from gis.areas import AreaIndex, load_areas
from gis.service_area import CHINA, ServiceArea, area_around, box_area


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", env_file=".env", extra="ignore")

    # One Redis (redis://host:port/db) or a primary found through Sentinel
    # (redis+sentinel://:password@host:port,host:port/service/db).
    redis_url: str = "redis://127.0.0.1:6379/0"
    # With replicas: a fix is acknowledged to its device, and an engine step counts as done,
    # only once this many replicas hold it (a fail-over then loses nothing acknowledged).
    redis_wait_replicas: int = Field(0, ge=0)
    redis_wait_timeout_ms: int = Field(2_000, gt=0)
    key_prefix: str = "yiwang"
    # Accounts and what must be kept for months (DESIGN §5a).
    database_url: str = "postgresql://yiwang@127.0.0.1:5432/yiwang"
    # An ended incident stays in Redis and the engine's memory this long, then lives in the
    # history only (its reads, audit and evidence come from PostgreSQL).
    history_retention_s: float = Field(600.0, ge=0)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # The broker refuses anonymous clients: each worker logs in with its own account
    # (`yiwang broker setup` creates them), else with YIWANG_MQTT_USERNAME/PASSWORD.
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    ingest_mqtt_username: str | None = None
    ingest_mqtt_password: str | None = None
    delivery_mqtt_username: str | None = None
    delivery_mqtt_password: str | None = None
    # An order waits on the broker for an offline terminal until its turn-out deadline, and at
    # least this long: a re-dispatch comes after the deadlines have passed.
    order_min_expiry_s: float = Field(180.0, gt=0)
    simulator_mqtt_username: str | None = None
    simulator_mqtt_password: str | None = None
    # The dynamic-security admin: issues and revokes devices' credentials.
    broker_admin_username: str = "admin"
    broker_admin_password: str | None = None
    # A CA certificate file: every client of the center then connects over TLS (port 8883 in
    # deploy/mosquitto.conf) and accepts only a broker certificate this CA signed.
    mqtt_tls_ca: Path | None = None
    topic_root: str = DEFAULT_ROOT
    # 5 where the broker speaks it; 311 for brokers that do not. Devices may use any version.
    mqtt_protocol: int = 5

    # Each ingest worker's own name (its MQTT client id is `yiwang-ingest-{name}`); by
    # default the host's name and the command, so `serve` and `ingest` never share one. Two
    # `yiwang ingest` on one host need a name each.
    ingest_name: str | None = Field(None, min_length=1, max_length=128)
    # Every worker beats in Redis this often; three missed beats and it is reported dead.
    ingest_beat_s: float = Field(2.0, gt=0)
    ingest_batch_max: int = 1000
    # How long the first message of a batch may wait for company: at 5,000 fixes/s this is
    # most of the median device → screen latency (measured: 20 ms → p50 43 ms, 5 ms → 31 ms).
    ingest_batch_wait_ms: float = 5.0
    ingest_session_expiry_s: int = 7 * 24 * 3600
    # Messages the ingest reads ahead of the store when it lags (about 0.5 KB each): what
    # lets each device's newest fix reach the screens before the backlog is stored.
    ingest_backlog_max: int = 200_000
    # How long the oldest waiting message must have waited before the ingest puts each
    # device's newest fix first (off by default: the fixes it makes late cost a neighbour
    # lookup each, which halved the ingest's throughput through a backlog; 1 s shows where
    # everyone is now at that price).
    ingest_live_after_s: float = math.inf
    # The JT/T 808 gateway's TCP listener. Terminals dial in over 4G: listen on 0.0.0.0 (or the
    # public address) where they reach it. A port makes `yiwang serve` and the demo run the
    # gateway beside the other workers; 0 runs none there, and `yiwang jt808` alone listens
    # on 6207 (EMQX's JT/T 808 default).
    jt808_host: str = "127.0.0.1"
    jt808_port: int = Field(0, ge=0, le=65535)
    # Names the gateway's own reading of the order outbox: unique per gateway process.
    jt808_gateway_id: str = "jt808-1"
    # Outside the demo a device must be bound before its messages count.
    unknown_devices: UnknownDevicePolicy = UnknownDevicePolicy.QUARANTINE
    # Under `register`: at most this many new devices a minute per ingest worker, so a flood
    # of invented serials cannot fill the registry.
    registrations_per_min: int = Field(60, ge=0)

    max_payload_bytes: int = 4096
    max_future_s: float = 300.0
    max_age_s: float = 7 * 24 * 3600.0
    max_speed_kmh: float = 250.0
    # Fixes are accepted within the city's outline and this margin; without a city, within
    # `service_area_bbox` (west, south, east, north; JSON, e.g. "[119.2, 28.8, 120.1, 29.4]"),
    # which replaces the outline when set; with neither, within the box where China's datums
    # apply.
    service_area_margin_km: float = Field(50.0, ge=0)
    service_area_bbox: tuple[float, float, float, float] | None = None

    engine_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # A standby takes over within lease + lease/10 of a leader's death: under 10 s.
    engine_lease_ms: int = 8_000
    policy_file: Path | None = None

    # The city: areas (GeoJSON/GeoPackage/Shapefile), the roster, and optionally streets.
    areas_file: Path | None = None
    areas_datum: str = "wgs84"
    areas_id_field: str = "id"
    areas_name_field: str = "name"
    roster_file: Path | None = None
    streets_file: Path | None = None
    # Named places for the intake's search (GeoJSON Points); none: places.geojson beside
    # the areas file, if there is one.
    places_file: Path | None = None
    basemap_file: Path | None = None  # PMTiles of areas and streets for the map page
    # Patrol targets per grid (YAML: `default: {visits: 2}` and `grids: {ID: {...}}`).
    patrol_targets_file: Path | None = None

    # Hotline work orders (12345/8890): where the result of each is pushed once its incident
    # ends (none: not pushed; tickets wait, and are pushed once a URL is set), the bearer
    # token sent with it, and how often a result the hotline does not take is tried again.
    hotline_callback_url: str | None = None
    hotline_callback_token: str | None = None
    hotline_callback_attempts: int = Field(30, ge=1)  # about 4 hours of tries
    hotline_callback_retry_s: float = Field(5.0, gt=0)  # first delay; doubles up to 10 min

    # Citizen reports (随手拍, POST /api/reports, a public channel): the largest upload (413
    # beyond it, refused before it is read), how many reports one phone number and one client
    # address may send an hour (429 beyond it; refused reports count too), and where photos
    # are kept (default: <data_dir>/photos).
    report_max_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024)
    reports_per_contact_per_hour: int = Field(5, ge=1)
    reports_per_address_per_hour: int = Field(30, ge=1)
    photos_dir: Path | None = None

    stale_after_s: float = 60.0
    offline_after_s: float = 300.0

    # Test mode only: the center's clock runs this many times faster than the wall clock,
    # counted from `clock_anchor` (epoch seconds; default: when the settings were read).
    clock_rate: float = Field(1.0, gt=0)
    clock_anchor: float = Field(default_factory=time.time)

    # Evidence: sealed track segments and the key that signs them and every package.
    archive_dir: Path | None = None  # default: <data_dir>/archive
    evidence_key_file: Path | None = None  # default: <data_dir>/keys/evidence.pem
    archive_max_fixes: int = 10_000
    archive_max_age_s: float = 3600.0
    archive_every_s: float = Field(60.0, gt=0)  # between the archiver's passes

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Live feed connections this API node keeps, in all and per client address (a storm of
    # screens from one place is refused with a reason, not served at everyone's expense).
    live_max_connections: int = Field(1000, ge=1)
    live_max_connections_per_address: int = Field(50, ge=1)
    # A screen that has not taken a message within this is dropped, told to resume with
    # `since`: a stalled client never holds up the others.
    live_send_timeout_s: float = Field(5.0, gt=0)
    # HTTPS served by `yiwang serve` itself (PEM files); behind a TLS proxy leave them unset.
    https_certificate: Path | None = None
    https_key: Path | None = None
    # Behind HTTPS (a proxy or the files above) the session cookie is marked Secure.
    secure_cookies: bool = False
    # The screens' bundle, built by `make frontend` into the checkout's frontend/dist; an
    # installed package has no frontend/ beside it, so an image names where it put the bundle.
    screens_dir: Path = Path(__file__).resolve().parents[1] / "frontend" / "dist"
    timezone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")

    @field_validator("redis_url")
    @classmethod
    def _readable_redis_url(cls, value: str) -> str:
        try:
            sentinel_target(value)
        except RedisUrlError as exc:
            raise ValueError(f"YIWANG_REDIS_URL: {exc}") from None
        return value

    @field_validator("mqtt_protocol")
    @classmethod
    def _known_protocol(cls, value: int) -> int:
        if value not in (5, 311):
            raise ValueError("YIWANG_MQTT_PROTOCOL is 5 (MQTT 5) or 311 (MQTT 3.1.1)")
        return value

    @field_validator("hotline_callback_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("YIWANG_HOTLINE_CALLBACK_URL is an http:// or https:// address")
        return value

    @field_validator("service_area_bbox")
    @classmethod
    def _valid_box(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is not None:
            box_area(*value)  # raises naming what is wrong with it
        return value

    def broker_login(
        self, account: Literal["ingest", "delivery", "simulator", "admin"]
    ) -> BrokerLogin:
        """Where and as whom one of the center's clients connects to the broker."""
        own = {
            "ingest": (self.ingest_mqtt_username, self.ingest_mqtt_password),
            "delivery": (self.delivery_mqtt_username, self.delivery_mqtt_password),
            "simulator": (self.simulator_mqtt_username, self.simulator_mqtt_password),
            "admin": (self.broker_admin_username, self.broker_admin_password),
        }
        username, password = own[account]
        if username is None:
            username, password = self.mqtt_username, self.mqtt_password
        return BrokerLogin(
            self.mqtt_host,
            self.mqtt_port,
            username,
            password,
            str(self.mqtt_tls_ca) if self.mqtt_tls_ca else None,
        )

    def policies(self) -> PolicyBook:
        """The timeline policies: the 1/3/15 defaults, or the YAML file's overrides."""
        if self.policy_file is None:
            return PolicyBook.from_dict({})
        return PolicyBook.from_dict(
            yaml.safe_load(self.policy_file.read_text(encoding="utf-8")) or {}
        )

    def city(self, today: datetime) -> City | None:
        """The configured city, or None when no areas and roster are given."""
        if self.areas_file is None or self.roster_file is None:
            return None
        return load_city(
            areas_file=self.areas_file,
            areas_datum=self.areas_datum,
            id_field=self.areas_id_field,
            name_field=self.areas_name_field,
            roster_file=self.roster_file,
            streets_file=self.streets_file,
            zone=self.timezone,
            today=today,
            places_file=self.places_file,
        )

    def areas(self) -> AreaIndex | None:
        """The configured area tree alone (no roster needed), or None without an areas file."""
        if self.areas_file is None:
            return None
        return AreaIndex(
            load_areas(
                self.areas_file,
                datum=self.areas_datum,
                id_field=self.areas_id_field,
                name_field=self.areas_name_field,
            )
        )

    def durability(self) -> Durability:
        return Durability(self.redis_wait_replicas, self.redis_wait_timeout_ms)

    def clock(self) -> Clock:
        return Clock(self.clock_rate, self.clock_anchor)

    def archive(self) -> Archive:
        return Archive(self.archive_dir or self.data_dir / "archive")

    def photos(self) -> PhotoFolder:
        return PhotoFolder(self.photos_dir or self.data_dir / "photos")

    def signer(self) -> Signer:
        return load_or_create(self.evidence_key_file or self.data_dir / "keys" / "evidence.pem")

    def seal_policy(self) -> SealPolicy:
        return SealPolicy(self.archive_max_fixes, self.archive_max_age_s)

    def ingest_worker_name(self, command: Literal["serve", "ingest"]) -> str:
        """The name of the ingest worker `command` runs in this process."""
        return self.ingest_name or f"{socket.gethostname()}-{command}"

    def ingest_config(self, city: City | None) -> IngestConfig:
        """How every ingest path (the MQTT worker, the JT/T 808 gateway) judges and batches."""
        return IngestConfig(
            root=self.topic_root,
            limits=self.limits(city),
            unknown_devices=self.unknown_devices,
            registrations_per_min=self.registrations_per_min,
            batch_max=self.ingest_batch_max,
            batch_wait_s=self.ingest_batch_wait_ms / 1000.0,
            backlog_max=self.ingest_backlog_max,
            live_after_s=self.ingest_live_after_s,
            sensor_types=self.policies().sensors,
        )

    def limits(self, city: City | None) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_future_s=self.max_future_s,
            max_age_s=self.max_age_s,
            max_speed_kmh=self.max_speed_kmh,
            service_area=self.service_area(city),
        )

    def service_area(self, city: City | None) -> ServiceArea:
        """Where devices can be: the box if one is set, else the city's outline and margin."""
        if self.service_area_bbox is not None:
            return box_area(*self.service_area_bbox)
        if city is None or self.areas_file is None:
            return box_area(*CHINA)
        return area_around(
            (area.geometry for area in city.areas.areas),
            self.service_area_margin_km * 1000.0,
            f"the outline of {self.areas_file.name}",
        )
