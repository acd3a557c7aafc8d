"""Positions frames: what the encoder writes, a reader of the documented layout reads back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.core.position_frames import VERSION, FrameError, PositionFrames
from tests.frame_reader import FrameReader

_ROWS = [
    ["officer001/cam1", 119.5123456, 28.9876543, 1_790_000_000, 5.0, 90.0, 1_790_000_000.25],
    ["officer002/cam2", -179.9999999, -89.9999999, 1_790_000_001, None, None, None],
]


def test_round_trip_keeps_every_field() -> None:
    seq, rows = FrameReader().read(PositionFrames().encode("1790000000000-3", _ROWS))
    assert seq == "1790000000000-3"
    assert rows[0][0] == "officer001/cam1"
    assert rows[0][1:3] == pytest.approx([119.5123456, 28.9876543], abs=1e-9)
    assert rows[0][3:] == [1_790_000_000, 5.0, 90.0, 1_790_000_000.25]
    assert rows[1][0] == "officer002/cam2"
    assert rows[1][1:3] == pytest.approx([-179.9999999, -89.9999999], abs=1e-9)
    assert rows[1][3:] == [1_790_000_001, None, None, None]


def test_rows_may_leave_out_trailing_fields() -> None:
    _seq, rows = FrameReader().read(PositionFrames().encode("1-0", [["d", 1.0, 2.0, 3]]))
    assert rows == [["d", 1.0, 2.0, 3, None, None, None]]


def test_frame_states_its_version_and_columns_are_aligned() -> None:
    frame = PositionFrames().encode("1-0", _ROWS)
    assert frame[:4] == b"YWPF"
    assert frame[4] == VERSION == 1
    # 8 bytes of f64 + 6 columns of 4 bytes + 1 status byte per row after the padded head.
    assert (len(frame) - 2 * 33) % 8 == 0


def test_names_cross_the_wire_once_per_connection() -> None:
    frames, reader = PositionFrames(), FrameReader()
    first = frames.encode("1-0", _ROWS)
    second = frames.encode("2-0", _ROWS)
    assert b"officer001/cam1" in first
    assert b"officer001/cam1" not in second
    reader.read(first)
    assert [row[0] for row in reader.read(second)[1]] == ["officer001/cam1", "officer002/cam2"]
    # A new connection starts afresh: its first frame names every device again.
    assert b"officer001/cam1" in PositionFrames().encode("3-0", _ROWS)


def test_dictionary_is_bounded_and_its_reset_is_signalled() -> None:
    frames, reader = PositionFrames(max_names=3), FrameReader()
    for k in range(6):
        _seq, rows = reader.read(
            frames.encode(f"{k}-0", [[f"d{k}", 1.0, 2.0, k, None, None, None]])
        )
        assert rows[0][0] == f"d{k}"
        assert len(frames.numbers) <= 3
        assert len(reader.names) == len(frames.numbers)
    assert frames.resets == 1
    assert frames.encode("9-0", [["d5", 1.0, 2.0, 9, None, None, None]])[5] == 0


def test_an_update_larger_than_the_dictionary_is_refused() -> None:
    rows = [[f"d{k}", 1.0, 2.0, k, None, None, None] for k in range(4)]
    with pytest.raises(FrameError, match="4 devices exceeds the 3 names"):
        PositionFrames(max_names=3).encode("1-0", rows)


_ROW = st.tuples(
    st.text(min_size=1, max_size=20),
    st.floats(-180, 180),
    st.floats(-90, 90),
    st.integers(0, 2**32 - 1),
    st.none() | st.floats(0, 1000, width=32),
    st.none() | st.floats(0, 359, width=32),
    st.none() | st.floats(1, 2e9),
).map(list)


@given(st.lists(st.lists(_ROW, max_size=8), max_size=5))
def test_any_sequence_of_updates_reads_back(updates: list[list[list[object]]]) -> None:
    frames, reader = PositionFrames(max_names=10), FrameReader()
    for k, rows in enumerate(updates):
        seq, back = reader.read(frames.encode(f"{k}-0", rows))
        assert seq == f"{k}-0"
        assert [r[0] for r in back] == [r[0] for r in rows]
        for got, sent in zip(back, rows, strict=True):
            assert got[1:3] == pytest.approx(sent[1:3], abs=1e-7)
            assert got[3:] == sent[3:]
