"""What a replayed feed should leave in the store, from the pure data-quality rules applied
to the file in replay order: the pipeline under test is everything else."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field

from devices.messages import Location
from devices.quality import JumpMemory, Limits, Neighbours, Rejection, judge_location, wgs84_point
from dispatch.core.track import DeviceKey, LastFix
from dispatch.store import Store
from simulators.replay import FeedRow, location_message


@dataclass
class Expected:
    stored: int = 0
    backfill: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    last_live: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    # Per device: the stored fixes as (fix_at, lon, lat) in publish order, and rejections.
    tracks: dict[str, list[tuple[int, float, float]]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    rejected_by_device: collections.Counter[str] = field(default_factory=collections.Counter)
    reanchored: int = 0  # live fixes that displaced their device's anchor as an outlier


def expected_outcome(rows: list[FeedRow], now: float) -> Expected:
    """Apply the data-quality rules to the (already shifted) feed in the order the replay
    publishes it, judged a second after `now`, with the jump filter's memory kept throughout
    and each late fix judged against the fixes stored around it."""
    outcome, seen, rejected_seen = Expected(), set(), set()
    last: dict[str, LastFix] = {}
    memory: dict[str, JumpMemory] = {}
    stored: dict[str, list[LastFix]] = collections.defaultdict(list)
    for row in sorted(rows, key=lambda r: r.at):
        dev = f"{row.user}/{row.device}"
        message = location_message(row, row.at)
        msg = Location(**{k: v for k, v in message.items() if k != "_type"})
        judged = judge_location(
            DeviceKey(dev),
            msg,
            last=last.get(dev),
            memory=memory.get(dev, JumpMemory()),
            neighbours=_neighbours(msg, last.get(dev), stored[dev], seen, dev),
            now=now + 1,
            limits=Limits(),
        )
        memory[dev] = judged.memory
        if isinstance(judged.verdict, Rejection):
            # The same message rejected again is a duplicate, as the store counts it.
            again = (dev, json.dumps(message)) in rejected_seen
            rejected_seen.add((dev, json.dumps(message)))
            outcome.rejected["duplicate" if again else judged.verdict.reason] += 1
            outcome.rejected_by_device[dev] += 1
            continue
        fix = judged.verdict
        key = (dev, fix.fix_at, f"{fix.lon:.7f}", f"{fix.lat:.7f}")
        if key in seen:
            outcome.rejected["duplicate"] += 1
            outcome.rejected_by_device[dev] += 1
            continue
        seen.add(key)
        stored[dev].append(LastFix(fix.lon, fix.lat, fix.fix_at))
        outcome.stored += 1
        outcome.tracks[dev].append((fix.fix_at, fix.lon, fix.lat))
        if fix.backfill:
            outcome.backfill += 1
        else:
            last[dev] = LastFix(fix.lon, fix.lat, fix.fix_at)
            outcome.last_live[dev] = (fix.lon, fix.lat, fix.fix_at)
        if fix.reanchored_from is not None:
            outcome.reanchored += 1
    return outcome


def _neighbours(
    msg: Location, last: LastFix | None, stored: list[LastFix], seen: set, dev: str
) -> Neighbours:
    """The stored fixes just before and after a late fix, ordered as the store orders them."""
    point = wgs84_point(msg)
    if last is None or point is None or int(msg.tst) > last.fix_at:
        return Neighbours()
    fix_at = int(msg.tst)
    if (dev, fix_at, f"{point.lon:.7f}", f"{point.lat:.7f}") in seen:
        return Neighbours()

    def order(fix: LastFix) -> tuple[int, str]:
        return fix.fix_at, f"{fix.lon:.7f}|{fix.lat:.7f}"

    before = [f for f in stored if f.fix_at <= fix_at]
    after = [f for f in stored if f.fix_at > fix_at]
    return Neighbours(
        max(before, key=order) if before else None, min(after, key=order) if after else None
    )


def stored_keys(store: Store, devices) -> collections.Counter:
    keys = collections.Counter()
    for dev in devices:
        for _, link, _ in store.tracks.chain_links(DeviceKey(dev)):
            fix = json.loads(link.canonical)
            keys[(dev, fix["fix_at"], fix["lon"], fix["lat"])] += 1
    return keys
