"""IoT sensors in the registry (`yiwang devices register-sensor | sensors |
unregister-sensor`): a sensor of a type of the catalogue at its place, the area holding it
resolved from the city's area tree."""

from __future__ import annotations

import argparse
import sys

from devices.registry import make_sensor
from dispatch.cli.broker import issue_sensor_credentials
from dispatch.settings import Settings
from dispatch.store import Store
from gis.coords import Datum


def register_sensor(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    """Register (or move, or retype) one sensor; with --issue-credentials also its account."""
    catalogue = settings.policies().sensors
    sensor = make_sensor(
        sensor_id=args.sensor,
        sensor_type=args.type,
        lon=args.lon,
        lat=args.lat,
        datum=Datum(args.crs),
        catalogue=catalogue,
        areas=settings.areas(),
        registered_at=settings.clock()(),
        place=args.place or "",
        heartbeat_s=args.heartbeat_s,
        mobile=args.mobile,
    )
    store.sensors.register(sensor)
    kind = catalogue.type_or_raise(sensor.sensor_type)
    where = f" {sensor.place}" if sensor.place else ""
    print(
        f"sensor {sensor.id}: {kind.label} ({kind.key}), alarm at ≥ {kind.threshold:g} "
        f"{kind.unit}, at {sensor.location.lon:.6f},{sensor.location.lat:.6f}{where}, "
        f"area {sensor.area or '-'}, heartbeat {catalogue.heartbeat_of(sensor):.0f} s"
        f"{', mobile' if sensor.mobile else ''}"
    )
    if args.issue_credentials:
        return issue_sensor_credentials(
            settings, store, sensor.id, args.broker_host or settings.mqtt_host
        )
    return 0


def list_sensors(settings: Settings, store: Store) -> int:
    heartbeat_of = settings.policies().sensors.heartbeat_of
    for sensor_id, sensor in sorted(store.sensors.sensors().items()):
        lon, lat = sensor.location
        print(
            f"{sensor_id}\t{sensor.sensor_type}\t{lon:.6f},{lat:.6f}\t{sensor.area or '-'}\t"
            f"{heartbeat_of(sensor):.0f} s\t{sensor.place or '-'}"
        )
    return 0


def unregister_sensor(store: Store, sensor_id: str) -> int:
    if not store.sensors.unregister(sensor_id):
        print(f"sensor {sensor_id!r} was not registered", file=sys.stderr)
        return 1
    print(f"sensor {sensor_id}: unregistered; its messages are refused from now on")
    return 0


def add_sensor_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    register = actions.add_parser(
        "register-sensor",
        help="register an IoT sensor (smoke, kitchen exhaust, grease trap, noise, water level) "
        "at its place",
    )
    register.add_argument("sensor", help="the sensor's id: its topics are {root}/iot/SENSOR/...")
    register.add_argument(
        "--type", required=True, help="a sensor type of the catalogue (smoke, noise, ...)"
    )
    register.add_argument("--lon", type=float, required=True)
    register.add_argument("--lat", type=float, required=True)
    register.add_argument(
        "--crs",
        choices=[d.value for d in Datum],
        default=Datum.WGS84.value,
        help="the datum --lon/--lat are given in (gcj02 from Amap, bd09 from Baidu)",
    )
    register.add_argument("--place", help="address or shop, shown in its incidents' titles")
    register.add_argument(
        "--heartbeat-s", type=float, help="silent this long raises an alert (default: its type's)"
    )
    register.add_argument(
        "--mobile", action="store_true", help="its readings' own positions place its alarms"
    )
    register.add_argument(
        "--issue-credentials", action="store_true", help="also issue its broker credentials"
    )
    register.add_argument(
        "--broker-host", help="the broker's name as sensors reach it (default: YIWANG_MQTT_HOST)"
    )
    actions.add_parser("sensors", help="print every registered sensor")
    unregister = actions.add_parser("unregister-sensor", help="remove a sensor")
    unregister.add_argument("sensor")
