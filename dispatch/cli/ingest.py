"""`yiwang ingest --retire NAME`: store what the broker keeps for a dead ingest worker.

A worker that died without leaving keeps its broker session, and the broker keeps routing
that session its share of the shared subscription. Retiring it connects as that session,
stores what was queued there through the ingest's own pipeline, then ends the session and
removes the registration, so the share goes to the workers that run.
"""

from __future__ import annotations

import sys
import time

from devices.membership import client_id_for, roll_call
from devices.subscriber import SessionError, TakenOverError
from dispatch.api.app import build_ingest
from dispatch.city import City
from dispatch.settings import Settings
from dispatch.store import UNAVAILABLE, Store

# Retiring drains a queue that may hold days of positions: far longer than a stop may take.
RETIRE_WITHIN_S = 600.0


def retire_ingest(settings: Settings, store: Store, city: City | None, name: str) -> int:
    now = time.time()
    roll = roll_call(store.members.members(), now)
    member = roll.named(name)
    if member is not None and member in roll.alive:
        print(
            f"ingest worker {name} is running (it beat {member.silent_s(now):.1f} s ago on "
            f"{member.host}, pid {member.pid}): stop it instead, and it leaves by itself",
            file=sys.stderr,
        )
        return 1
    client_id = client_id_for(name) if member is None else member.client_id
    if member is None:
        registered = ", ".join(m.name for m in (*roll.alive, *roll.dead)) or "none"
        print(
            f"no ingest worker {name} is registered (registered: {registered}); "
            f"retiring the session of client id {client_id}"
        )
    worker = build_ingest(settings, store, city, name=name, client_id=client_id)
    try:
        ended = worker.retire(member, within_s=RETIRE_WITHIN_S)
    except TakenOverError:
        print(
            f"ingest worker {name} came back and took its session: it runs again", file=sys.stderr
        )
        return 1
    except (SessionError, OSError) as exc:
        print(f"could not retire ingest worker {name}: {exc}", file=sys.stderr)
        return 1
    except UNAVAILABLE as exc:
        print(f"could not retire ingest worker {name}: redis unavailable ({exc})", file=sys.stderr)
        return 1
    print(
        f"retired ingest worker {name} (client id {client_id}): {worker.received} messages "
        f"drained from its session, {worker.stored} stored with their verdicts"
    )
    if not ended:
        print(
            f"messages still arrived after {RETIRE_WITHIN_S:.0f} s: its session is kept; "
            "run this again",
            file=sys.stderr,
        )
        return 1
    return 0
