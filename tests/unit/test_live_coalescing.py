"""A screen that fell behind gets each device's newest position at once; every other event
still arrives one by one, in order, and resuming after the merged update loses nothing."""

from __future__ import annotations

import json

from dispatch.api.live import _coalesced


def entry(n: int, kind: str, body: object) -> tuple[str, dict[str, str]]:
    return f"{n}-0", {"type": kind, "body": json.dumps(body)}


def test_runs_of_positions_merge_and_other_events_pass_in_order() -> None:
    entries = [
        entry(1, "positions", [["a", 1, 1, 1]]),
        entry(2, "incident", {"id": "INC-1"}),
        entry(3, "positions", [["a", 2, 2, 2], ["b", 5, 5, 5]]),
        entry(4, "positions", [["a", 3, 3, 3]]),
        entry(5, "warning", {"incident": "INC-1"}),
        entry(6, "positions", [["c", 9, 9, 9]]),
    ]
    out = [(seq, kind, json.loads(body)) for seq, kind, body in _coalesced(entries)]
    assert out == [
        ("1-0", "positions", [["a", 1, 1, 1]]),
        ("2-0", "incident", {"id": "INC-1"}),
        ("4-0", "positions", [["a", 3, 3, 3], ["b", 5, 5, 5]]),  # a's newest, b kept
        ("5-0", "warning", {"incident": "INC-1"}),
        ("6-0", "positions", [["c", 9, 9, 9]]),
    ]
    single = entry(7, "positions", [["d", 1, 1, 1]])
    assert list(_coalesced([single])) == [("7-0", "positions", single[1]["body"])], (
        "passed as stored"
    )
