"""Commands that simulate and replay: demo, simulate, city, replay."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from dispatch.cli.services import running_demo, services_path, write_services
from dispatch.settings import Settings
from harness.center import LocalCenter, local_center, prepare_city, run_scenario, simulator_login
from harness.demo_state import Resume, forget_previous_run, plan_resume, stored_fixes
from simulators.city import Behaviour, CityModel
from simulators.cityfiles import (
    AREAS,
    DEVICES,
    ROSTER,
    STREETS,
    build_city_from_streets,
    build_demo_city,
    load_sim_city,
)
from simulators.driver import Api, CityDriver
from simulators.incidents import DispatcherBot, DispatcherPlan, IncidentArrivals
from simulators.publisher import Publisher
from simulators.replay import READERS, PerDevicePublishers, replay
from simulators.scenario import load_scenario


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    began = time.monotonic()
    workdir = (settings.data_dir / "demo").resolve()
    services_file = services_path(settings.data_dir)
    if running_demo(services_file):
        print(
            f"a demo is already running on the files in {workdir} ({services_file}): stop it "
            "first, or give another one a folder of its own with YIWANG_DATA_DIR",
            file=sys.stderr,
        )
        return 1
    city_dir = prepare_city(
        args.city, workdir / "city", officers_per_team=args.officers_per_team, seed=args.seed
    )
    city = load_sim_city(city_dir)
    resume = _resume_or_forget(args, settings, workdir, [o.officer for o in city.officers])
    settings = settings.model_copy(
        update={"clock_rate": args.speed, "clock_anchor": resume.clock_anchor}
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with local_center(settings, city_dir, workdir) as center:
        settings = center.settings
        clock = settings.clock()
        model = CityModel(
            city, behaviour=Behaviour(), seed=args.seed, now=clock(), resume_at=resume.positions
        )
        broker = (settings.mqtt_host, settings.mqtt_port)
        login = simulator_login(settings)
        with Publisher(*broker, client_id="yiwang-demo-city", login=login) as publisher:
            driver = CityDriver(
                model,
                Api(center.base_url, center.token),
                publisher,
                settings.topic_root,
                clock,
                broker,
                login=login,
                arrivals=IncidentArrivals(
                    model.street_points(),
                    per_hour=args.incidents_per_hour,
                    seed=args.seed,
                    now=clock(),
                ),
                dispatcher=None if args.no_dispatcher else DispatcherBot(DispatcherPlan()),
            )
            write_services(services_file, settings, center.base_url)
            try:
                banner = _ready_banner(args, center, model, city_dir, resume, services_file, began)
                print(banner, flush=True)
                driver.run(stop)
            finally:
                services_file.unlink(missing_ok=True)
    return 0


def _resume_or_forget(
    args: argparse.Namespace, settings: Settings, workdir: Path, officers: list[str]
) -> Resume:
    """Carry on from the demo's previous run where that is consistent, else start afresh."""
    # The city's day runs from now, unless YIWANG_CLOCK_ANCHOR pins it (tests and trainings
    # that must see the same hour of the day whenever they run).
    pinned = "clock_anchor" in settings.model_fields_set
    anchor = settings.clock_anchor if pinned else time.time()
    if args.fresh:
        forget_previous_run(workdir)
    plan = plan_resume(
        stored_fixes(workdir, settings.key_prefix, officers),
        now=time.time(),
        rate=args.speed,
        anchor=anchor,
        anchor_pinned=pinned,
    )
    if isinstance(plan, Resume):
        return plan
    forget_previous_run(workdir)
    return Resume({}, anchor, f"a fresh city: {plan}")


