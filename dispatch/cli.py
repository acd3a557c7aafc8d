"""The `yiwang` command: run the center, manage devices, replay feeds, measure."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn

from bench import clocks as clocks_bench
from bench import gis as gis_bench
from bench import ingest as ingest_bench
from bench import recommend as recommend_bench
from devices.registry import load_bindings
from dispatch.api.app import WORKERS, build_ingest, create_app
from dispatch.core.track import BrokenChainError, DeviceKey, verify_chain
from dispatch.engine import Engine
from dispatch.services import ManagedMosquitto, ManagedRedis
from dispatch.settings import Settings
from dispatch.store import Binding, Store
from simulators.patrol import make_walkers, patrol
from simulators.publisher import Publisher
from simulators.replay import read_tdrive, replay

log = logging.getLogger("yiwang")


def _serve(settings: Settings, *, with_workers: bool) -> None:
    app = create_app(settings, workers=WORKERS if with_workers else ())
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    log.info("serving http://%s:%d", settings.http_host, settings.http_port)
    _serve(settings, with_workers=not args.api_only)
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:

    store = Store.from_url(settings.redis_url, settings.key_prefix)
    store.load_functions()
    worker = build_ingest(settings, store)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    log.info(
        "ingesting %s/# from %s:%d into %s",
        settings.topic_root,
        settings.mqtt_host,
        settings.mqtt_port,
        settings.redis_url,
    )
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()
    return 0


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.from_url(settings.redis_url, settings.key_prefix)
    engine = Engine(
        store,
        holder=settings.engine_id,
        policies=settings.policies(),
        lease_ms=settings.engine_lease_ms,
        city=settings.city(datetime.now(ZoneInfo(settings.timezone))),
        presence_limits=(settings.stale_after_s, settings.offline_after_s),
        clock=settings.clock(),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("engine %s standing by for the lease on %s", settings.engine_id, settings.redis_url)
    try:
        engine.run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:

    workdir = settings.data_dir / "demo"
    redis_service, broker = ManagedRedis(workdir / "redis"), ManagedMosquitto(workdir / "mosquitto")
    redis_service.start()
    broker.start()
    settings = settings.model_copy(
        update={"redis_url": redis_service.url, "mqtt_port": broker.port, "mqtt_host": "127.0.0.1"}
    )
    stop = threading.Event()
    walkers = make_walkers(args.officers, args.lon, args.lat, spread_m=1500.0, seed=args.seed)

    def feed() -> None:
        with Publisher("127.0.0.1", broker.port, client_id="yiwang-demo-patrol") as publisher:
            patrol(publisher, walkers, root=settings.topic_root, interval_s=2.0, stop=stop)

    threading.Thread(target=feed, name="patrol", daemon=True).start()
    base = f"http://{settings.http_host}:{settings.http_port}"
    print(
        f"\nYiwang demo: {args.officers} officers on patrol, data under {workdir}\n"
        f"  devices      {base}/api/devices\n"
        f"  incidents    {base}/api/incidents   (POST one to start its clock)\n"
        f"  live feed    ws://{settings.http_host}:{settings.http_port}/ws/live\n"
        f"  ingest stats {base}/api/ingest/stats\n"
        f"  health       {base}/api/health\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        _serve(settings, with_workers=True)
    finally:
        stop.set()
        broker.stop()
        redis_service.stop()
    return 0


def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:

    store = Store.from_url(settings.redis_url, settings.key_prefix)
    if args.action == "import":
        bindings = load_bindings(Path(args.file))
        store.bind(bindings)
        print(f"bound {len(bindings)} devices from {args.file}")
    elif args.action == "bind":
        store.bind([Binding(args.device, args.officer, args.team or "")])
        print(f"{args.device} → officer {args.officer}, team {args.team or '-'}")
    elif args.action == "unbind":
        if not store.unbind(args.device):
            print(f"{args.device} was not bound", file=sys.stderr)
            return 1
    elif args.action == "list":
        for binding in sorted(store.bindings().values(), key=lambda b: b.device):
            origin = " (auto)" if binding.auto else ""
            print(f"{binding.device}\t{binding.officer}\t{binding.team or '-'}{origin}")
    elif args.action == "verify":
        device = DeviceKey(args.key)
        links = [link for _, link, _ in store.chain_links(device)]
        try:
            head = verify_chain(device, links)
        except BrokenChainError as exc:
            print(f"FAIL {exc}", file=sys.stderr)
            return 1
        print(f"OK {device}: {len(links)} links, head {head}")
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:

    rows = list(read_tdrive(Path(args.file)))
    with Publisher(settings.mqtt_host, settings.mqtt_port, client_id="yiwang-replay") as publisher:
        count = replay(
            rows,
            publisher,
            root=settings.topic_root,
            speed=args.speed,
            ends_at=None if args.keep_times else time.time(),
        )
    print(f"published {count} fixes; the broker acknowledged {len(publisher.ledger)}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.capability == "gis":
        return gis_bench.main(Path(args.graph) if args.graph else None)
    if args.capability == "recommend":
        return recommend_bench.main()
    if args.capability == "clocks":
        return clocks_bench.main()
    return ingest_bench.main(messages=args.messages, devices=args.devices, profile=args.profile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yiwang",
        description="Yiwang command center. Settings come from YIWANG_* environment variables "
        "(YIWANG_REDIS_URL, YIWANG_MQTT_HOST, YIWANG_MQTT_PORT, ...).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the API with an ingest worker, an engine and order delivery"
    )
    serve.add_argument("--api-only", action="store_true", help="no workers (scale-out API nodes)")
    serve.set_defaults(func=cmd_serve)

    ingest = commands.add_parser("ingest", help="run one ingest worker (MQTT → Redis)")
    ingest.set_defaults(func=cmd_ingest)

    engine = commands.add_parser(
        "engine", help="run the incident engine (leads while it holds the lease, else stands by)"
    )
    engine.set_defaults(func=cmd_engine)

    demo = commands.add_parser(
        "demo", help="start private Redis and Mosquitto, the server and officers on patrol"
    )
    demo.add_argument("--officers", type=int, default=40, help="simulated officers (default 40)")
    demo.add_argument("--lon", type=float, default=119.6495, help="patrol centre longitude")
    demo.add_argument("--lat", type=float, default=29.0895, help="patrol centre latitude")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)

    devices = commands.add_parser("devices", help="device ↔ officer ↔ team bindings and chains")
    actions = devices.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="bind devices from a CSV or YAML file")
    imp.add_argument("file", help="columns/keys: device, officer, team")
    bind = actions.add_parser("bind", help="bind one device to an officer")
    bind.add_argument("device", help="device serial (the last topic level)")
    bind.add_argument("--officer", required=True, help="officer login (the user topic level)")
    bind.add_argument("--team", help="team id")
    unbind = actions.add_parser("unbind", help="remove a device's binding")
    unbind.add_argument("device")
    actions.add_parser("list", help="print every binding")
    verify = actions.add_parser("verify", help="recompute a device's hash chain")
    verify.add_argument("key", metavar="USER/DEVICE")
    devices.set_defaults(func=cmd_devices)

    replay = commands.add_parser("replay", help="replay a recorded feed over MQTT")
    replay.add_argument("format", choices=["tdrive"], help="feed format")
    replay.add_argument("file", help="feed file")
    replay.add_argument(
        "--speed", type=float, default=0.0, help="time factor; 0 = as fast as possible"
    )
    replay.add_argument(
        "--keep-times", action="store_true", help="keep recorded times (default: feed ends now)"
    )
    replay.set_defaults(func=cmd_replay)

    bench = commands.add_parser("bench", help="measure a capability against a baseline")
    bench.add_argument("capability", choices=["ingest", "gis", "recommend", "clocks"])
    bench.add_argument("--messages", type=int, default=100_000, help="ingest: messages to send")
    bench.add_argument("--devices", type=int, default=2_000, help="ingest: devices sending")
    bench.add_argument(
        "--graph", help="gis: a GraphML street network (default: a generated lattice)"
    )
    bench.add_argument("--profile", action="store_true", help="print where the ingest time goes")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return int(args.func(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
