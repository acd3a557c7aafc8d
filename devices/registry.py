"""The device registry: which officer carries which device, in which team.

Bindings come from a CSV or YAML file (`yiwang devices import FILE`) or the CLI. A message from
a device the registry does not know is either registered on the spot to the officer its topic
names, or quarantined (rejected with a reason), as the deployment chooses; registration on the
spot is rationed (`RegistrationBudget`) so invented serials cannot grow the registry without
bound. A known device that
publishes under another officer's name is always rejected: that is a misconfigured or borrowed
device, and silently merging it would put one officer's track under another's name.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from devices.quality import Reason, Rejection


@dataclass(frozen=True, slots=True)
class Binding:
    """A device serial bound to an officer and the officer's team."""

    device: str
    officer: str
    team: str = ""
    auto: bool = False

    def to_json(self) -> str:
        return json.dumps({"officer": self.officer, "team": self.team, "auto": self.auto})

    @classmethod
    def from_json(cls, device: str, text: str) -> Binding:
        data = json.loads(text)
        return cls(device, data["officer"], data.get("team", ""), data.get("auto", False))


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """Who holds a device's broker account and since when; the broker keeps the password hash."""

    device: str
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
    def from_json(cls, device: str, text: str) -> CredentialRecord:
        data = json.loads(text)
        return cls(
            device, data["username"], data["officer"], data["issued_at"], data.get("revoked_at")
        )


class UnknownDevicePolicy(StrEnum):
    REGISTER = "register"
    QUARANTINE = "quarantine"


class RegistryFileError(ValueError):
    """A bindings file that cannot be read; the message names the file and the row."""


def resolve(
    bindings: dict[str, Binding], user: str, device: str, policy: UnknownDevicePolicy
) -> Binding | Rejection:
    """The binding a message from `user/device` belongs to, or why it is refused."""
    binding = bindings.get(device)
    if binding is None:
        if policy is UnknownDevicePolicy.QUARANTINE:
            return Rejection(
                Reason.UNKNOWN_DEVICE,
                f"device {device!r} is not registered; bind it with "
                f"`yiwang devices bind {device} --officer {user} --team TEAM`",
            )
        return Binding(device, officer=user, auto=True)
    if binding.officer != user:
        return Rejection(
            Reason.WRONG_OFFICER,
            f"device {device!r} is bound to officer {binding.officer!r} but published as {user!r}",
        )
    return binding


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
            f"device {device!r} not registered: more than {self.per_min} new devices a minute; "
            f"bind it ahead with `yiwang devices bind {device} --officer {user} --team TEAM`",
        )


def load_bindings(path: Path) -> list[Binding]:
    """Read `device, officer, team` rows from a .csv, or a list of mappings from .yaml/.yml."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    elif path.suffix.lower() in (".yaml", ".yml"):
        rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(rows, list):
            raise RegistryFileError(f"{path}: expected a list of {{device, officer, team}} entries")
    else:
        raise RegistryFileError(f"{path}: use a .csv or .yaml file")
    bindings = []
    for number, row in enumerate(rows, start=1):
        try:
            device, officer = str(row["device"]).strip(), str(row["officer"]).strip()
        except (KeyError, TypeError):
            raise RegistryFileError(
                f"{path}: entry {number} needs 'device' and 'officer'"
            ) from None
        if not device or not officer:
            raise RegistryFileError(f"{path}: entry {number} has an empty device or officer")
        bindings.append(Binding(device, officer, str(row.get("team") or "").strip()))
    return bindings
