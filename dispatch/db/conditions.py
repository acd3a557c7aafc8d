"""WHERE clauses from optional filters: a filter left unset (None) adds nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Conditions:
    clauses: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def add(self, clause: str, value: object) -> Conditions:
        """`clause` (with one %s for `value`) unless `value` is None."""
        if value is not None:
            self.clauses.append(clause)
            self.values.append(value)
        return self

    def common(
        self,
        prefix: str,
        *,
        since: float | None,
        until: float | None,
        areas: Any,
        equal: dict[str, object],
    ) -> Conditions:
        """The filters incident lists and statistics share: report time, areas, columns."""
        self.add(f"{prefix}reported_at >= to_timestamp(%s)", since)
        self.add(f"{prefix}reported_at < to_timestamp(%s)", until)
        self.add(f"{prefix}area = ANY(%s)", None if areas is None else sorted(areas))
        for column, value in equal.items():
            self.add(f"{prefix}{column} = %s", value)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "true"
