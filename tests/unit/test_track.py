"""The per-device hash chain: it verifies untouched and names the first altered link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.core.track import (
    BrokenChainError,
    ChainLink,
    DeviceKey,
    Fix,
    genesis,
    link,
    verify_chain,
)

DEV = DeviceKey("zhang3/BC-0042")


def build_chain(count: int) -> list[ChainLink]:
    head, links = genesis(DEV), []
    for n in range(count):
        fix = Fix(DEV, 119.65 + n * 1e-4, 29.08, 1_795_300_000 + n, 1_795_300_001.5 + n, acc_m=5)
        raw = f"{n:064x}"
        head = link(head, fix.canonical(), raw)
        links.append(ChainLink(fix.canonical(), raw, head))
    return links


def test_canonical_form_is_sorted_compact_and_omits_absent_fields() -> None:
    fix = Fix(DEV, 119.123456789, 29.0, 10, 11.0, acc_m=5)
    assert fix.canonical() == (
        b'{"acc_m":5,"device":"zhang3/BC-0042","fix_at":10,"lat":29.0,'
        b'"lon":119.1234568,"received_at":11.0}'
    )


def test_genesis_binds_the_chain_to_its_device() -> None:
    links = build_chain(3)
    assert verify_chain(DEV, links) == links[-1].chain_hash
    with pytest.raises(BrokenChainError, match="link 0"):
        verify_chain(DeviceKey("li4/BC-0043"), links)


@given(st.data())
def test_any_change_breaks_the_chain_at_that_link(data) -> None:
    links = build_chain(6)
    index = data.draw(st.integers(0, len(links) - 1))
    target = links[index]
    position = data.draw(st.integers(0, len(target.canonical) - 1))
    flipped = bytearray(target.canonical)
    flipped[position] ^= data.draw(st.integers(1, 255))
    links[index] = ChainLink(bytes(flipped), target.raw_sha256, target.chain_hash)
    with pytest.raises(BrokenChainError) as err:
        verify_chain(DEV, links)
    assert err.value.index == index


@given(st.data())
def test_deleting_or_swapping_links_breaks_the_chain(data) -> None:
    links = build_chain(6)
    i = data.draw(st.integers(0, 4))
    if data.draw(st.booleans()):
        del links[i]
    else:
        links[i], links[i + 1] = links[i + 1], links[i]
    with pytest.raises(BrokenChainError) as err:
        verify_chain(DEV, links)
    assert err.value.index == i
