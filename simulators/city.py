"""A simulated city: officers who patrol the streets, take orders and behave like people.

The model is pure: time comes in as `now` (epoch seconds on the center's clock) and what the
devices would send comes out as `Message`s, so the same model runs in a test step by step, in
a scenario at twenty times real speed and in the demo at real speed. Each officer:

- patrols its own area along the streets at patrol speed, reporting every few seconds;
- on an order (`/dispatch`), waits an acceptance delay, then accepts or (sometimes) rejects;
- drives the street route to the incident at response speed, and lets GPS tell the center it
  has left and arrived: it presses no button for either;
- handles the incident for a while, reports `done`, and goes back to patrol.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from gis.coords import LonLat, haversine_m
from simulators.cityfiles import SimCity, SimOfficer


@dataclass(frozen=True)
class Behaviour:
    """How officers act; times in simulated seconds, speeds in km/h."""

    accept_delay_s: tuple[float, float] = (5.0, 35.0)
    reject_probability: float = 0.05
    handling_s: tuple[float, float] = (120.0, 420.0)
    patrol_kmh: float = 20.0
    response_kmh: float = 40.0
    report_every_s: float = 5.0
    battery_drain_per_h: float = 6.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Behaviour:
        pairs = ("accept_delay_s", "handling_s")
        return cls(**{k: tuple(v) if k in pairs else float(v) for k, v in data.items()})


class Duty(StrEnum):
    PATROL = "patrol"
    ORDERED = "ordered"  # deciding whether to accept
    RESPONDING = "responding"
    HANDLING = "handling"


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication a device makes: topic under the root, JSON payload."""

    at: float
    user: str
    device: str
    suffix: str  # "" for a location, else "ack", "conn", ...
    payload: dict[str, Any]

    def topic(self, root: str) -> str:
        base = f"{root}/{self.user}/{self.device}"
        return f"{base}/{self.suffix}" if self.suffix else base


@dataclass
class Route:
    """Points to drive through, and how far along them the officer is."""

    points: list[LonLat]
    travelled_m: float = 0.0
    legs_m: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.legs_m = [haversine_m(a, b) for a, b in itertools.pairwise(self.points)]

    @property
    def length_m(self) -> float:
        return sum(self.legs_m)

    def position(self) -> tuple[LonLat, float]:
        """Where the officer is along the route, and its heading in degrees."""
        left = self.travelled_m
        for (a, b), leg in zip(itertools.pairwise(self.points), self.legs_m, strict=True):
            if left <= leg and leg > 0:
                f = left / leg
                here = LonLat(a.lon + (b.lon - a.lon) * f, a.lat + (b.lat - a.lat) * f)
                return here, _bearing(a, b)
            left -= leg
        return self.points[-1], 0.0

    @property
    def done(self) -> bool:
        return self.travelled_m >= self.length_m


@dataclass
class Officer:
    who: SimOfficer
    position: LonLat
    rng: random.Random
    duty: Duty = Duty.PATROL
    route: Route | None = None
    speed_kmh: float = 0.0
    heading: float = 0.0
    battery: float = 100.0
    order: dict[str, Any] | None = None
    decide_at: float = 0.0
    handled_at: float = 0.0
    next_report_at: float = 0.0
    last_step_at: float | None = None


