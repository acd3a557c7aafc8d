"""The topic tree devices and the center share.

    {root}/{user}/{device}            location (OwnTracks `location`, or the broker-sent `lwt`)
    {root}/{user}/{device}/event      OwnTracks `transition` (geofence enter/leave)
    {root}/{user}/{device}/sos        alarms
    {root}/{user}/{device}/clip       body-cam clip metadata
    {root}/{user}/{device}/hb         device status heartbeat
    {root}/{user}/{device}/conn       retained presence, with the matching will
    {root}/{user}/{device}/ack        order acknowledgements
    {root}/{user}/{device}/cmd        downlink: OwnTracks commands
    {root}/{user}/{device}/dispatch   downlink: orders for our terminals

    {root}/iot/{sensor}/alarm         an IoT sensor's reading: alarm or clear
    {root}/iot/{sensor}/hb            an IoT sensor's heartbeat (device status)

`user` is the officer's login and `device` the device serial. The root defaults to `owntracks`
so unmodified OwnTracks apps publish where we listen. The user level `iot` is the sensors'
own: no officer has that login, and a sensor publishes only its two channels.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_ROOT = "owntracks"
# The user level of IoT sensors' topics (and of their device keys, `iot/{sensor}`).
SENSOR_LEVEL = "iot"
INGEST_GROUP = "ingest"
# Officer logins and serials are short; a longer level is junk, and would become a key name.
LEVEL_MAX = 64
# Control, format (bidirectional overrides, zero-width marks), line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


class Channel(StrEnum):
    """The last topic level; LOCATION is the bare device topic."""

    LOCATION = ""
    EVENT = "event"
    SOS = "sos"
    CLIP = "clip"
    HB = "hb"
    CONN = "conn"
    ACK = "ack"
    CMD = "cmd"
    DISPATCH = "dispatch"
    ALARM = "alarm"


UPLINK = (
    Channel.LOCATION,
    Channel.EVENT,
    Channel.SOS,
    Channel.CLIP,
    Channel.HB,
    Channel.CONN,
    Channel.ACK,
)
# What a sensor publishes under `{root}/iot/{sensor}`.
SENSOR_UPLINK = (Channel.ALARM, Channel.HB)


class TopicError(ValueError):
    """A topic outside the tree."""


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    root: str
    user: str
    device: str
    channel: Channel

    def __str__(self) -> str:
        base = f"{self.root}/{self.user}/{self.device}"
        return f"{base}/{self.channel}" if self.channel else base

    @property
    def sensor(self) -> bool:
        """An IoT sensor's topic; `device` is then the sensor's id."""
        return self.user == SENSOR_LEVEL


def parse_topic(root: str, topic: str) -> DeviceTopic:
    """Split a device topic; raise TopicError with the reason when it is not one of ours."""
    levels = topic.split("/")
    if levels[0] != root:
        raise TopicError(f"topic {topic!r} is not under the root {root!r}")
    if len(levels) not in (3, 4):
        raise TopicError(f"topic {topic!r} must be {root}/<user>/<device>[/<channel>]")
    user, device = levels[1], levels[2]
    for name, value in (("user", user), ("device", device)):
        problem = level_problem(value)
        if problem:
            raise TopicError(f"topic {topic!r} has an invalid {name} level: {problem}")
    suffix = levels[3] if len(levels) == 4 else ""
    try:
        channel = Channel(suffix)
    except ValueError:
        raise TopicError(f"topic {topic!r} has an unknown channel {suffix!r}") from None
    if len(levels) == 4 and channel is Channel.LOCATION:
        raise TopicError(f"topic {topic!r} has an empty channel level")
    if user == SENSOR_LEVEL and channel not in SENSOR_UPLINK:
        raise TopicError(
            f"topic {topic!r} is under the sensors' level {SENSOR_LEVEL!r}: a sensor publishes "
            f"{root}/{SENSOR_LEVEL}/<sensor>/alarm or /hb"
        )
    if user != SENSOR_LEVEL and channel is Channel.ALARM:
        raise TopicError(
            f"topic {topic!r}: /alarm is a sensor's channel ({root}/{SENSOR_LEVEL}/<sensor>/alarm)"
        )
    return DeviceTopic(root, user, device, channel)


def level_problem(value: str) -> str | None:
    """Why a user or device level cannot name a device, or None.

    The levels become Redis keys and archive folders: a level that reads as a path step
    (`.`, `..`), or holds characters that end, hide or split names (NUL and other control
    or format characters, backslash), is refused, as are wildcards and blank levels. Letters
    of any script, digits, `-_.@` and inner spaces are names.
    """
    if not value:
        return "it is empty"
    if len(value) > LEVEL_MAX:
        return f"{len(value)} characters; at most {LEVEL_MAX} are allowed"
    if value.isspace():
        return "it is only whitespace"
    if value in (".", ".."):
        return f"{value!r} is a path step, not a name"
    for char in value:
        if char in "+#":
            return f"the wildcard {char!r}"
        if char == "\\":
            return "a backslash"
        if unicodedata.category(char) in _UNPRINTABLE:
            return f"the control character U+{ord(char):04X}"
    return None


def device_topic(root: str, user: str, device: str, channel: Channel) -> str:
    return str(DeviceTopic(root, user, device, channel))


def sensor_topic(root: str, sensor: str, channel: Channel) -> str:
    return device_topic(root, SENSOR_LEVEL, sensor, channel)


def uplink_filters(root: str, group: str = INGEST_GROUP) -> list[str]:
    """The ingest's shared subscription: everything under the root.

    Devices may publish one level below their topic, so a channel the center does not know
    must still reach the ingest to be rejected with a reason. The center's own `cmd` and
    `dispatch` downlinks arrive too (MQTT 5 No Local is not allowed on shared subscriptions);
    the ingest passes over them.
    """
    return [f"$share/{group}/{root}/#"]
