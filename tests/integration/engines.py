"""Incidents put to a running engine, and the alerts it fired, read from its audit trail."""

from __future__ import annotations

import json

from dispatch.store import IncidentStore


def report(engine_store: IncidentStore, incident: str) -> None:
    engine_store.command(
        {
            "type": "IncidentReported",
            "incident": incident,
            "category": "street_vending",
            "priority": 2,
            "location": [119.65, 29.08],
            "source": "12345",
        }
    )


def alerts(engine_store: IncidentStore) -> list[dict]:
    found = []
    for record in engine_store.audit_records(100_000):
        if record["kind"] in ("warning", "escalation"):
            found.append(
                {
                    **json.loads(record["detail"]),
                    "at": float(record["at"]),
                    "engine": record["engine"],
                }
            )
    return found
