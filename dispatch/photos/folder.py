"""Where photos are kept: one file per photo, named by its sha256, written atomically.

    <root>/<first two hex digits>/<sha256>.jpg

A photo is written to a temporary file of its own in the same folder, flushed to disk and
renamed over its name, so a reader sees the whole photo or none, and two reports of the same
photo at once leave one file. The name is the content's digest: a stored photo never changes,
and anyone can check it with a sha256 tool. Only a well-formed digest names a file, so no name
reaches outside the root.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class PhotoFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """The file of the photo with this digest; ValueError for anything but a digest."""
        if not _DIGEST.match(sha256):
            raise ValueError(f"{sha256[:80]!r} is not a sha256 digest (64 lower-case hex digits)")
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def put(self, data: bytes) -> str:
        """Keep `data` under its sha256, once; returns the digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path(sha256)
        if path.exists():
            return sha256
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{sha256[:8]}-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256

    def read(self, sha256: str) -> bytes | None:
        """The photo's bytes, or None when it is not kept here."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None
