"""The device registry: which officer carries which device, in which team.

A device is known by its identity, the two topic levels `user/device`: OwnTracks phones report
as `owntracks/{user}/{deviceId}`, and many officers' phones share a device id (`phone`, a model
name), so a device name alone names no one. The registry holds two kinds of binding:

- a **pair** binds the device `device` of user `user` (its officer) and no other: ten officers
  may each have a `phone`;
- a **serial** binds one of our own terminals (a body camera `BC-0042`) to its officer
  whatever user level it publishes under: under another officer's name it is refused
  (`wrong_officer`), since that is a misconfigured or borrowed device, and silently accepting
  it would put one officer's track under another's name.

A message from `user/device` is judged by the pair `(user, device)` first, then by the serial
`device`. An operator's binding outranks an automatic one: a pair registered on first sight
gives way to a serial bound to another officer later. Both kinds live in one mapping keyed by
`Binding.key`, the serial or `user/device` (a topic level holds no `/`, so the two never meet).

IoT sensors are registered apart (`make_sensor`): a sensor carries no officer but a place,
and its topics are `{root}/iot/{sensor}/...`, so `iot` is no officer's login.

Bindings come from a CSV or YAML file (`yiwang devices import FILE`: a row with `user` and
`device` binds that pair, a row with `device` and `officer` a serial) or the CLI. A message
from a device the registry does not know is either registered on the spot as the pair its
topic names, or quarantined (rejected with a reason), as the deployment chooses; registration
on the spot never claims a serial, and is rationed (`RegistrationBudget`) so invented names
cannot grow the registry without bound.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from devices import topics
from devices.quality import Reason, Rejection
from dispatch.core.sensors import PLACE_MAX, Sensor, SensorCatalogue, UnknownSensorType
from dispatch.core.track import device_key
from gis.areas import AreaIndex
from gis.coords import CoordinateError, Datum, to_wgs84


@dataclass(frozen=True, slots=True)
class Binding:
    """A device bound to an officer and the officer's team: as a pair (the officer's own user
    level and the device name) or as a terminal serial (any user level; see the module)."""

    device: str
    officer: str
    team: str = ""
    auto: bool = False
    pair: bool = False

    @property
    def key(self) -> str:
        """Where the registry keeps it: `officer/device` for a pair, the serial otherwise."""
        return device_key(self.officer, self.device) if self.pair else self.device

    def to_json(self) -> str:
        return json.dumps({"officer": self.officer, "team": self.team, "auto": self.auto})

    @classmethod
    def from_json(cls, key: str, text: str) -> Binding:
        data = json.loads(text)
        user, device = split_binding_key(key)
        return cls(
            device,
            user or data["officer"],
            data.get("team", ""),
            data.get("auto", False),
            pair=bool(user),
        )


def split_binding_key(text: str) -> tuple[str, str]:
    """`USER/DEVICE` as (user, device), a bare serial as ("", serial)."""
    user, _, device = text.rpartition("/")
    return user, device


def level_problem(name: str, value: str) -> str | None:
    """Why `value` cannot be one topic level (and so one name in the registry), if it cannot."""
    problem = (
        "it holds a '/'" if "/" in value else "a leading '$'" if value.startswith("$") else None
    ) or topics.level_problem(value)
    return None if problem is None else f"{name} {value!r} cannot be a topic level: {problem}"


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """Who holds a device's broker account and since when; the broker keeps the password hash.

    `key` is the binding's (`Binding.key`); `username` is the account's name at the broker.
    """

    key: str
    username: str
    officer: str
    issued_at: float
    revoked_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "username": self.username,
                "officer": self.officer,
                "issued_at": self.issued_at,
                "revoked_at": self.revoked_at,
            }
        )

    @classmethod
    def from_json(cls, key: str, text: str) -> CredentialRecord:
        data = json.loads(text)
        return cls(
            key, data["username"], data["officer"], data["issued_at"], data.get("revoked_at")
        )


class UnknownDevicePolicy(StrEnum):
    REGISTER = "register"
    QUARANTINE = "quarantine"


class BindingError(ValueError):
    """A binding that cannot be made; the message says why."""


class RegistryFileError(BindingError):
    """A bindings file that cannot be read; the message names the file and the row."""


def make_binding(*, device: str, user: str = "", officer: str = "", team: str = "") -> Binding:
    """A pair when `user` is given (`officer`, if given, must be that user), else a terminal
    serial bound to `officer`."""
    if user and officer and officer != user:
        raise BindingError(
            f"user {user!r}'s device {device!r} cannot be bound to officer {officer!r}: a "
            "pair's officer is its user (give no officer, or bind the bare serial to bind a "
            "terminal)"
        )
    officer = user or officer
    if not device or not officer:
        raise BindingError(
            "a binding needs a device and either a user (a pair) or an officer (a terminal serial)"
        )
    for name, value in (("device", device), ("officer", officer)):
        problem = level_problem(name, value)
        if problem:
            raise BindingError(problem)
    if officer == topics.SENSOR_LEVEL:
        raise BindingError(
            f"{topics.SENSOR_LEVEL!r} is the sensors' topic level, no officer's: register a "
            "sensor with `yiwang devices register-sensor`"
        )
    return Binding(device, officer, team, pair=bool(user))


def make_sensor(
    *,
    sensor_id: str,
    sensor_type: str,
    lon: float,
    lat: float,
    datum: Datum,
    catalogue: SensorCatalogue,
    areas: AreaIndex | None,
    registered_at: float,
    place: str = "",
    heartbeat_s: float | None = None,
    mobile: bool = False,
) -> Sensor:
    """A sensor of a type of the catalogue at its place, kept in WGS-84 with the innermost
    area holding it (`areas`, when the center has a city: a place outside every area is
    refused, since no team would answer its alarms)."""
    problem = level_problem("sensor", sensor_id)
    if problem:
        raise BindingError(problem)
    try:
        catalogue.type_or_raise(sensor_type)
    except UnknownSensorType as exc:
        raise BindingError(str(exc)) from None
    try:
        location = to_wgs84(lon, lat, datum)
    except CoordinateError as exc:
        raise BindingError(f"sensor {sensor_id}: {exc}") from None
    if heartbeat_s is not None and not (math.isfinite(heartbeat_s) and heartbeat_s > 0):
        raise BindingError(f"sensor {sensor_id}: the heartbeat is a positive number of seconds")
    if len(place) > PLACE_MAX:
        raise BindingError(f"sensor {sensor_id}: a place of at most {PLACE_MAX} characters")
    area = None
    if areas is not None:
        found = areas.area_for(location)
        if found is None:
            raise BindingError(
                f"sensor {sensor_id} at ({location.lon:.6f}, {location.lat:.6f}) lies outside "
                "every area of the city"
            )
        area = found.id
    return Sensor(
        sensor_id,
        sensor_type,
        location,
        registered_at,
        area=area,
        place=place.strip(),
        heartbeat_s=heartbeat_s,
        mobile=mobile,
    )


def resolve(
    bindings: dict[str, Binding], user: str, device: str, policy: UnknownDevicePolicy
) -> Binding | Rejection:
    """The binding a message from `user/device` belongs to, or why it is refused.

    `bindings` is keyed by `Binding.key`. The pair first, then the serial (see the module).
    """
    pair = bindings.get(device_key(user, device))
    serial = bindings.get(device)
    if pair is not None and (serial is None or not pair.auto):
        return pair
    if serial is not None:
        if serial.officer != user:
            return Rejection(
                Reason.WRONG_OFFICER,
                f"device {device!r} is bound to officer {serial.officer!r} "
                f"but published as {user!r}",
            )
        return serial
    if policy is UnknownDevicePolicy.QUARANTINE:
        return Rejection(
            Reason.UNKNOWN_DEVICE,
            f"device {device_key(user, device)!r} is not registered; bind it with "
            f"`yiwang devices bind {device_key(user, device)} --team TEAM`",
        )
    return Binding(device, officer=user, auto=True, pair=True)


class RegistrationBudget:
    """A token bucket of registrations: `per_min` a minute, and a burst of as many.

    Pure: the caller passes `now`. Each ingest worker holds one, so N workers admit N times it.
    """

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self._tokens = float(per_min)
        self._at: float | None = None

    def take(self, now: float) -> bool:
        """Spend one registration if any is left at `now`."""
        if self._at is not None:
            self._tokens = min(self.per_min, self._tokens + (now - self._at) * self.per_min / 60)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def refusal(self, user: str, device: str) -> Rejection:
        return Rejection(
            Reason.REGISTRATION_LIMIT,
            f"device {device_key(user, device)!r} not registered: more than {self.per_min} new "
            f"devices a minute; bind it ahead with "
            f"`yiwang devices bind {device_key(user, device)} --team TEAM`",
        )


def load_bindings(path: Path) -> list[Binding]:
    """Read bindings from a .csv, or a list of mappings from .yaml/.yml.

    An entry with `user` and `device` binds that pair (`officer`, if given, must be the user);
    an entry with `device` and `officer` alone binds a terminal serial; `team` is optional.
    """
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    elif path.suffix.lower() in (".yaml", ".yml"):
        rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(rows, list):
            raise RegistryFileError(
                f"{path}: expected a list of {{user, device, team}} or {{device, officer, team}} "
                "entries"
            )
    else:
        raise RegistryFileError(f"{path}: use a .csv or .yaml file")
    return [_binding_row(path, number, row) for number, row in enumerate(rows, start=1)]


def _binding_row(path: Path, number: int, row: object) -> Binding:
    if not isinstance(row, dict):
        raise RegistryFileError(f"{path}: entry {number} is not a mapping of columns")
    device, user, officer, team = (
        str(row.get(name) or "").strip() for name in ("device", "user", "officer", "team")
    )
    try:
        return make_binding(device=device, user=user, officer=officer, team=team)
    except BindingError as exc:
        raise RegistryFileError(f"{path}: entry {number}: {exc}") from None
