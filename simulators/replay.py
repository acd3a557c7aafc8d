"""Replay recorded position feeds as OwnTracks location messages.

Feeds are read into `FeedRow`s (UTC epoch seconds, WGS-84) from T-Drive CSV, GeoLife PLT
and CSV, GPX, or a generic CSV. The replay keeps each device's recorded order and spacing of
fix times; pacing is the recording's divided by a speed factor (0 = as fast as possible),
with long silences optionally shortened. Times can be kept, or shifted so the feed ends now
(each device's own recording, with `align`, so feeds from different days play together):
old recordings then fall inside the center's time horizon and no fix is ever stamped in the
future, however fast the replay.
"""

from __future__ import annotations

import csv
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from simulators.publisher import Ledger, Publisher

BEIJING = timezone(timedelta(hours=8))
_GPX = "{http://www.topografix.com/GPX/1/1}"


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


def read_geolife_plt(path: Path) -> Iterator[FeedRow]:
    """GeoLife PLT files (a file, or a folder searched for `*.plt`); the person is the folder
    above `Trajectory`. Six header lines, then `lat,lon,0,alt_ft,days,date,time` in UTC."""
    files = sorted(path.rglob("*.plt")) if path.is_dir() else [path]
    if not files:
        raise FeedError(f"{path}: no .plt files")
    for file in files:
        person = file.parent.parent.name if file.parent.name == "Trajectory" else file.stem
        with file.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line_no <= 6 or not line.strip():
                    continue
                parts = line.strip().split(",")
                try:
                    at = datetime.fromisoformat(f"{parts[5]}T{parts[6]}+00:00").timestamp()
                    yield FeedRow(
                        f"geolife{person}", f"plt{person}", at, float(parts[1]), float(parts[0])
                    )
                except (IndexError, ValueError) as exc:
                    raise FeedError(f"{file}:{line_no}: not a GeoLife point ({exc})") from None


def read_geolife_csv(path: Path) -> Iterator[FeedRow]:
    """GeoLife extracts as CSV: `lat,lng,datetime,uid`, times in UTC."""
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                at = datetime.fromisoformat(row["datetime"]).replace(tzinfo=UTC).timestamp()
                person = row["uid"]
                yield FeedRow(
                    f"geolife{person}", f"csv{person}", at, float(row["lng"]), float(row["lat"])
                )
            except (KeyError, ValueError) as exc:
                raise FeedError(f"{path}:{line}: not a GeoLife CSV row ({exc})") from None


def read_gpx(path: Path) -> Iterator[FeedRow]:
    """GPX 1.1 track points with times; the device is the file name, the user its track name."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise FeedError(f"{path}: not XML ({exc})") from None
    for number, track in enumerate(root.iter(f"{_GPX}trk"), start=1):
        name = track.findtext(f"{_GPX}name") or f"{path.stem}-{number}"
        for point in track.iter(f"{_GPX}trkpt"):
            stamp = point.findtext(f"{_GPX}time")
            if stamp is None:
                raise FeedError(f"{path}: a point of track {name!r} has no <time>")
            yield FeedRow(
                name,
                path.stem,
                _parse_time(stamp, UTC),
                float(point.attrib["lon"]),
                float(point.attrib["lat"]),
            )


def read_generic_csv(path: Path, zone: str = "Asia/Shanghai") -> Iterator[FeedRow]:
    """Any CSV with `device,time,lon,lat` (and optionally `user`, else the device): time as
    epoch seconds or ISO 8601; times without an offset are in `zone`."""
    tz = ZoneInfo(zone)
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                device = row["device"]
                yield FeedRow(
                    row.get("user") or device,
                    device,
                    _parse_time(row["time"], tz),
                    float(row["lon"]),
                    float(row["lat"]),
                )
            except (KeyError, ValueError) as exc:
                raise FeedError(f"{path}:{line}: needs device,time,lon,lat ({exc!r})") from None


def _parse_time(text: str, tz: timezone | ZoneInfo) -> float:
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()


READERS = {
    "tdrive": read_tdrive,
    "geolife": read_geolife_plt,
    "geolife-csv": read_geolife_csv,
    "gpx": read_gpx,
    "csv": read_generic_csv,
}


def location_message(row: FeedRow, at: float) -> dict[str, object]:
    return {
        "_type": "location",
        "lat": row.lat,
        "lon": row.lon,
        "tst": int(at),
        "tid": row.user[-2:],
    }


def shifted(rows: Iterable[FeedRow], ends_at: float, *, align: bool) -> list[FeedRow]:
    """The rows moved in time so the feed (each device's, with `align`) ends at `ends_at`."""
    rows = list(rows)
    last: dict[tuple[str, str], float] = {}
    for row in rows:
        key = _recording(row, align)
        last[key] = max(last.get(key, row.at), row.at)
    return [
        FeedRow(r.user, r.device, r.at + ends_at - last[_recording(r, align)], r.lon, r.lat)
        for r in rows
    ]


def _recording(row: FeedRow, align: bool) -> tuple[str, str]:
    """Whose recording a row belongs to: its device (user and name: many phones are called
    `phone`), or the whole feed."""
    return (row.user, row.device) if align else ("", "")


class PerDevicePublishers:
    """One MQTT connection per device, as a fleet of real phones would hold."""

    def __init__(
        self, host: str, port: int, client_prefix: str, login: tuple[str, str] | None = None
    ) -> None:
        self.host, self.port, self.client_prefix = host, port, client_prefix
        self.login = login
        self._publishers: dict[str, Publisher] = {}

    def publish(self, topic: str, payload: dict[str, object]) -> None:
        # A device is its user and its name (`{root}/{user}/{device}`): many share a name.
        device = topic.split("/", 1)[1]
        publisher = self._publishers.get(topic)
        if publisher is None:
            publisher = Publisher(
                self.host, self.port, client_id=f"{self.client_prefix}-{device}", login=self.login
            )
            self._publishers[topic] = publisher.start()
        publisher.publish(topic, payload)

    def wait_acknowledged(self) -> None:
        for publisher in self._publishers.values():
            publisher.wait_acknowledged()

    @property
    def ledger(self) -> Ledger:
        merged = Ledger()
        for publisher in self._publishers.values():
            merged.entries += publisher.ledger.entries
        return merged

    def close(self) -> None:
        for publisher in self._publishers.values():
            publisher.close()


def replay(
    rows: Iterable[FeedRow],
    publisher: Publisher | PerDevicePublishers,
    *,
    root: str = "owntracks",
    speed: float = 0.0,
    ends_at: float | None = None,
    align: bool = False,
    max_gap_s: float | None = None,
    progress: bool = True,
) -> int:
    """Publish `rows` in time order; returns how many were published.

    `speed` 0 publishes as fast as the broker takes them; 60 plays an hour in a minute.
    `ends_at` moves the feed in time so its last fix (each device's, with `align`) happens
    then. `max_gap_s` shortens longer silences of the recording in the pacing only: fix
    times keep their recorded spacing.
    """
    if ends_at is not None:
        rows = shifted(rows, ends_at, align=align)
    ordered = sorted(rows, key=lambda r: r.at)
    if not ordered:
        return 0
    started, played, previous = time.monotonic(), 0.0, ordered[0].at
    for row in tqdm(ordered, unit="fix", disable=not progress, desc="replay"):
        gap = row.at - previous
        played += gap if max_gap_s is None else min(gap, max_gap_s)
        previous = row.at
        if speed > 0:
            delay = played / speed - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
        publisher.publish(f"{root}/{row.user}/{row.device}", location_message(row, row.at))
    publisher.wait_acknowledged()
    return len(ordered)
