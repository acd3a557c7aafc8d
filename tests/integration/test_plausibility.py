"""The plausibility judge through a real ingest and Redis: an accepted outlier costs only
itself, late fixes are judged against the fixes stored around them, and the service area is
the city's."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import paho.mqtt.client as mqtt
import shapely

from devices.batch import BatchWriter, Received
from devices.quality import Limits
from dispatch.core.track import DeviceKey, verify_chain
from gis.coords import METRES_PER_DEG_LAT
from gis.service_area import area_around
from tests.conftest import ingest_config
from tests.integration.helpers import mqtt_client, publish_all, verdicts, wait_until

LAT = 29.08


def east(metres: float) -> float:
    return 119.65 + metres / (METRES_PER_DEG_LAT * math.cos(math.radians(LAT)))


def location(tst: int, lon: float, lat: float = LAT) -> bytes:
    return json.dumps({"_type": "location", "lat": lat, "lon": lon, "tst": tst}).encode()


def stored(store, dev: str) -> list[dict]:
    return [json.loads(link.canonical) for _, link, _ in store.tracks.chain_links(DeviceKey(dev))]


def test_an_accepted_outlier_followed_by_20_good_fixes_loses_only_itself(
    broker, logins, store, prefix, start_ingest
) -> None:
    start_ingest()
    start = int(time.time()) - 1000
    topic, dev = f"{prefix}/zhang3/BC-0042", "zhang3/BC-0042"
    # Every 10 s, silent for 400 s, then 25 km off (225 km/h: it passes), then the truth.
    before = [(start + 10 * n, east(100 * n)) for n in range(5)]
    outlier_at = start + 440
    truth = [(outlier_at + 10 * n, east(500 + 100 * n)) for n in range(1, 21)]
    fixes = [*before, (outlier_at, east(25_400)), *truth]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, [(topic, location(t, lon)) for t, lon in fixes])
    wait_until(lambda: verdicts(store) == len(fixes), what="a verdict for every fix")
    stats = store.ingest.stats()
    assert stats["accepted"] == len(fixes)
    assert not [k for k in stats if k.startswith("rejected:")], stats
    track = stored(store, dev)
    assert [f["fix_at"] for f in track] == [t for t, _ in fixes]
    # The chain keeps the outlier and says who displaced it; nothing was rewritten.
    assert [f.get("reanchored_from") for f in track][6:] == [outlier_at] + [None] * 19
    record = store.tracks.device_record(dev)
    assert int(record["fix_at"]) == truth[-1][0] and float(record["lon"]) == round(truth[-1][1], 7)
    assert verify_chain(DeviceKey(dev), [link for _, link, _ in store.tracks.chain_links(dev)])

    # The displaced outlier redelivered is a duplicate, not a late jump against its neighbours.
    publish_all(client, [(topic, location(outlier_at, east(25_400)))])
    wait_until(lambda: verdicts(store) == len(fixes) + 1)
    assert store.ingest.stats()["rejected:duplicate"] == 1
    client.loop_stop()


def test_a_late_fix_that_jumps_against_its_stored_neighbours_is_rejected_as_backfill(
    broker, logins, store, prefix, start_ingest
) -> None:
    start_ingest()
    now = int(time.time())
    topic, dev = f"{prefix}/li4/BC-0043", "li4/BC-0043"
    live = [(now - 120, east(0)), (now - 60, east(600)), (now - 10, east(1_100))]
    client = mqtt_client(broker.port, f"{prefix}-pub", mqtt.MQTTv311, logins.simulator)
    publish_all(client, [(topic, location(t, lon)) for t, lon in live])
    wait_until(lambda: verdicts(store) == 3, what="the live fixes")
    # Late, and read against Redis: one 46 km off its neighbours, one between them.
    publish_all(client, [(topic, location(now - 90, east(300), LAT + 0.42))])
    wait_until(lambda: verdicts(store) == 4)
    publish_all(client, [(topic, location(now - 90, east(300)))])
    wait_until(lambda: verdicts(store) == 5)
    stats = store.ingest.stats()
    assert (stats["accepted"], stats["backfill"], stats["rejected:implausible_jump"]) == (4, 1, 1)
    (letter,) = store.ingest.deadletters()
    assert letter["reason"] == "implausible_jump" and "backfill" in letter["detail"]
    assert f"stored fix at tst {now - 120}" in letter["detail"]
    assert [f["fix_at"] for f in stored(store, dev)] == [now - 120, now - 60, now - 10, now - 90]
    assert int(store.tracks.device_record(dev)["fix_at"]) == now - 10
    client.loop_stop()


def test_late_fixes_in_one_batch_are_judged_against_the_fixes_before_them_in_it(
    store, prefix
) -> None:
    writer = BatchWriter(store.ingest, ingest_config(prefix))
    now = int(time.time())
    topic = f"{prefix}/wang5/BC-0044"
    sent = [
        location(now - 60, east(0)),
        location(now - 10, east(500)),
        location(now - 30, east(250), LAT + 0.42),  # late, 46 km from both: rejected
        location(now - 40, east(200)),  # late, between them: backfill
        location(now - 10, east(500)),  # the same fix twice in one batch: a duplicate
    ]
    writer.write([Received(n, 1, topic, body, time.time()) for n, body in enumerate(sent)])
    stats = store.ingest.stats()
    assert (stats["accepted"], stats["backfill"]) == (3, 1)
    assert (stats["rejected:implausible_jump"], stats["rejected:duplicate"]) == (1, 1)
    assert [f["fix_at"] for f in stored(store, "wang5/BC-0044")] == [now - 60, now - 10, now - 40]


def test_a_fix_1000_km_outside_the_city_is_rejected(store, prefix) -> None:
    city = area_around([shapely.box(119.4, 28.9, 119.9, 29.3)], 50_000, "Jinhua")
    config = replace(ingest_config(prefix), limits=Limits(service_area=city))
    writer = BatchWriter(store.ingest, config)
    now = int(time.time())
    topic = f"{prefix}/zhao6/BC-0045"
    far = 119.9 + 1_000_000 / (METRES_PER_DEG_LAT * math.cos(math.radians(29.1)))
    sent = [location(now - 20, 119.65, 29.1), location(now - 10, far, 29.1)]
    writer.write([Received(n, 1, topic, body, time.time()) for n, body in enumerate(sent)])
    assert store.ingest.stats()["rejected:outside_service_area"] == 1
    (letter,) = store.ingest.deadletters()
    assert letter["detail"].endswith("outside the service area: Jinhua and 50 km around it")


def test_a_restarted_writer_remembers_the_rival_the_stopped_one_kept(store, prefix) -> None:
    now = int(time.time())
    topic, dev = f"{prefix}/sun7/BC-0046", "sun7/BC-0046"

    def send(writer: BatchWriter, tst: int, lon: float) -> None:
        writer.write([Received(tst, 1, topic, location(tst, lon), time.time())])

    stopped = BatchWriter(store.ingest, ingest_config(prefix))
    send(stopped, now - 30, east(104_000))  # a cold start 104 km off
    send(stopped, now - 20, east(0))  # the truth, rejected against it: a rival
    send(BatchWriter(store.ingest, ingest_config(prefix)), now - 10, east(100))
    assert store.ingest.stats()["rejected:implausible_jump"] == 1
    assert [f.get("reanchored_from") for f in stored(store, dev)] == [None, now - 30]
    assert int(store.tracks.device_record(dev)["fix_at"]) == now - 10
