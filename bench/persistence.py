"""What a kill -9 of Mosquitto loses of QoS 1 messages queued for an offline persistent
session, under each persistence setting, against a clean stop in the same run.

A subscriber opens a persistent session (MQTT 5, an hour's expiry, QoS 1) and leaves; the
broker is restarted cleanly so the session itself is on disk, as it is for an ingest worker
that has run a while. Then N messages are published, each acknowledged by the broker, and
`KILL_AFTER_S` after the last acknowledgement the broker is killed with SIGKILL (the baseline:
stopped with SIGTERM, which writes everything on the way out), started again on the same
files, and the subscriber returns and counts what it is given. Each setting runs `ROUNDS`
times; the publish rate shows what writing more often costs. Last line: JSON.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.center import center_accounts
from harness.daemons import MOSQUITTO_PERSISTENCE_SETTINGS, ManagedMosquitto

ROOT = "benchpersist"
ROUNDS = 3
KILL_AFTER_S = 0.5
_WAIT_S = 30.0  # for acknowledgements and for the queue to drain: a bound, never reached

# (name, persistence settings, killed): the shipped setting stopped cleanly is the baseline.
VARIANTS = (
    ("clean stop (baseline)", MOSQUITTO_PERSISTENCE_SETTINGS, False),
    ("autosave_interval 5 (before)", "persistence true\nautosave_interval 5\n", True),
    ("autosave_interval 1", "persistence true\nautosave_interval 1\n", True),
    (
        "autosave_on_changes, every 100 changes",
        "persistence true\nautosave_on_changes true\nautosave_interval 100\n",
        True,
    ),
    (
        "autosave_on_changes, every 1000 changes",
        "persistence true\nautosave_on_changes true\nautosave_interval 1000\n",
        True,
    ),
    (
        "autosave_on_changes, every change",
        "persistence true\nautosave_on_changes true\nautosave_interval 1\n",
        True,
    ),
)


def _client(client_id: str, login: tuple[str, str]) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(*login)
    client.max_inflight_messages_set(0)  # no cap: the broker's acknowledgements pace it
    client.max_queued_messages_set(0)
    return client


def _subscriber_session(
    broker: ManagedMosquitto, login: tuple[str, str]
) -> tuple[mqtt.Client, list[int]]:
    """Connect the persistent subscriber; the message numbers it receives fill the list."""
    received: list[int] = []
    subscribed = threading.Event()
    client = _client("bench-persistent-subscriber", login)
    client.on_message = lambda _c, _u, message: received.append(int(message.payload))
    client.on_subscribe = lambda *_: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(f"{ROOT}/queued", qos=1)
    if not subscribed.wait(_WAIT_S):
        raise RuntimeError("the subscriber's subscription was not acknowledged")
    return client, received


def _publish(broker: ManagedMosquitto, login: tuple[str, str], messages: int) -> float:
    """Publish `messages` at QoS 1; seconds until the broker acknowledged the last."""
    acknowledged = threading.Semaphore(0)
    client = _client("bench-publisher", login)
    client.on_publish = lambda *_: acknowledged.release()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    started = time.perf_counter()
    for number in range(messages):
        client.publish(f"{ROOT}/queued", str(number).encode(), qos=1)
    for _ in range(messages):
        if not acknowledged.acquire(timeout=_WAIT_S):
            raise RuntimeError("the broker stopped acknowledging")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def _one_round(persistence: str, killed: bool, messages: int) -> tuple[int, float]:
    """Messages lost, and acknowledged messages per second, for one setting."""
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-persist-") as workdir:
        broker = ManagedMosquitto(Path(workdir), persistence=persistence)
        broker.start()
        try:
            accounts = center_accounts(broker, ROOT, "bench")
            login = (accounts["simulator_mqtt_username"], accounts["simulator_mqtt_password"])
            subscriber, _ = _subscriber_session(broker, login)
            subscriber.disconnect()
            subscriber.loop_stop()
            broker.restart()  # a clean stop writes the session: only messages are at stake
            elapsed = _publish(broker, login, messages)
            time.sleep(KILL_AFTER_S)
            if killed:
                broker.kill()
            else:
                broker.stop()
            broker.start()
            subscriber, received = _subscriber_session(broker, login)
            deadline = time.monotonic() + _WAIT_S
            # Whatever the broker kept it sends at once; a short quiet spell means it is done.
            last, quiet_since = -1, time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
                if len(received) != last:
                    last, quiet_since = len(received), time.monotonic()
                time.sleep(0.05)
            subscriber.disconnect()
            subscriber.loop_stop()
            return messages - len(set(received)), messages / elapsed
        finally:
            broker.stop()


def main(messages: int = 2_550, long_outage: int = 20_550) -> int:
    """Every setting with `messages` queued (no multiple of a save's 100 or 1000 changes,
    so what falls after the last save shows), then the baseline and the two cheap ones with
    `long_outage` queued: a save writes the whole queue, so writing often costs more as it
    grows."""
    print(
        f"broker persistence: QoS 1 messages queued for an offline persistent session, "
        f"kill -9 {KILL_AFTER_S} s after the last acknowledgement, {ROUNDS} rounds"
    )
    result: dict[str, object] = {"kill_after_s": KILL_AFTER_S}
    cheap = {VARIANTS[0][0], VARIANTS[1][0], VARIANTS[3][0], VARIANTS[4][0]}
    for queued, variants in (
        (messages, VARIANTS),
        (long_outage, [v for v in VARIANTS if v[0] in cheap]),
    ):
        print(f" {queued} queued")
        for name, persistence, killed in variants:
            rounds = [_one_round(persistence, killed, queued) for _ in range(ROUNDS)]
            lost = [lost for lost, _ in rounds]
            rate = sorted(rate for _, rate in rounds)[len(rounds) // 2]
            print(f"  {name:<40} lost {lost}  publish {rate:8,.0f} msg/s (median)")
            result[f"{name}, {queued} queued"] = {"lost": lost, "publish_per_s": round(rate)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
