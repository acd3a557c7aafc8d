"""Supervision statistics over a real PostgreSQL: the scripted incidents copied through the
history give, from SQL, exactly the tallies of the pure aggregation; the API answers the same
within the caller's scope; the monthly report's cells equal the API's figures."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from dispatch.core.breakdown import Dimension, StatsFilter
from dispatch.core.breakdown import aggregate as aggregate_outcomes
from dispatch.core.supervision import outcome_of
from dispatch.db import Database
from dispatch.db.history import HistoryStore, Snapshot, position
from dispatch.db.statistics import aggregate
from tests.supervision_cases import FIRST_REPORT_AT, Recorded, record_cases

ZONE = "Asia/Shanghai"


def copy_through_history(database_url: str, recorded: list[Recorded]) -> None:
    """The records as the worker copies them: in stream order, a batch per incident, each
    with the incident's final snapshot."""
    history = HistoryStore(Database(database_url, max_size=1), zone=ZONE)
    sequence = 0
    try:
        for r in recorded:
            batch = []
            for fields in r.records:
                sequence += 1
                batch.append((f"{int(float(fields['at']) * 1000)}-{sequence}", fields))
            snapshot = Snapshot(
                r.incident, r.raw, r.case.place, position(batch[-1][0]), float(batch[-1][1]["at"])
            )
            history.copy(batch, [snapshot])
    finally:
        history.db.close()


@pytest.fixture
def scripted(database_url: str) -> list[Recorded]:
    recorded = record_cases()
    copy_through_history(database_url, recorded)
    return recorded


def test_sql_gives_the_tallies_of_the_pure_aggregation(database_url, scripted) -> None:
    outcomes = [
        outcome_of(r.incident, r.records, area=r.case.place, zone=ZoneInfo(ZONE))
        for r in scripted
    ]
    db = Database(database_url, max_size=1)
    try:
        filters = [
            StatsFilter(),
            StatsFilter(areas=frozenset({"west"})),
            StatsFilter(since=FIRST_REPORT_AT + 3 * 3600, until=FIRST_REPORT_AT + 9 * 3600),
            StatsFilter(team="team-east", category="street_vending", source="12345"),
        ]
        for where in filters:
            for by in (None, *Dimension):
                assert aggregate(db, by, where) == aggregate_outcomes(outcomes, by, where), (
                    by,
                    where,
                )
        (total,) = aggregate(db, None)
        assert total.incidents == len(scripted)
    finally:
        db.close()