def _ready_banner(
    args: argparse.Namespace,
    center: LocalCenter,
    model: CityModel,
    city_dir: Path,
    resume: Resume,
    services_file: Path,
    began: float,
) -> str:
    settings, base = center.settings, center.base_url
    logins = "".join(
        f"  {role.value:<12} {name} / {password}\n"
        for role, (name, password) in center.logins.items()
    )
    return (
        f"\nYiwang demo ready in {time.monotonic() - began:.0f} s: "
        f"{len(model.officers)} officers in {len(model.city.areas)} areas "
        f"({city_dir}), about {args.incidents_per_hour:g} incidents an hour"
        + (f", clock ×{args.speed:g}" if args.speed != 1 else "")
        + f"; {resume.note}"
        + (" (--fresh starts a new one)" if resume.positions else "")
        + "\n"
        f"  command page {base}/         (log in as the dispatcher)\n"
        f"  officer page {base}/officer  (log in as the officer)\n"
        f"  incidents    {base}/api/incidents   (POST one to start its clock)\n"
        f"  live feed    ws://{settings.http_host}:{settings.http_port}/ws/live\n"
        f"  health       {base}/api/health\n"
        f"  JT/T 808     {settings.jt808_host}:{settings.jt808_port}  (terminals: "
        "`yiwang devices bind PHONE --officer LOGIN`)\n"
        f"  broker       {settings.mqtt_host}:{settings.mqtt_port}  (MQTT; no anonymous clients)\n"
        f"  Redis        {settings.redis_url}\n"
        f"  PostgreSQL   {settings.database_url}\n"
        f"  services     {services_file}  (other `yiwang` commands use these while it runs)\n"
        f"Demo logins (account / password, new on every start):\n{logins}"
        "API calls: send Authorization: Bearer <token>, with the admin token:\n"
        f"token: {center.token}\n"
        "Ctrl-C stops everything.\n"
    )


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    for path in args.files:
        scenario = load_scenario(Path(path))
        print(f"{scenario.name}: ×{scenario.clock_rate:g}, {scenario.duration_s:.0f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="yiwang-scenario-") as workdir:
            failures, outcome = run_scenario(scenario, Path(workdir))
        print(
            f"  {outcome.published} device messages; ingest {dict(sorted(outcome.stats.items()))}"
        )
        for number, incident in sorted(outcome.incidents.items()):
            print(f"  incident {number} {incident['id']}: {incident['phase']}")
        if args.check:
            for failure in failures:
                print(f"  UNMET {failure}")
            print("  all expectations met" if not failures else f"  {len(failures)} unmet")
        failed += bool(failures)
    return 1 if args.check and failed else 0


def cmd_city(args: argparse.Namespace, settings: Settings) -> int:
    folder = Path(args.folder)
    if args.streets:
        build_city_from_streets(
            folder, Path(args.streets), teams=args.teams, officers_per_team=args.officers_per_team
        )
    else:
        build_demo_city(folder, officers_per_team=args.officers_per_team)
    print(
        f"city written to {folder}: {AREAS}, {STREETS}, {ROSTER}, {DEVICES}\n"
        f"serve it with YIWANG_AREAS_FILE={folder / AREAS} YIWANG_ROSTER_FILE={folder / ROSTER} "
        f"YIWANG_STREETS_FILE={folder / STREETS}, bind with `yiwang devices import "
        f"{folder / DEVICES}`"
    )
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    rows = list(READERS[args.format](Path(args.file)))
    host, port = settings.mqtt_host, settings.mqtt_port
    login = simulator_login(settings)
    publisher: Publisher | PerDevicePublishers
    if args.client_per_device:
        publisher = PerDevicePublishers(host, port, "yiwang-replay", login)
    else:
        publisher = Publisher(host, port, client_id="yiwang-replay", login=login).start()
    try:
        count = replay(
            rows,
            publisher,
            root=settings.topic_root,
            speed=args.speed,
            ends_at=None if args.keep_times else time.time(),
            align=args.align,
            max_gap_s=args.max_gap,
        )
    finally:
        publisher.close()
    devices = len({(row.user, row.device) for row in rows})
    print(
        f"published {count} fixes of {devices} devices; the broker acknowledged {len(publisher.ledger)}"
    )
    return 0


def add_simulation_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="start private Redis and Mosquitto, the server and a simulated city"
    )
    demo.add_argument(
        "--city",
        default="demo",
        help="demo (婺城区, built from package data), a city folder, or a folder with a "
        ".graphml street graph to build one on",
    )
    demo.add_argument("--officers-per-team", type=int, default=3, help="default 3")
    demo.add_argument(
        "--incidents-per-hour", type=float, default=60.0, help="average reports (default 60)"
    )
    demo.add_argument(
        "--no-dispatcher", action="store_true", help="leave every incident to you at the console"
    )
    demo.add_argument(
        "--speed", type=float, default=1.0, help="run the center's clock this many times faster"
    )
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="forget the previous run's incidents, tracks, accounts and history: a new city",
    )
    demo.set_defaults(func=cmd_demo, own_services=True)

    simulate = commands.add_parser(
        "simulate", help="play scenario files against a private center and check the outcome"
    )
    simulate.add_argument("what", choices=["scenario"])
    simulate.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    simulate.add_argument(
        "--check", action="store_true", help="exit 1 when any expectation is unmet"
    )
    simulate.set_defaults(func=cmd_simulate, own_services=True)

    city = commands.add_parser("city", help="write a city folder (areas, streets, roster)")
    city.add_argument("action", choices=["build"])
    city.add_argument("folder")
    city.add_argument("--streets", help="a GraphML street graph (default: the 婺城区 demo city)")
    city.add_argument("--teams", type=int, default=8, help="cells and teams around --streets")
    city.add_argument("--officers-per-team", type=int, default=3)
    city.set_defaults(func=cmd_city)

    replay = commands.add_parser("replay", help="replay a recorded feed over MQTT")
    replay.add_argument(
        "format",
        choices=sorted(READERS),
        help="tdrive CSV, geolife PLT (file or folder), geolife-csv, gpx, or csv "
        "(device,time,lon,lat[,user])",
    )
    replay.add_argument("file", help="feed file (geolife: a .plt file or a folder of them)")
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="time factor, e.g. 1 or 60; 0 = as fast as possible",
    )
    replay.add_argument(
        "--keep-times", action="store_true", help="keep recorded times (default: feed ends now)"
    )
    replay.add_argument(
        "--align", action="store_true", help="each device's recording ends now: play together"
    )
    replay.add_argument(
        "--max-gap", type=float, metavar="S", help="shorten silences longer than S recorded seconds"
    )
    replay.add_argument(
        "--client-per-device", action="store_true", help="one MQTT connection per device"
    )
    replay.set_defaults(func=cmd_replay)
