"""Commands that run the center and manage its devices: serve, ingest, engine, devices."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn

from devices.registry import BindingError, load_bindings, make_binding, split_binding_key
from dispatch.api.app import WORKERS, build_ingest, create_app
from dispatch.broker_accounts import BrokerAccountError
from dispatch.cli.broker import follow_binding, issue_credentials, revoke_credentials
from dispatch.cli.device_keys import issue_http_key, revoke_http_key
from dispatch.cli.ingest import retire_ingest
from dispatch.cli.sensors import (
    add_sensor_actions,
    list_sensors,
    register_sensor,
    unregister_sensor,
)
from dispatch.core.track import DeviceKey
from dispatch.db import Database, upgrade
from dispatch.db.history import HistoryStore
from dispatch.engine import Engine
from dispatch.evidence.archive import verify_archive
from dispatch.history import HistoryWorker
from dispatch.settings import Settings
from dispatch.store import Store, without_password

log = logging.getLogger("yiwang")


def _serve(settings: Settings, *, workers: tuple[str, ...]) -> None:
    app = create_app(settings, workers=workers)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        ssl_certfile=settings.https_certificate,
        ssl_keyfile=settings.https_key,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    scheme = "https" if settings.https_certificate else "http"
    log.info("serving %s://%s:%d", scheme, settings.http_host, settings.http_port)
    if args.api_only:
        workers: tuple[str, ...] = ()
    elif args.workers is not None:
        workers = tuple(name for name in args.workers.split(",") if name)
    else:
        workers = WORKERS
    _serve(settings, workers=workers)
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.from_url(settings.redis_url, settings.key_prefix, settings.durability())
    store.upgrade()
    city = settings.city(datetime.now(ZoneInfo(settings.timezone)))
    if args.retire is not None:
        return retire_ingest(settings, store, city, args.retire)
    worker = build_ingest(settings, store, city, name=settings.ingest_worker_name("ingest"))
    # Ctrl-C too: stopped, it leaves the shared subscription for good rather than leaving
    # its share queued in a session nobody reads.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    log.info(
        "ingest %s: %s/# from %s:%d into %s",
        worker.name,
        settings.topic_root,
        settings.mqtt_host,
        settings.mqtt_port,
        without_password(settings.redis_url),
    )
    worker.run()
    return 1 if worker.taken_over else 0


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.from_url(settings.redis_url, settings.key_prefix, settings.durability())
    store.load_functions()  # the engine trims its settled inbox with one of them
    engine = Engine(
        store,
        holder=settings.engine_id,
        policies=settings.policies(),
        lease_ms=settings.engine_lease_ms,
        city=settings.city(datetime.now(ZoneInfo(settings.timezone))),
        presence_limits=(settings.stale_after_s, settings.offline_after_s),
        clock=settings.clock(),
        zone=settings.timezone,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info(
        "engine %s standing by for the lease on %s",
        settings.engine_id,
        without_password(settings.redis_url),
    )
    try:
        engine.run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url, max_size=2)
    upgrade(db)
    city = settings.city(datetime.now(ZoneInfo(settings.timezone)))
    worker = HistoryWorker(
        Store.from_url(settings.redis_url, settings.key_prefix),
        HistoryStore(db, zone=settings.timezone),
        areas=city.areas if city else None,
        retention_s=settings.history_retention_s,
        clock=settings.clock(),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("history: copying %s into PostgreSQL", without_password(settings.redis_url))
    try:
        worker.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        db.close()
    return 0


def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _devices(args, settings)
    except (BrokerAccountError, BindingError) as exc:
        print(exc, file=sys.stderr)
        return 1


def _devices(args: argparse.Namespace, settings: Settings) -> int:

    store = Store.from_url(settings.redis_url, settings.key_prefix)
    if args.action == "import":
        bindings = load_bindings(Path(args.file))
        store.registry.bind(bindings)
        print(f"bound {len(bindings)} devices from {args.file}")
    elif args.action == "bind":
        user, device = split_binding_key(args.device)
        binding = make_binding(
            device=device, user=user, officer=args.officer or "", team=args.team or ""
        )
        follow_binding(settings, store, binding)
        store.registry.bind([binding])
        kind = "pair" if binding.pair else "terminal serial"
        print(f"{binding.key} ({kind}) → officer {binding.officer}, team {binding.team or '-'}")
        if args.issue_credentials:
            return issue_credentials(
                settings, store, binding.key, args.broker_host or settings.mqtt_host
            )
    elif args.action == "issue-credentials":
        return issue_credentials(
            settings, store, args.device, args.broker_host or settings.mqtt_host
        )
    elif args.action == "revoke-credentials":
        return revoke_credentials(settings, store, args.device)
    elif args.action == "issue-http-key":
        server = args.server_url or f"http://{settings.http_host}:{settings.http_port}"
        return issue_http_key(store, args.device, server)
    elif args.action == "revoke-http-key":
        return revoke_http_key(store, args.device)
    elif args.action == "register-sensor":
        return register_sensor(args, settings, store)
    elif args.action == "sensors":
        return list_sensors(settings, store)
    elif args.action == "unregister-sensor":
        return unregister_sensor(store, args.sensor)
    elif args.action == "unbind":
        if not store.registry.unbind(args.device):
            print(f"{args.device} was not bound", file=sys.stderr)
            return 1
    elif args.action == "list":
        for key, binding in sorted(store.registry.bindings().items()):
            origin = " (auto)" if binding.auto else ""
            print(f"{key}\t{binding.officer}\t{binding.team or '-'}{origin}")
    elif args.action == "verify":
        device = DeviceKey(args.key)
        count, problems = verify_archive(store, settings.archive(), device)
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"OK {device}: {count} links from the genesis, sealed segments and live track")
    return 0


def add_center_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve", help="run the API with an ingest worker, an engine and order delivery"
    )
    serve.add_argument("--api-only", action="store_true", help="no workers (scale-out API nodes)")
    serve.add_argument(
        "--workers",
        help=f"only these workers, comma-separated, of {','.join(WORKERS)} (the others run apart)",
    )
    serve.set_defaults(func=cmd_serve)

    ingest = commands.add_parser(
        "ingest", help="run one ingest worker (MQTT → Redis), named by YIWANG_INGEST_NAME"
    )
    ingest.add_argument(
        "--retire",
        metavar="NAME",
        help="store what the broker queued for the dead ingest worker NAME, then end its "
        "session and registration",
    )
    ingest.set_defaults(func=cmd_ingest)

    engine = commands.add_parser(
        "engine", help="run the incident engine (leads while it holds the lease, else stands by)"
    )
    engine.set_defaults(func=cmd_engine)

    history = commands.add_parser(
        "history",
        help="copy incidents, milestones and the audit into PostgreSQL; release ended incidents",
    )
    history.set_defaults(func=cmd_history)

    devices = commands.add_parser("devices", help="device ↔ officer ↔ team bindings and chains")
    actions = devices.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="bind devices from a CSV or YAML file")
    imp.add_argument(
        "file",
        help="columns/keys: user, device, team (a pair) or device, officer, team (a terminal)",
    )
    bind = actions.add_parser("bind", help="bind one device to an officer")
    bind.add_argument(
        "device",
        metavar="USER/DEVICE|SERIAL",
        help="a pair (the user and device topic levels: an OwnTracks phone) or the serial of "
        "a terminal of ours, bound to its officer under any user level",
    )
    bind.add_argument(
        "--officer", help="officer login a terminal serial belongs to (a pair's is its user)"
    )
    bind.add_argument("--team", help="team id")
    bind.add_argument(
        "--issue-credentials", action="store_true", help="also issue its broker credentials"
    )
    issue = actions.add_parser(
        "issue-credentials",
        help="create a bound device's broker account; prints its password once",
    )
    issue.add_argument("device", metavar="USER/DEVICE|SERIAL")
    revoke = actions.add_parser(
        "revoke-credentials", help="delete a device's broker account: disconnected at once"
    )
    revoke.add_argument("device", metavar="USER/DEVICE|SERIAL")
    for parser in (bind, issue):
        parser.add_argument(
            "--broker-host",
            help="the broker's name as devices reach it (default: YIWANG_MQTT_HOST)",
        )
    http_key = actions.add_parser(
        "issue-http-key",
        help="give a bound device a key for /api/osmand (Traccar Client, OsmAnd); printed once",
    )
    http_key.add_argument("device", metavar="USER/DEVICE|SERIAL")
    http_key.add_argument(
        "--server-url",
        help="the center as devices reach it, e.g. https://yiwang.example.cn "
        "(default: http://YIWANG_HTTP_HOST:YIWANG_HTTP_PORT)",
    )
    revoke_key = actions.add_parser(
        "revoke-http-key", help="withdraw a device's /api/osmand key: refused at once"
    )
    revoke_key.add_argument("device", metavar="USER/DEVICE|SERIAL")
    unbind = actions.add_parser("unbind", help="remove a device's binding")
    unbind.add_argument("device", metavar="USER/DEVICE|SERIAL")
    actions.add_parser("list", help="print every binding")
    verify = actions.add_parser("verify", help="recompute a device's hash chain")
    verify.add_argument("key", metavar="USER/DEVICE")
    add_sensor_actions(actions)
    devices.set_defaults(func=cmd_devices)
