"""Which ingest workers are alive, dead or forgotten at a given `now` (devices.membership)."""

from __future__ import annotations

from dataclasses import replace

from devices.membership import (
    DEAD_AFTER_BEATS,
    Member,
    client_id_for,
    newly_dead,
    roll_call,
    superseded_by,
)

T0 = 1_795_000_000.0


def member(name: str, beat_at: float, **changes: object) -> Member:
    base = Member(
        name=name,
        client_id=client_id_for(name),
        host="node-1",
        pid=4242,
        started_at=T0 - 3600,
        beat_at=beat_at,
        beat_s=2.0,
        session_expiry_s=7 * 86400,
        connected=True,
        received=10,
        stored=10,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_worker_is_dead_after_three_of_its_own_beats_missed() -> None:
    beating = member("a", T0)
    limit = DEAD_AFTER_BEATS * beating.beat_s
    assert not beating.is_dead(T0 + limit)
    assert beating.is_dead(T0 + limit + 0.01)
    slow = member("b", T0, beat_s=10.0)
    assert not slow.is_dead(T0 + limit + 0.01), "each member is judged by its own interval"
    assert slow.is_dead(T0 + 30.01)


def test_the_roll_sorts_alive_dead_and_forgotten_by_name() -> None:
    now = T0 + 100
    members = [
        member("c", now - 1),
        member("a", now - 7),  # 3 × 2 s missed: dead
        member("b", now - 0.5),
        member("gone", now - 3600, session_expiry_s=600),  # the broker dropped its session
        member("d", now - 6),  # exactly at the limit: still alive
    ]
    roll = roll_call(members, now)
    assert [m.name for m in roll.alive] == ["b", "c", "d"]
    assert [m.name for m in roll.dead] == ["a"]
    assert [m.name for m in roll.forgotten] == ["gone"]
    assert roll.named("a") == members[1]
    assert roll.named("gone") == members[3]
    assert roll.named("nobody") is None


def test_a_beat_from_the_future_counts_as_just_now() -> None:
    ahead = member("a", T0 + 5)  # another host's clock runs ahead
    assert ahead.silent_s(T0) == 0.0
    assert not ahead.is_dead(T0)


def test_each_dead_worker_is_reported_once_and_again_after_it_came_back() -> None:
    dead = roll_call([member("a", T0), member("b", T0 + 20)], T0 + 21)
    assert [m.name for m in newly_dead(set(), dead)] == ["a"]
    assert newly_dead({"a"}, dead) == []
    back = roll_call([member("a", T0 + 22), member("b", T0 + 20)], T0 + 22)
    known = {m.name for m in back.dead}
    assert known == set()
    again = roll_call([member("a", T0 + 22), member("b", T0 + 20)], T0 + 40)
    assert [m.name for m in newly_dead(known, again)] == ["a", "b"]


def test_a_run_is_its_host_pid_and_start() -> None:
    first = member("a", T0)
    assert first.is_same_run(replace(first, beat_at=T0 + 2, received=99))
    assert not first.is_same_run(replace(first, pid=4243))
    assert not first.is_same_run(replace(first, started_at=T0))
    assert not first.is_same_run(replace(first, host="node-2"))


def test_every_name_has_its_own_client_id() -> None:
    assert client_id_for("node-1-serve") != client_id_for("node-1-ingest")
    # The fixed id of centers before names: `--retire 1` takes over its session.
    assert client_id_for("1") == "yiwang-ingest-1"


def test_a_later_run_of_the_same_name_supersedes_the_earlier_one_only() -> None:
    now = T0 + 10
    earlier = member("a", now - 1, started_at=T0 - 3600)
    later = member("a", now - 0.5, pid=5151, started_at=T0)
    assert superseded_by(earlier, roll_call([later], now)) == later
    assert superseded_by(later, roll_call([earlier], now)) is None, "the later run goes on"
    assert superseded_by(earlier, roll_call([earlier], now)) is None, "its own record"
    assert superseded_by(earlier, roll_call([], now)) is None
    gone = replace(later, beat_at=now - 7)  # the later run died: the name is free again
    assert superseded_by(earlier, roll_call([gone], now)) is None
