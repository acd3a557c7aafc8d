"""The shared GeoLife persons replayed at ×60 over MQTT: every person's stored track has the
file's point count and endpoints, minus exactly the fixes the rules reject with a reason."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatch.core.track import DeviceKey
from simulators.publisher import Publisher
from simulators.replay import (
    read_generic_csv,
    read_geolife_csv,
    read_geolife_plt,
    read_gpx,
    replay,
    shifted,
)
from tests.integration.feeds import expected_outcome
from tests.integration.helpers import verdicts, wait_until

pytestmark = pytest.mark.data

SPEED, MAX_GAP_S, PLAY_LIMIT_S = 60.0, 30.0, 30.0


def rounded(fix_at: float, lon: float | str, lat: float | str) -> tuple[int, float, float]:
    return int(fix_at), round(float(lon), 7), round(float(lat), 7)


def play_time_s(rows) -> float:
    """Seconds a time-ordered feed takes to play at ×60 with silences shortened."""
    return sum(min(b.at - a.at, MAX_GAP_S) for a, b in itertools.pairwise(rows)) / SPEED


def longest_short_recording(person: Path) -> list:
    """The person's recording with the most points that plays within the limit at ×60."""
    recordings = [list(read_geolife_plt(f)) for f in sorted((person / "Trajectory").glob("*.plt"))]
    fitting = [r for r in recordings if play_time_s(r) <= PLAY_LIMIT_S]
    return max(fitting, key=len)


def test_geolife_persons_replayed_at_60x_keep_their_tracks(
    shared_data, broker, logins, store, prefix, start_ingest
) -> None:
    persons = sorted((shared_data / "geolife-beijing" / "plt").iterdir())
    assert len(persons) == 10
    recordings = {p.name: longest_short_recording(p) for p in persons}
    rows = [row for recording in recordings.values() for row in recording]
    start_ingest()
    ends_at = int(time.time())
    played = shifted(rows, ends_at, align=True)
    expected = expected_outcome(played, ends_at)
    played_by_device: dict[str, list] = {}
    for row in played:
        played_by_device.setdefault(f"{row.user}/{row.device}", []).append(row)
    began = time.monotonic()
    with Publisher(
        "127.0.0.1", broker.port, client_id=f"{prefix}-geolife", login=logins.simulator
    ) as publisher:
        published = replay(
            rows,
            publisher,
            root=prefix,
            speed=SPEED,
            ends_at=ends_at,
            align=True,
            max_gap_s=MAX_GAP_S,
            progress=False,
        )
    took = time.monotonic() - began
    assert published == len(publisher.ledger) == len(rows)
    # Paced at ×60 on the merged feed, silences over 30 s shortened: neither faster nor stalled.
    paced = play_time_s(sorted(played, key=lambda r: r.at))
    assert paced - 1 <= took <= paced + 10
    wait_until(lambda: verdicts(store) == published, timeout_s=60, what="every fix judged")

    stats = store.ingest.stats()
    rejected = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")}
    assert stats["accepted"] == expected.stored
    assert rejected == dict(expected.rejected)
    print(
        f"\nGeoLife ×60: {published} fixes of {len(persons)} persons in {took:.1f} s; stored {stats['accepted']}, rejected {rejected}"
    )
    for person, recording in recordings.items():
        dev = f"geolife{person}/plt{person}"
        stored = [
            json.loads(link.canonical) for _, link, _ in store.tracks.chain_links(DeviceKey(dev))
        ]
        track = [rounded(f["fix_at"], f["lon"], f["lat"]) for f in stored]
        assert len(track) == len(recording) - expected.rejected_by_device[dev], person
        assert track == [rounded(*fix) for fix in expected.tracks[dev]], person
        first, last = (played_by_device[dev][i] for i in (0, -1))
        if not expected.rejected_by_device[dev]:
            assert track[0] == rounded(first.at, first.lon, first.lat), person
            assert track[-1] == rounded(last.at, last.lon, last.lat), person


def test_gpx_and_csv_readers_agree_with_geolife(shared_data, tmp_path) -> None:
    person = shared_data / "geolife-beijing" / "plt" / "004"
    rows = list(read_geolife_plt(sorted((person / "Trajectory").glob("*.plt"))[0]))
    gpx = tmp_path / "walk.gpx"
    points = "".join(
        f'<trkpt lat="{r.lat}" lon="{r.lon}"><time>{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at))}</time></trkpt>'
        for r in rows
    )
    gpx.write_text(
        '<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>officer004</name><trkseg>{points}</trkseg></trk></gpx>"
    )
    from_gpx = list(read_gpx(gpx))
    assert [(r.at, r.lon, r.lat) for r in from_gpx] == [(r.at, r.lon, r.lat) for r in rows]
    assert {(r.user, r.device) for r in from_gpx} == {("officer004", "walk")}
    generic = tmp_path / "feed.csv"
    local = ZoneInfo("Asia/Shanghai")
    generic.write_text(
        "device,time,lon,lat\n"
        + "".join(
            f"bc1,{datetime.fromtimestamp(r.at, local):%Y-%m-%d %H:%M:%S},{r.lon},{r.lat}\n"
            for r in rows
        )
    )
    assert [r.at for r in read_generic_csv(generic)] == [r.at for r in rows], (
        "local times in Asia/Shanghai"
    )
    csv_rows = list(
        read_geolife_csv(shared_data / "geolife-beijing" / "geolife_sample_users_001_005.csv")
    )
    assert len(csv_rows) == 217_653
    assert {r.user for r in csv_rows} == {"geolife001", "geolife005"}
