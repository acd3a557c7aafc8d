"""The device registry: which officer carries which device, in which team.

Bindings come from a CSV or YAML file (`yiwang devices import FILE`) or the CLI. A message from
a device the registry does not know is either registered on the spot to the officer its topic
names, or quarantined (rejected with a reason), as the deployment chooses. A known device that
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
