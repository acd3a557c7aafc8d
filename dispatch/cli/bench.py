"""`yiwang bench`: each capability measured against a baseline in the same run.

Each benchmark is imported only when it runs: they need the development extras (the screen
bench drives Chromium through Playwright), which a deployed center does not install.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from dispatch.settings import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    bench = importlib.import_module(f"bench.{args.capability}")
    if args.capability == "gis":
        return int(bench.main(Path(args.graph) if args.graph else None))
    if args.capability == "history":
        return int(bench.main(incidents=args.incidents, month=args.month_incidents))
    if args.capability in ("recommend", "clocks", "persistence"):
        return int(bench.main())
    if args.capability == "e2e":
        return int(bench.main(seconds=args.seconds))
    if args.capability == "scale":
        return int(bench.main(messages=args.messages, devices=args.devices, seconds=args.seconds))
    if args.capability == "soak":
        return int(bench.main(minutes=args.minutes))
    if args.capability == "screen":
        return int(bench.main(seconds=min(args.seconds, 60)))
    return int(bench.main(messages=args.messages, devices=args.devices, profile=args.profile))


def add_bench_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure a capability against a baseline")
    bench.add_argument(
        "capability",
        choices=[
            "ingest",
            "jt808",
            "gis",
            "recommend",
            "clocks",
            "e2e",
            "screen",
            "history",
            "soak",
            "scale",
            "persistence",
        ],
    )
    bench.add_argument(
        "--incidents", type=int, default=100_000, help="history: closed incidents to copy"
    )
    bench.add_argument(
        "--month-incidents", type=int, default=500_000, help="history: a month to report on"
    )
    bench.add_argument(
        "--minutes", type=int, default=30, help="soak: minutes of 2,000 devices and the ×30 city"
    )
    bench.add_argument(
        "--seconds", type=int, default=30, help="e2e, screen, scale: seconds per phase"
    )
    bench.add_argument(
        "--messages", type=int, default=100_000, help="ingest, jt808, scale: messages to send"
    )
    bench.add_argument(
        "--devices", type=int, default=2_000, help="ingest, jt808, scale: devices sending"
    )
    bench.add_argument(
        "--graph", help="gis: a GraphML street network (default: a generated lattice)"
    )
    bench.add_argument("--profile", action="store_true", help="print where the ingest time goes")
    bench.set_defaults(func=cmd_bench, own_services=True)
