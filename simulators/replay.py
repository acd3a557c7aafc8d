"""Replay recorded position feeds as OwnTracks location messages.

Feeds are read into `FeedRow`s (UTC epoch seconds, WGS-84). The replay keeps the recorded
order and pacing divided by a speed factor (0 = as fast as possible), and can shift the whole
feed so its last fix is now: old recordings then fall inside the center's time horizon, and
even a fast replay never stamps a fix in the future.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tqdm import tqdm

from simulators.publisher import Publisher

BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True, slots=True)
class FeedRow:
    user: str
    device: str
    at: float  # UTC epoch seconds
    lon: float
    lat: float


class FeedError(ValueError):
    """A feed file that cannot be read; the message names the file and line."""


def read_tdrive(path: Path) -> Iterator[FeedRow]:
    """T-Drive taxis (`taxi_id,time_local,lon,lat`, Beijing local time), one device per taxi."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for line, row in enumerate(reader, start=2):
            try:
                local = datetime.strptime(row["time_local"], "%Y-%m-%d %H:%M:%S")
                yield FeedRow(
                    user=f"taxi{row['taxi_id']}",
                    device=f"tdrive{row['taxi_id']}",
                    at=local.replace(tzinfo=BEIJING).timestamp(),
                    lon=float(row["lon"]),
                    lat=float(row["lat"]),
                )
            except (KeyError, ValueError) as exc:
                raise FeedError(f"{path}:{line}: not a T-Drive row ({exc})") from None


def location_message(row: FeedRow, at: float) -> dict[str, object]:
    return {
        "_type": "location",
        "lat": row.lat,
        "lon": row.lon,
        "tst": int(at),
        "tid": row.user[-2:],
    }


def replay(
    rows: Iterable[FeedRow],
    publisher: Publisher,
    *,
    root: str = "owntracks",
    speed: float = 0.0,
    ends_at: float | None = None,
    progress: bool = True,
) -> int:
    """Publish `rows` in time order; returns how many were published.

    `speed` 0 publishes as fast as the broker takes them; 60 plays an hour in a minute.
    `ends_at` moves the feed in time so its last fix happens at that epoch time.
    """
    ordered = sorted(rows, key=lambda r: r.at)
    if not ordered:
        return 0
    offset = 0.0 if ends_at is None else ends_at - ordered[-1].at
    started, first_at = time.monotonic(), ordered[0].at
    for row in tqdm(ordered, unit="fix", disable=not progress, desc="replay"):
        if speed > 0:
            delay = (row.at - first_at) / speed - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
        topic = f"{root}/{row.user}/{row.device}"
        publisher.publish(topic, location_message(row, row.at + offset))
    publisher.wait_acknowledged()
    return len(ordered)
