"""The whole center on one machine, and simulated cities run against it.

`local_center` starts project-managed Redis and Mosquitto, gives the center's workers and the
simulated city their broker accounts, binds the city's devices and serves the API with every
worker (the JT/T 808 gateway too, on a free port unless one is set), exactly as `yiwang demo`
does; `run_scenario` plays a scenario file
against it on an accelerated clock and checks the outcome.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
import yaml

from devices.registry import UnknownDevicePolicy, load_bindings
from dispatch.api.app import create_app
from dispatch.basemap import BASEMAP, PLACES, basemap_is_current, build_basemap
from dispatch.broker_accounts import BrokerAccounts, Worker
from dispatch.core.access import Role
from dispatch.db import AccountStore, Database, upgrade
from dispatch.identity import Identity
from dispatch.settings import Settings
from dispatch.store import Store
from harness.daemons import ManagedMosquitto, ManagedRedis, free_port
from harness.postgres import ManagedPostgres
from simulators import cityfiles
from simulators.city import CityModel
from simulators.driver import Api, CityDriver
from simulators.faults import FaultInjector
from simulators.incidents import DispatcherBot, IncidentArrivals
from simulators.publisher import Publisher
from simulators.scenario import Outcome, Scenario, check, verdicts

log = logging.getLogger(__name__)

_SETTLE_S = 30.0


def prepare_city(city: str | Path, folder: Path, *, officers_per_team: int, seed: int) -> Path:
    """A city folder: `demo` builds 婺城区; a folder with a street graph but no roster gets one."""
    if str(city) == "demo":
        return cityfiles.build_demo_city(folder, officers_per_team=officers_per_team, seed=seed)
    given = Path(city)
    if (given / cityfiles.ROSTER).exists():
        return given
    graphs = sorted(given.glob("*.graphml"))
    if not graphs:
        raise cityfiles.CityFileError(
            f"{given} has neither {cityfiles.ROSTER} nor a .graphml street graph to build a city on"
        )
    return cityfiles.build_city_from_streets(
        folder, graphs[0], officers_per_team=officers_per_team, seed=seed
    )


@dataclass(frozen=True)
class LocalCenter:
    """A running local center: its settings, a login per role and an admin API token."""

    settings: Settings
    logins: dict[Role, tuple[str, str]]  # role → (account, password)
    token: str

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"


def demo_accounts(settings: Settings, officer: str) -> tuple[dict[Role, tuple[str, str]], str]:
    """An admin, a dispatcher and an officer (`officer` of the roster) with fresh passwords,
    and an admin API token: what a newcomer needs to try every page and the API."""
    db = Database(settings.database_url, max_size=1)
    try:
        upgrade(db)
        store = Store.from_url(settings.redis_url, settings.key_prefix)
        identity = Identity(AccountStore(db), store.sessions)
        logins: dict[Role, tuple[str, str]] = {}
        for role, name in (
            (Role.ADMIN, "admin"),
            (Role.DISPATCHER, "dispatcher"),
            (Role.OFFICER, officer),
        ):
            # Fresh passwords on every start: only their hashes are kept, so they are printed anew.
            password = secrets.token_urlsafe(9)
            if identity.accounts.get(name) is None:
                identity.add(
                    name, role, password, officer=officer if role is Role.OFFICER else None,
                    by="demo", now=time.time(),
                )  # fmt: skip
            else:
                identity.set_password(name, password, by="demo", now=time.time())
            logins[role] = (name, password)
        _, token = identity.accounts.issue_token("admin", "demo")
        store.close()
    finally:
        db.close()
    return logins, token


def center_accounts(broker: ManagedMosquitto, root: str, tag: str) -> dict[str, str]:
    """Accounts for the ingest, order delivery and simulator under `root`, with new passwords;
    returns the settings that log in with them (and the admin, to issue devices' credentials).
    """
    update = {
        "broker_admin_username": broker.admin_username,
        "broker_admin_password": broker.admin_password,
    }
    with BrokerAccounts(broker.admin(), root) as accounts:
        for worker in Worker:
            username, password = f"{tag}-{worker}", secrets.token_urlsafe(18)
            accounts.ensure_worker(worker, username, password)
            update[f"{worker}_mqtt_username"] = username
            update[f"{worker}_mqtt_password"] = password
    return update


def as_environment(update: dict[str, object]) -> dict[str, str]:
    """Settings fields as the YIWANG_* variables a `yiwang` subprocess reads."""
    return {f"YIWANG_{name.upper()}": str(value) for name, value in update.items()}


@contextmanager
def local_daemons(
    workdir: Path,
) -> Iterator[tuple[ManagedRedis, ManagedMosquitto, ManagedPostgres]]:
    """Project-managed Redis, Mosquitto and PostgreSQL under `workdir`, stopped on leaving."""
    redis_service = ManagedRedis(workdir / "redis")
    broker = ManagedMosquitto(workdir / "mosquitto")
    postgres = ManagedPostgres(workdir / "postgres")
    redis_service.start()
    try:
        broker.start()
        postgres.start()
        yield redis_service, broker, postgres
    finally:
        postgres.stop()
        broker.stop()
        redis_service.stop()


def prepare_center(
    settings: Settings,
    city_dir: Path,
    daemons: tuple[ManagedRedis, ManagedMosquitto, ManagedPostgres],
) -> tuple[dict[str, object], LocalCenter]:
    """Point `settings` at the daemons and the city, give the workers their broker accounts,
    bind the city's devices and add the demo accounts. Returns the settings changed (for a
    subprocess's environment) and the center as a page or a client reaches it."""
    redis_service, broker, postgres = daemons
    update: dict[str, object] = {
        "database_url": postgres.database_url("postgres"),
        "redis_url": redis_service.url,
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker.port,
        **center_accounts(broker, settings.topic_root, "yiwang"),
        # The simulated city's officers turn up on first sight, as in a trial.
        "unknown_devices": UnknownDevicePolicy.REGISTER,
        "areas_file": city_dir / cityfiles.AREAS,
        "roster_file": city_dir / cityfiles.ROSTER,
        "streets_file": city_dir / cityfiles.STREETS,
        "basemap_file": _basemap(city_dir),
        # JT/T 808 terminals dial in beside the MQTT devices, on a port of its own.
        "jt808_port": settings.jt808_port or free_port(),
    }
    settings = settings.model_copy(update=update)
    store = Store.from_url(settings.redis_url, settings.key_prefix)
    store.upgrade()
    bindings = load_bindings(city_dir / cityfiles.DEVICES)
    store.registry.bind(bindings)
    store.close()
    logins, token = demo_accounts(settings, bindings[0].officer)
    return update, LocalCenter(settings, logins, token)


@contextmanager
def local_center(settings: Settings, city_dir: Path, workdir: Path) -> Iterator[LocalCenter]:
    """Redis, Mosquitto, PostgreSQL and the server with all workers, with demo accounts."""
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    with local_daemons(workdir) as daemons:
        _, center = prepare_center(settings, city_dir, daemons)
        settings = center.settings
        try:
            config = uvicorn.Config(
                create_app(settings),
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, name="http", daemon=True)
            thread.start()
            deadline = time.monotonic() + 60
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server did not start on {settings.http_host}:{settings.http_port}; "
                        "is the port taken? set YIWANG_HTTP_PORT"
                    )
                time.sleep(0.05)
            yield center
        finally:
            if server is not None and thread is not None:
                server.should_exit = True
                thread.join(timeout=20)


