"""What a replayed feed should leave in the store, from the pure data-quality rules applied
to the file in replay order: the pipeline under test is everything else."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field

from devices.messages import Location
from devices.quality import Limits, Rejection, judge_location
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


def expected_outcome(rows: list[FeedRow], now: float) -> Expected:
    """Apply the data-quality rules to the (already shifted) feed in the order the replay
    publishes it, judged a second after `now`."""
    outcome, seen, rejected_seen = Expected(), set(), set()
    last: dict[str, LastFix] = {}
    for row in sorted(rows, key=lambda r: r.at):
        dev = f"{row.user}/{row.device}"
        message = location_message(row, row.at)
        msg = Location(**{k: v for k, v in message.items() if k != "_type"})
        judged = judge_location(
            DeviceKey(dev), msg, last=last.get(dev), now=now + 1, limits=Limits()
        )
        if isinstance(judged, Rejection):
            # The same message rejected again is a duplicate, as the store counts it.
            again = (dev, json.dumps(message)) in rejected_seen
            rejected_seen.add((dev, json.dumps(message)))
            outcome.rejected["duplicate" if again else judged.reason] += 1
            outcome.rejected_by_device[dev] += 1
            continue
        key = (dev, judged.fix_at, f"{judged.lon:.7f}", f"{judged.lat:.7f}")
        if key in seen:
            outcome.rejected["duplicate"] += 1
            outcome.rejected_by_device[dev] += 1
            continue
        seen.add(key)
        outcome.stored += 1
        outcome.tracks[dev].append((judged.fix_at, judged.lon, judged.lat))
        if judged.backfill:
            outcome.backfill += 1
        else:
            last[dev] = LastFix(judged.lon, judged.lat, judged.fix_at)
            outcome.last_live[dev] = (judged.lon, judged.lat, judged.fix_at)
    return outcome


def stored_keys(store: Store, devices) -> collections.Counter:
    keys = collections.Counter()
    for dev in devices:
        for _, link, _ in store.tracks.chain_links(DeviceKey(dev)):
            fix = json.loads(link.canonical)
            keys[(dev, fix["fix_at"], fix["lon"], fix["lat"])] += 1
    return keys
