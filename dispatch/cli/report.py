"""`yiwang report monthly --month 2026-11 [--area ID] [--out FILE.xlsx]`: the month's
supervision figures as an XLSX workbook (one sheet per breakdown, Chinese headers) and one
CSV per breakdown beside it. Every cell is a figure of `GET /api/stats/...` (the same
`tally_view` of the same SQL, all sheets from one snapshot), so the report and the API agree.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from dispatch.api.stats import tally_view
from dispatch.core.access import AreaScope, validate_scope
from dispatch.core.breakdown import Dimension, StatsFilter, empty_tally
from dispatch.core.model import Milestone
from dispatch.core.supervision import Cause, RedispatchReason
from dispatch.db import Database, DatabaseUnavailable, upgrade
from dispatch.db.statistics import breakdowns
from dispatch.settings import Settings

SHEETS = {None: "总体", **{
    Dimension.AREA: "区域", Dimension.TEAM: "班组", Dimension.OFFICER: "警员",
    Dimension.CATEGORY: "类别", Dimension.SOURCE: "来源", Dimension.PRIORITY: "优先级",
    Dimension.HOUR: "时段",
}}  # fmt: skip
MILESTONES = {
    Milestone.RESPOND: "响应", Milestone.TURN_OUT: "出动", Milestone.ARRIVE: "到场",
    Milestone.HANDLE: "处置",
}  # fmt: skip
CAUSES = {
    Cause.NO_ACKNOWLEDGEMENT: "无人值守", Cause.NO_CANDIDATE: "无可派警员",
    Cause.NOT_ACCEPTED: "未及时接单", Cause.REJECTED: "警员拒单", Cause.OFFICER_OFFLINE: "警员离线",
    Cause.LONG_TRAVEL: "路途过远", Cause.LATE_HANDLING: "处置超时", Cause.UNKNOWN: "原因不明",
}  # fmt: skip
REASONS = {
    RedispatchReason.REJECTED: "拒单", RedispatchReason.OFFICER_OFFLINE: "离线",
    RedispatchReason.NOT_ACCEPTED: "超时未接", RedispatchReason.REASSIGNED: "人工改派",
    RedispatchReason.ESCALATED: "升级改派", RedispatchReason.OTHER: "其他",
}  # fmt: skip
MAX_LEVELS = 3  # escalation levels shown; the default ladder has three

View = dict[str, Any]
Column = tuple[str, Callable[[View], Any]]


def columns(dimension_name: str) -> list[Column]:
    """(header, figure of an API view) for every column of a sheet."""
    found: list[Column] = [
        (dimension_name, lambda v: v["key"] if v["key"] is not None else "（未记录）"),
        ("事件数", lambda v: v["incidents"]),
    ]
    for m, name in MILESTONES.items():
        found += [
            (f"{name}应计", lambda v, m=m.value: v["milestones"][m]["due"]),
            (f"{name}按时", lambda v, m=m.value: v["milestones"][m]["on_time"]),
            (f"{name}超时", lambda v, m=m.value: v["milestones"][m]["breached"]),
            (f"{name}按时率", lambda v, m=m.value: v["milestones"][m]["on_time_share"]),
            (f"{name}P50(秒)", lambda v, m=m.value: v["milestones"][m]["p50_s"]),
            (f"{name}P90(秒)", lambda v, m=m.value: v["milestones"][m]["p90_s"]),
        ]
    found.append(("超时合计", lambda v: v["breaches"]))
    found += [(f"超时原因:{n}", lambda v, c=c.value: v["causes"][c]) for c, n in CAUSES.items()]
    found.append(("改派次数", lambda v: v["redispatches"]))
    found += [
        (f"改派原因:{n}", lambda v, r=r.value: v["redispatch_reasons"][r])
        for r, n in REASONS.items()
    ]
    found += [
        (f"{level}级升级", lambda v, k=str(level): v["escalations"].get(k, 0))
        for level in range(1, MAX_LEVELS + 1)
    ]
    found += [
        ("派单数", lambda v: v["orders"]),
        ("拒单数", lambda v: v["orders_refused"]),
        ("未应答派单", lambda v: v["orders_unanswered"]),
        ("在场时长(秒)", lambda v: v["on_scene_s"]),
    ]
    return found


def month_range(month: str, zone: str) -> tuple[float, float]:
    """[first instant, first instant of the next month) of `YYYY-MM` in `zone`."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=ZoneInfo(zone))
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.timestamp(), end.timestamp()


def write_report(db: Database, where: StatsFilter, out: Path) -> list[Path]:
    """The workbook at `out` and a CSV per sheet beside it; returns every file written."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    written = [out]
    figures = breakdowns(db, SHEETS, where)
    for dimension, title in SHEETS.items():
        tallies = figures[dimension]
        if dimension is None:
            tallies = tallies or [empty_tally()]
        sheet_columns = columns(title if dimension is not None else "范围")
        views = [tally_view(t) for t in tallies]
        rows = [[figure(view) for _, figure in sheet_columns] for view in views]
        sheet = book.create_sheet(title)
        sheet.append([header for header, _ in sheet_columns])
        for row in rows:
            sheet.append(row)
        for cell in sheet[1]:
            if cell.value and str(cell.value).endswith("按时率"):
                for below in sheet[cell.column_letter][1:]:
                    below.number_format = "0.0%"
        path = out.with_name(f"{out.stem}-{dimension.value if dimension else 'summary'}.csv")
        # utf-8-sig: Excel opens a CSV with Chinese headers correctly only with the BOM.
        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow([header for header, _ in sheet_columns])
            writer.writerows(rows)
        written.append(path)
    book.save(out)
    return written


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    zone = settings.timezone
    try:
        since, until = month_range(args.month, zone)
    except ValueError:
        print(f"--month {args.month!r} is not YYYY-MM (2026-11)", file=sys.stderr)
        return 2
    city = settings.city(datetime.fromtimestamp(since, ZoneInfo(zone)))
    try:
        scope = validate_scope(args.area, city.areas if city else None)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    areas = AreaScope(scope, city.areas if city else None, None).area_ids()
    where = StatsFilter(since, until, None if areas is None else frozenset(areas))
    out = Path(args.out or f"yiwang-{args.month}{'-' + args.area if args.area else ''}.xlsx")
    try:
        db = Database(settings.database_url, max_size=2)  # the officer sheet on its own
        upgrade(db)
        for path in write_report(db, where, out):
            print(path)
    except DatabaseUnavailable as exc:
        print(f"cannot reach PostgreSQL at YIWANG_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    db.close()
    return 0


def add_report_command(commands: Any) -> None:
    report = commands.add_parser("report", help="supervision reports (监督考核)")
    kinds = report.add_subparsers(dest="kind", required=True, metavar="KIND")
    monthly = kinds.add_parser("monthly", help="one month's figures: XLSX and CSV")
    monthly.add_argument("--month", required=True, help="YYYY-MM, in the center's time zone")
    monthly.add_argument("--area", help="an area id: the report covers it and all it holds")
    monthly.add_argument("--out", help="the workbook's path (default yiwang-MONTH[-AREA].xlsx)")
    monthly.set_defaults(func=cmd_report)
