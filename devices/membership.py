"""Who takes a share of the ingest's shared subscription, and who stopped without leaving (pure).

Every ingest worker registers under its name and beats every `beat_s` seconds; a graceful stop
leaves the subscription, ends the broker session and removes the registration. A worker that
stops beating for `DEAD_AFTER_BEATS` of its own intervals without having left is dead: the
broker still keeps its session, queues its round-robin share of the positions there, and
nobody stores them until the worker comes back or `yiwang ingest --retire NAME` drains them.
Once it has been silent longer than its session expiry the broker has discarded that session
and its queue with it: nothing is left to drain, and its record may go.

Times are UTC epoch seconds of the wall clock, passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# Missed beats after which a worker is dead: one late beat is a pause, three is a worker gone.
DEAD_AFTER_BEATS = 3


def client_id_for(name: str) -> str:
    """The MQTT client id of the worker `name`: one per name, so no two workers' sessions
    meet (an id two clients share is handed back and forth by the broker)."""
    return f"yiwang-ingest-{name}"


@dataclass(frozen=True, slots=True)
class Member:
    """One worker's registration, as of its last beat."""

    name: str
    client_id: str  # the MQTT client id of its session: what `--retire` connects as
    host: str
    pid: int
    started_at: float
    beat_at: float
    beat_s: float
    session_expiry_s: int  # how long the broker keeps its session after it is gone
    connected: bool  # subscribed at the last beat
    received: int  # messages read from the broker since it started
    stored: int  # messages stored (each with its verdict) and acknowledged since it started
    # Its broker sessions: how many subscribed since it started, and of the current (or last)
    # one when it subscribed, after how long without a session, and what had been received
    # before that gap (received - received_before_gap came since). A broker restart shows as
    # one more session and a gap of about the broker's downtime.
    sessions: int = 0
    subscribed_at: float = 0.0
    gap_s: float = 0.0
    received_before_gap: int = 0

    def silent_s(self, now: float) -> float:
        return max(0.0, now - self.beat_at)

    def is_dead(self, now: float) -> bool:
        return self.silent_s(now) > DEAD_AFTER_BEATS * self.beat_s

    def is_forgotten(self, now: float) -> bool:
        """The broker has discarded its session: there is nothing left to retire."""
        return self.silent_s(now) > self.session_expiry_s

    def is_same_run(self, other: Member) -> bool:
        """The same process's registration (a restarted worker of that name is another)."""
        return (self.name, self.host, self.pid, self.started_at) == (
            other.name,
            other.host,
            other.pid,
            other.started_at,
        )


@dataclass(frozen=True, slots=True)
class Roll:
    """The registered workers at one moment, each group by name."""

    alive: tuple[Member, ...]
    dead: tuple[Member, ...]
    forgotten: tuple[Member, ...]

    def named(self, name: str) -> Member | None:
        for member in (*self.alive, *self.dead, *self.forgotten):
            if member.name == name:
                return member
        return None


def roll_call(members: Iterable[Member], now: float) -> Roll:
    """Sort the registrations into alive, dead (its session kept, its share queued there) and
    forgotten (silent past its session expiry)."""
    alive: list[Member] = []
    dead: list[Member] = []
    forgotten: list[Member] = []
    for member in sorted(members, key=lambda m: m.name):
        if member.is_forgotten(now):
            forgotten.append(member)
        elif member.is_dead(now):
            dead.append(member)
        else:
            alive.append(member)
    return Roll(tuple(alive), tuple(dead), tuple(forgotten))


def superseded_by(me: Member, roll: Roll) -> Member | None:
    """A later run of `me`'s name that beats, if one does. A broker hands a client id's
    session to whichever client connected last, and not every broker says so (MQTT 5 reason
    0x8E): the registration tells the earlier run it lost, so it ends instead of taking the
    session back."""
    holder = roll.named(me.name)
    if (
        holder is None
        or holder not in roll.alive
        or holder.is_same_run(me)
        or holder.started_at <= me.started_at
    ):
        return None
    return holder


def newly_dead(known: Iterable[str], roll: Roll) -> list[Member]:
    """The dead of `roll` not among the names `known` dead before: each to be reported once."""
    before = set(known)
    return [member for member in roll.dead if member.name not in before]


class MemberRoll(Protocol):
    """Where the workers keep their registrations (`dispatch.store` satisfies it)."""

    # Raised while it cannot be reached.
    unavailable: tuple[type[Exception], ...]

    def beat(self, member: Member) -> None:
        """Register `member`, or renew its registration."""

    def members(self) -> list[Member]:
        """Every registration held."""

    def leave(self, member: Member) -> bool:
        """Remove `member`'s registration unless another run of that name holds it now;
        False when there was none of its run to remove."""
