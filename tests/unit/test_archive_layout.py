"""Archive folders from device keys: hostile levels stay inside the archive, ordinary names are
kept as they are (the folders earlier archives used), and every name decodes back."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.core.track import DeviceKey
from dispatch.evidence.layout import (
    OutsideArchiveError,
    device_folder,
    legacy_folder,
    path_name,
)

HOSTILE = ["..", ".", "../keys", "../../etc", "x" * 300, "a\0b", "\0", "/", "", "a\\..\\b",
           "%2E%2E", ".hidden", "~x", "\u202e", "张" * 200, "\U00020000" * 64]  # fmt: skip


@pytest.mark.parametrize("level", HOSTILE)
@pytest.mark.parametrize("where", ["user", "device"])
def test_hostile_levels_never_leave_the_archive(tmp_path: Path, level: str, where: str) -> None:
    root = tmp_path / "archive"
    (tmp_path / "keys").mkdir()
    dev = DeviceKey(f"{level}/BC-1" if where == "user" else f"zhang3/{level}")
    folder = device_folder(root, dev)
    assert folder.resolve().parent.parent == root.resolve()
    folder.mkdir(parents=True)
    (folder / "1-0_2-0.parquet").write_bytes(b"segment")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [folder / "1-0_2-0.parquet"]
    assert written[0].resolve().is_relative_to(root.resolve())
    assert list((tmp_path / "keys").iterdir()) == []


@pytest.mark.parametrize("name", ["zhang3", "BC-0042", "张三", "li.si@team_7", "a..b", "Ünal"])
def test_ordinary_names_are_their_own_folder(name: str) -> None:
    assert path_name(name) == name
    assert device_folder(Path("/a"), DeviceKey(f"{name}/{name}")) == Path("/a") / name / name


@given(st.text(max_size=64))
def test_every_name_decodes_back_or_is_a_digest(level: str) -> None:
    name = path_name(level)
    assert "/" not in name and "\0" not in name and name not in ("", ".", "..")
    assert len(name.encode()) <= 255
    if name.startswith("~"):
        assert len(name) == 65
    else:
        assert unquote(name, errors="strict") == level


@given(st.text(max_size=20), st.text(max_size=20))
def test_two_levels_never_share_a_name(a: str, b: str) -> None:
    if a != b:
        assert path_name(a) != path_name(b)


def test_a_folder_that_resolves_outside_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "archive", tmp_path / "keys"
    root.mkdir()
    outside.mkdir()
    (root / "zhang3").symlink_to(outside)
    with pytest.raises(OutsideArchiveError, match="outside"):
        device_folder(root, DeviceKey("zhang3/BC-1"))


def test_the_earlier_raw_folder_is_named_only_when_it_differs_and_lies_inside() -> None:
    root = Path("/srv/archive")
    assert legacy_folder(root, DeviceKey("li si/BC 1")) == root / "li si" / "BC 1"
    assert legacy_folder(root, DeviceKey("zhang3/BC-1")) is None, "the same folder"
    for hostile in ("../keys", "../x/y", "a\0/b", "./b", "a/.."):
        assert legacy_folder(root, DeviceKey(hostile)) is None
