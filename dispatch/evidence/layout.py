"""Where the archive keeps a device's segments: one folder per device key, named so that no key
reaches outside the archive.

    <root>/<name of user>/<name of device>/

A level's name is the level itself when it is made of letters (any script), digits and
`-_.@` and does not start with a dot: every officer login and device serial, and the folders
archives have always used. Any other character is written as `%XX` for each of its UTF-8
bytes, as is a leading dot, so `.`, `..`, separators, NUL and `%` itself never appear raw;
`urllib.parse.unquote` gives the level back. A level whose name would exceed what a file
system allows in one name (255 bytes) is named `~` and the sha256 of the level instead (the
manifests inside still name the device); since `~` is always escaped, the two forms never
meet. Whatever the name, the folder is checked to resolve inside the root.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dispatch.core.track import DeviceKey

_NAME_MAX_BYTES = 255
_KEPT = frozenset("-_.@")


class OutsideArchiveError(ValueError):
    """A device folder that would resolve outside the archive (a symlink on the way)."""


def path_name(level: str) -> str:
    """The file-system name of one level of a device key (see the module docstring)."""
    name = "".join(
        char
        if (char.isalnum() or char in _KEPT) and not (n == 0 and char == ".")
        else _escape(char)
        for n, char in enumerate(level)
    )
    if not name or len(name.encode()) > _NAME_MAX_BYTES:
        return "~" + hashlib.sha256(level.encode("utf-8", "surrogatepass")).hexdigest()
    return name


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def device_folder(root: Path, dev: DeviceKey) -> Path:
    """The device's folder, two names below `root`; raises OutsideArchiveError when it
    resolves anywhere else."""
    user, _, device = dev.partition("/")
    folder = root / path_name(user) / path_name(device)
    if folder.resolve().parent.parent != root.resolve():
        raise OutsideArchiveError(f"the archive folder of {dev!r} resolves outside {root}")
    return folder


def legacy_folder(root: Path, dev: DeviceKey) -> Path | None:
    """The folder an earlier archive kept the device in (the raw levels), when that differs
    from its folder now and lies inside `root`: its segments are still read."""
    user, _, device = dev.partition("/")
    for level in (user, device):
        # No file system took these names: there is nothing to read, and asking fails.
        if level in ("", ".", "..") or "\0" in level or len(level.encode()) > _NAME_MAX_BYTES:
            return None
    folder = root / user / device
    if folder == root / path_name(user) / path_name(device):
        return None
    if folder.resolve().parent.parent != root.resolve():
        return None
    return folder
