"""The IoT sensors' keys: the registered sensors (one hash by sensor id), when each was last
heard (the devices' last-seen index, under the sensor's device key `iot/{sensor}`), and the
sensors the engine reported silent (written with its step, in incidents.py)."""

from __future__ import annotations

import msgspec
import redis

from devices.topics import SENSOR_LEVEL
from dispatch.core.sensors import Sensor
from dispatch.core.track import device_key
from dispatch.store.keys import Keys

_SENSOR = msgspec.json.Decoder(Sensor)


def sensor_device(sensor_id: str) -> str:
    """The device key a sensor's messages are counted and last seen under."""
    return device_key(SENSOR_LEVEL, sensor_id)


class SensorStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def register(self, sensor: Sensor) -> None:
        """Add a sensor, or replace its record (a sensor moved, or of another type)."""
        self.redis.hset(self.keys.sensors, sensor.id, msgspec.json.encode(sensor).decode())

    def unregister(self, sensor_id: str) -> bool:
        return bool(self.redis.hdel(self.keys.sensors, sensor_id))

    def sensor(self, sensor_id: str) -> Sensor | None:
        raw = self.redis.hget(self.keys.sensors, sensor_id)
        return None if raw is None else _SENSOR.decode(raw)

    def sensors(self) -> dict[str, Sensor]:
        return {k: _SENSOR.decode(v) for k, v in self.redis.hgetall(self.keys.sensors).items()}

    def heard(self) -> list[tuple[Sensor, float | None]]:
        """Every registered sensor with when it was last heard (None: never), in one round
        trip after the registry's."""
        sensors = list(self.sensors().values())
        if not sensors:
            return []
        seen = self.redis.zmscore(self.keys.seen_at, [sensor_device(s.id) for s in sensors])
        return [
            (sensor, None if at is None else float(at))
            for sensor, at in zip(sensors, seen, strict=True)
        ]
