"""`yiwang bench`: each capability measured against a baseline in the same run."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import clocks as clocks_bench
from bench import e2e as e2e_bench
from bench import gis as gis_bench
from bench import ingest as ingest_bench
from bench import recommend as recommend_bench
from bench import screen as screen_bench
from dispatch.settings import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.capability == "gis":
        return gis_bench.main(Path(args.graph) if args.graph else None)
    if args.capability == "recommend":
        return recommend_bench.main()
    if args.capability == "clocks":
        return clocks_bench.main()
    if args.capability == "e2e":
        return e2e_bench.main(seconds=args.seconds)
    if args.capability == "screen":
        return screen_bench.main(seconds=min(args.seconds, 60))
    return ingest_bench.main(messages=args.messages, devices=args.devices, profile=args.profile)


def add_bench_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure a capability against a baseline")
    bench.add_argument(
        "capability", choices=["ingest", "gis", "recommend", "clocks", "e2e", "screen"]
    )
    bench.add_argument("--seconds", type=int, default=30, help="e2e, screen: seconds per phase")
    bench.add_argument("--messages", type=int, default=100_000, help="ingest: messages to send")
    bench.add_argument("--devices", type=int, default=2_000, help="ingest: devices sending")
    bench.add_argument(
        "--graph", help="gis: a GraphML street network (default: a generated lattice)"
    )
    bench.add_argument("--profile", action="store_true", help="print where the ingest time goes")
    bench.set_defaults(func=cmd_bench)
