"""Supervision statistics over a real PostgreSQL: the scripted incidents copied through the
history give, from SQL, exactly the tallies of the pure aggregation; the API answers the same
within the caller's scope; the monthly report's cells equal the API's figures."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from dispatch.api.app import create_app
from dispatch.api.stats import tally_view
from dispatch.cli.report import SHEETS, columns, month_range, write_report
from dispatch.core.access import Role
from dispatch.core.breakdown import Dimension, StatsFilter
from dispatch.core.breakdown import aggregate as aggregate_outcomes
from dispatch.core.supervision import outcome_of
from dispatch.db import Database
from dispatch.db.history import HistoryStore, Snapshot, position
from dispatch.db.statistics import aggregate, breakdowns
from dispatch.settings import Settings
from tests.integration.helpers import bearer
from tests.integration.test_terminal_flow import city_files
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
        outcome_of(r.incident, r.records, area=r.case.place, zone=ZoneInfo(ZONE)) for r in scripted
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


def test_every_breakdown_at_once_gives_each_ones_tallies(database_url, scripted) -> None:
    """All dimensions in one snapshot, the officer's on a second connection: the same tallies
    as the pure aggregation, dimension by dimension."""
    outcomes = [
        outcome_of(r.incident, r.records, area=r.case.place, zone=ZoneInfo(ZONE)) for r in scripted
    ]
    db = Database(database_url, max_size=2)
    try:
        for where in (StatsFilter(), StatsFilter(areas=frozenset({"east"}))):
            found = breakdowns(db, [None, *Dimension], where)
            assert list(found) == [None, *Dimension]
            for by, tallies in found.items():
                assert tallies == aggregate_outcomes(outcomes, by, where), (by, where)
        nobody = StatsFilter(areas=frozenset({"nowhere"}))
        assert breakdowns(db, [None, *Dimension], nobody) == {by: [] for by in [None, *Dimension]}
    finally:
        db.close()


@pytest.fixture
def client(tmp_path, redis_service, prefix, database_url, scripted) -> Iterator[TestClient]:
    areas, roster = city_files(tmp_path)
    settings = Settings(
        redis_url=redis_service.url, key_prefix=prefix, database_url=database_url,
        areas_file=areas, roster_file=roster, data_dir=tmp_path / "var", timezone=ZONE,
    )  # fmt: skip
    with TestClient(create_app(settings, workers=())) as client:
        yield client


def test_the_api_answers_the_sql_figures_within_the_callers_scope(
    client, database_url, scripted
) -> None:
    commander = bearer(database_url, Role.COMMANDER, name="c1")
    west_auditor = bearer(database_url, Role.AUDITOR, name="a-west", scope="west")
    db = Database(database_url, max_size=1)
    try:
        summary = client.get("/api/stats/summary", headers=commander).json()
        assert summary == tally_view(aggregate(db, None)[0])
        assert summary["incidents"] == len(scripted)
        assert summary["milestones"]["respond"]["on_time_share"] == 8 / 11
        for by in Dimension:
            answer = client.get("/api/stats/breakdown", params={"by": by.value}, headers=commander)
            assert answer.json() == [tally_view(t) for t in aggregate(db, by)], by
        west = StatsFilter(areas=frozenset({"west"}))
        seen = client.get("/api/stats/summary", headers=west_auditor).json()
        assert seen == tally_view(aggregate(db, None, west)[0])
        assert seen["incidents"] == sum(1 for r in scripted if r.case.place == "west")
        areas = client.get("/api/stats/breakdown", params={"by": "area"}, headers=west_auditor)
        assert [row["key"] for row in areas.json()] == ["west"]
        teams = client.get(
            "/api/stats/breakdown", params={"by": "team", "area": "east"}, headers=commander
        )
        assert [row["key"] for row in teams.json()] == ["team-east"]
        # A time range in local ISO time: the cases reported 10:00 to 12:59 (three of them).
        ranged = client.get(
            "/api/stats/summary",
            params={"since": "2026-11-02T10:00:00", "until": "2026-11-02T13:00:00"},
            headers=commander,
        )
        assert ranged.json()["incidents"] == 3
    finally:
        db.close()
    outside = client.get("/api/stats/summary", params={"area": "east"}, headers=west_auditor)
    assert outside.status_code == 403
    dispatcher = bearer(database_url, Role.DISPATCHER, name="d1")
    assert client.get("/api/stats/summary", headers=dispatcher).status_code == 403


def as_stored(figure: object) -> object:
    """A figure as the workbook keeps it: numbers to 16 significant digits (openpyxl)."""
    return float(f"{figure:.16g}") if isinstance(figure, float) else figure


def test_the_monthly_report_holds_the_api_figures(client, database_url, tmp_path) -> None:
    auditor = bearer(database_url, Role.AUDITOR, name="a1")
    since, until = month_range("2026-11", ZONE)
    db = Database(database_url, max_size=1)
    out = tmp_path / "november.xlsx"
    try:
        written = write_report(db, StatsFilter(since, until), out)
    finally:
        db.close()
    assert len(written) == 1 + len(SHEETS)
    book = load_workbook(out)
    assert book.sheetnames == list(SHEETS.values())
    month = {"since": str(since), "until": str(until)}
    for dimension, title in SHEETS.items():
        if dimension is None:
            views = [client.get("/api/stats/summary", params=month, headers=auditor).json()]
        else:
            params = {**month, "by": dimension.value}
            views = client.get("/api/stats/breakdown", params=params, headers=auditor).json()
        sheet_columns = columns(title if dimension is not None else "范围")
        cells = [list(row) for row in book[title].iter_rows(values_only=True)]
        assert cells[0] == [header for header, _ in sheet_columns]
        expected = [[as_stored(figure(v)) for _, figure in sheet_columns] for v in views]
        assert cells[1:] == expected, title
        with out.with_name(f"november-{dimension.value if dimension else 'summary'}.csv").open(
            encoding="utf-8-sig"
        ) as handle:
            assert len(list(csv.reader(handle))) == len(views) + 1
    summary = book["总体"]
    assert summary["B2"].value == 12  # 事件数
    assert summary["B1"].value == "事件数"
