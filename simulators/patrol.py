"""Officers on foot patrol: a live feed that needs no recorded data.

Each officer walks at 4–6 km/h from a start point near the centre, turning a little at each
step, and reports an OwnTracks location every `interval_s`. Deterministic under a seed.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from simulators.publisher import Publisher

_METRES_PER_DEG_LAT = 111_320.0


@dataclass
class Walker:
    user: str
    device: str
    lon: float
    lat: float
    heading_rad: float
    speed_ms: float

    def step(self, dt_s: float, rng: random.Random) -> None:
        self.heading_rad += rng.gauss(0.0, 0.35)
        distance = self.speed_ms * dt_s
        self.lat += distance * math.cos(self.heading_rad) / _METRES_PER_DEG_LAT
        self.lon += (
            distance
            * math.sin(self.heading_rad)
            / (_METRES_PER_DEG_LAT * math.cos(math.radians(self.lat)))
        )


def make_walkers(count: int, lon: float, lat: float, spread_m: float, seed: int) -> list[Walker]:
    rng = random.Random(seed)
    walkers = []
    for n in range(1, count + 1):
        bearing, reach = rng.uniform(0, 2 * math.pi), spread_m * math.sqrt(rng.random())
        walkers.append(
            Walker(
                user=f"officer{n:03d}",
                device=f"bodycam{n:03d}",
                lon=lon
                + reach * math.sin(bearing) / (_METRES_PER_DEG_LAT * math.cos(math.radians(lat))),
                lat=lat + reach * math.cos(bearing) / _METRES_PER_DEG_LAT,
                heading_rad=rng.uniform(0, 2 * math.pi),
                speed_ms=rng.uniform(4.0, 6.0) / 3.6,
            )
        )
    return walkers


def patrol(
    publisher: Publisher,
    walkers: list[Walker],
    *,
    root: str,
    interval_s: float,
    stop: threading.Event,
    seed: int = 7,
) -> None:
    """Move every walker and publish its position each interval until `stop` is set."""
    rng = random.Random(seed)
    while not stop.is_set():
        now = time.time()
        for walker in walkers:
            walker.step(interval_s, rng)
            publisher.publish(
                f"{root}/{walker.user}/{walker.device}",
                {
                    "_type": "location",
                    "lat": round(walker.lat, 7),
                    "lon": round(walker.lon, 7),
                    "tst": int(now),
                    "acc": 5,
                    "vel": round(walker.speed_ms * 3.6),
                    "tid": walker.user[-2:],
                },
            )
        stop.wait(interval_s)