class CityModel:
    """Every simulated officer of a city, advanced together."""

    def __init__(
        self,
        city: SimCity,
        *,
        behaviour: Behaviour,
        seed: int,
        now: float,
        resume_at: Mapping[str, LonLat] | None = None,
    ) -> None:
        """`resume_at`: where officers were last seen (a restarted demo's stored fixes); each
        found there and inside the city starts from it, so its next fix is a plausible move
        from the last one, and the others from a street node of their beat."""
        self.city = city
        self.behaviour = behaviour
        self._area_nodes = {a.id: city.nodes_in(a.id) for a in city.areas.areas}
        rng = random.Random(seed)
        self.officers: dict[str, Officer] = {}
        for who in city.officers:
            own = random.Random(rng.getrandbits(64))
            start = self._random_node(who.area, own)
            last = (resume_at or {}).get(who.officer)
            if last is not None and city.areas.area_for(last) is not None:
                start = last
            officer = Officer(who, start, own)
            officer.next_report_at = now + own.uniform(0, behaviour.report_every_s)
            self.officers[who.officer] = officer

    def _random_node(self, area: str, rng: random.Random) -> LonLat:
        nodes = self._area_nodes.get(area)
        if nodes is None or len(nodes) == 0:
            nodes = self.city.streets.largest_component()
        return LonLat(*self.city.streets.lonlat[int(nodes[rng.randrange(len(nodes))])])

    def point_near(self, officer_id: str, distance_m: float) -> LonLat:
        """A street node on the officer's own beat about `distance_m` away, for scripts."""
        officer = self.officers[officer_id]
        lonlat = self.city.streets.lonlat
        candidates = self._area_nodes.get(officer.who.area)
        if candidates is None or len(candidates) == 0:
            candidates = self.city.streets.largest_component()
        gaps = np.array([haversine_m(officer.position, LonLat(*lonlat[n])) for n in candidates])
        return LonLat(*lonlat[int(candidates[int(np.argmin(np.abs(gaps - distance_m)))])])

    def street_points(self) -> dict[str, list[LonLat]]:
        """Each area's street nodes: where incidents can happen and officers can drive."""
        lonlat = self.city.streets.lonlat
        return {
            area: [LonLat(*lonlat[int(n)]) for n in nodes]
            for area, nodes in self._area_nodes.items()
        }

    def deliver(self, officer_id: str, payload: dict[str, Any], now: float) -> list[Message]:
        """An order or a withdrawal reached the officer's terminal."""
        officer = self.officers.get(officer_id)
        if officer is None or payload.get("_type") != "dispatch":
            return []
        if payload.get("cancel"):
            if officer.order and officer.order.get("order_id") == payload.get("order_id"):
                self._back_to_patrol(officer)
            return []
        if officer.duty is not Duty.PATROL:
            return [self._ack(officer, payload, "rejected", now, reason="busy with another order")]
        officer.duty, officer.order = Duty.ORDERED, payload
        officer.decide_at = now + officer.rng.uniform(*self.behaviour.accept_delay_s)
        return [self._ack(officer, payload, "received", now)]

    def step(self, now: float) -> list[Message]:
        """Move everyone to `now`; what their devices send meanwhile."""
        out: list[Message] = []
        for officer in self.officers.values():
            out += self._advance(officer, now)
        return out

    def _advance(self, officer: Officer, now: float) -> list[Message]:
        behaviour, out = self.behaviour, []
        dt = 0.0 if officer.last_step_at is None else max(0.0, now - officer.last_step_at)
        officer.last_step_at = now
        officer.battery = max(0.0, officer.battery - behaviour.battery_drain_per_h * dt / 3600)
        if officer.duty is Duty.ORDERED and now >= officer.decide_at and officer.order:
            if officer.rng.random() < behaviour.reject_probability:
                out.append(
                    self._ack(officer, officer.order, "rejected", now, reason="不在岗位附近")
                )
                self._back_to_patrol(officer)
            else:
                out.append(self._ack(officer, officer.order, "accepted", now))
                target = LonLat(float(officer.order["lon"]), float(officer.order["lat"]))
                officer.duty, officer.speed_kmh = Duty.RESPONDING, behaviour.response_kmh
                streets = self.city.streets.route(officer.position, target)
                officer.route = Route([officer.position, *streets, target])
        if officer.duty is Duty.HANDLING and now >= officer.handled_at and officer.order:
            out.append(self._ack(officer, officer.order, "done", now, reason="处置完毕"))
            self._back_to_patrol(officer)
        if officer.duty is Duty.PATROL and (officer.route is None or officer.route.done):
            destination = self._random_node(officer.who.area, officer.rng)
            officer.route = Route(
                [officer.position, *self.city.streets.route(officer.position, destination)]
            )
            officer.speed_kmh = behaviour.patrol_kmh
        if officer.route is not None and officer.duty in (Duty.PATROL, Duty.RESPONDING):
            officer.route.travelled_m += officer.speed_kmh / 3.6 * dt
            officer.position, officer.heading = officer.route.position()
            if officer.duty is Duty.RESPONDING and officer.route.done:
                officer.duty, officer.speed_kmh = Duty.HANDLING, 0.0
                officer.handled_at = now + officer.rng.uniform(*behaviour.handling_s)
        if now >= officer.next_report_at:
            officer.next_report_at = now + behaviour.report_every_s
            out.append(self._location(officer, now))
        return out

    def _back_to_patrol(self, officer: Officer) -> None:
        officer.duty, officer.order, officer.route = Duty.PATROL, None, None

    def _location(self, officer: Officer, now: float) -> Message:
        moving = officer.duty in (Duty.PATROL, Duty.RESPONDING)
        return Message(
            now,
            officer.who.officer,
            officer.who.device,
            "",
            {
                "_type": "location",
                "lat": round(officer.position.lat, 7),
                "lon": round(officer.position.lon, 7),
                "tst": int(now),
                "acc": 5,
                "vel": round(officer.speed_kmh) if moving else 0,
                "cog": round(officer.heading),
                "batt": math.ceil(officer.battery),
                "tid": officer.who.officer[-2:],
            },
        )

    def _ack(
        self, officer: Officer, order: dict[str, Any], status: str, now: float, reason: str = ""
    ) -> Message:
        payload: dict[str, Any] = {
            "_type": "ack",
            "order_id": order.get("order_id"),
            "status": status,
            "tst": int(now),
        }
        if reason:
            payload["reason"] = reason
        return Message(now, officer.who.officer, officer.who.device, "ack", payload)


def _bearing(a: LonLat, b: LonLat) -> float:
    y = (b.lon - a.lon) * math.cos(math.radians(a.lat))
    return math.degrees(math.atan2(y, b.lat - a.lat)) % 360