def _basemap(city_dir: Path) -> Path:
    """The city folder's basemap, built again when older than its sources or its format."""
    built = city_dir / BASEMAP
    areas, streets, places = (
        city_dir / name for name in (cityfiles.AREAS, cityfiles.STREETS, PLACES)
    )
    if not basemap_is_current(built, (areas, streets, places)):
        build_basemap(areas, streets, built, places)
    return built


def run_scenario(scenario: Scenario, workdir: Path) -> tuple[list[str], Outcome]:
    """Play the scenario against a fresh local center; the unmet expectations and the outcome."""
    city_dir = prepare_city(
        scenario.city
        if scenario.city == "demo"
        else (scenario.path.parent / scenario.city).resolve(),
        workdir / "city",
        officers_per_team=scenario.officers_per_team,
        seed=scenario.seed,
    )
    policy_file = workdir / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(scenario.policy), encoding="utf-8")
    settings = Settings(
        http_port=free_port(),
        policy_file=policy_file,
        clock_rate=scenario.clock_rate,
        clock_anchor=time.time(),
        data_dir=workdir,
        engine_id="scenario-engine",
        ingest_name="scenario-ingest",
    )
    with local_center(settings, city_dir, workdir) as center:
        settings = center.settings
        clock = settings.clock()
        started = clock()
        model = CityModel(
            cityfiles.load_sim_city(city_dir),
            behaviour=scenario.behaviour,
            seed=scenario.seed,
            now=started,
        )
        api = Api(center.base_url, center.token)
        opened: dict[int, str] = {}

        def script(now: float) -> None:
            for number, scripted in enumerate(scenario.incidents, start=1):
                if number in opened or now < started + scripted.at_s:
                    continue
                if scripted.near is not None:
                    point = model.point_near(scripted.near, scripted.distance_m)
                    lon, lat = point.lon, point.lat
                else:
                    lon, lat = float(scripted.lon or 0.0), float(scripted.lat or 0.0)
                opened[number] = driver.report(scripted.report(now, lon, lat))

        with Publisher(
            settings.mqtt_host,
            settings.mqtt_port,
            client_id="scenario-devices",
            login=simulator_login(settings),
        ) as publisher:
            driver = CityDriver(
                model,
                api,
                publisher,
                settings.topic_root,
                clock,
                (settings.mqtt_host, settings.mqtt_port),
                login=simulator_login(settings),
                arrivals=_arrivals(model, scenario, started),
                faults=FaultInjector(scenario.faults, started, scenario.seed),
                dispatcher=None
                if scenario.dispatcher is None
                else DispatcherBot(scenario.dispatcher, scenario.seed),
                tick_s=min(0.1, scenario.behaviour.report_every_s / scenario.clock_rate / 2),
            )
            driver.run(threading.Event(), until=started + scenario.duration_s, script=script)
        store = Store.from_url(settings.redis_url, settings.key_prefix)
        deadline = time.monotonic() + _SETTLE_S
        while (
            verdicts(store.ingest.stats()) < len(publisher.ledger) and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        incidents = {i["id"]: i for i in api.call("GET", "/api/incidents?open_only=false")}
        outcome = Outcome(
            incidents={n: incidents[i] for n, i in opened.items() if i in incidents},
            stats=store.ingest.stats(),
            published=len(publisher.ledger),
        )
    for error in driver.errors:
        log.info("scenario %s: %s", scenario.name, error)
    return check(scenario, outcome), outcome


def simulator_login(settings: Settings) -> tuple[str, str] | None:
    """The (username, password) the simulators publish with, if the settings name one."""
    login = settings.broker_login("simulator")
    return None if login.username is None else (login.username, login.password or "")


def _arrivals(model: CityModel, scenario: Scenario, now: float) -> IncidentArrivals | None:
    if scenario.arrivals_per_hour <= 0:
        return None
    return IncidentArrivals(
        model.street_points(), per_hour=scenario.arrivals_per_hour, seed=scenario.seed, now=now
    )
