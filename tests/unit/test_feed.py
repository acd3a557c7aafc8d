"""The feed's types: the compact position row on the wire, and where a screen resumes."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from dispatch.core.feed import POSITION_ROWS, PositionRow, resume_after, stream_order


def test_a_position_row_is_a_json_array_in_a_fixed_order() -> None:
    row = PositionRow("zhang3/BC-1", 119.65, 29.08, 1_800_000_000, 4.5, 270.0, 1_800_000_000.25)
    assert msgspec.json.encode([row]) == (
        b'[["zhang3/BC-1",119.65,29.08,1800000000,4.5,270.0,1800000000.25]]'
    )
    # What store.lua writes: missing accuracy and course are null; older rows had four fields.
    text = b'[["a/b",1.5,2.5,10,null,null,11.0],["c/d",1,2,3]]'
    assert POSITION_ROWS.decode(text) == [
        PositionRow("a/b", 1.5, 2.5, 10, None, None, 11.0),
        PositionRow("c/d", 1.0, 2.0, 3),
    ]


ids = st.builds(lambda ms, n: f"{ms}-{n}", st.integers(0, 10**13), st.integers(0, 99))


@given(since=ids, oldest=ids)
def test_resume_only_while_the_stream_still_holds_what_follows(since: str, oldest: str) -> None:
    resumed = resume_after(since, oldest)
    if since == "0-0" or stream_order(since) >= stream_order(oldest):
        assert resumed == since
    else:
        assert resumed is None  # trimmed away: a fresh snapshot


def test_resume_edge_cases() -> None:
    assert resume_after(None, "5-0") is None  # never had a snapshot
    assert resume_after("0-0", "5-0") == "0-0"  # from the very start: replay what is held
    assert resume_after("3-1", None) == "3-1"  # empty stream: nothing was lost
    assert stream_order("12-3") < stream_order("12-10") < stream_order("13")
