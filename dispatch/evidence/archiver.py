"""The archiver: a pass of `seal_due` every so often, for as long as it runs.

No one device stops it: a device that cannot be sealed is logged with its reason and counted,
and the pass goes on with the others (the next pass tries it again). An unreachable Redis is
waited out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from dispatch.evidence.archive import Archive, SealPolicy, seal_due
from dispatch.evidence.signing import Signer
from dispatch.store import UNAVAILABLE, Store

log = logging.getLogger(__name__)

_RETRY_S = 1.0


class Archiver:
    def __init__(
        self,
        store: Store,
        archive: Archive,
        signer: Signer,
        policy: SealPolicy,
        clock: Callable[[], float],
        *,
        force: bool = False,
        on_sealed: Callable[[Path], None] = lambda _path: None,
    ) -> None:
        self.store = store
        self.archive = archive
        self.signer = signer
        self.policy = policy
        self.clock = clock
        self.force = force
        self.on_sealed = on_sealed
        self.passes = 0
        self.sealed = 0
        self.failures = 0  # devices that could not be sealed, summed over the passes

    def run_once(self) -> int:
        """One pass over every device; returns how many could not be sealed."""
        done = seal_due(
            self.store, self.archive, self.signer, self.clock(), self.policy, force=self.force
        )
        for path in done.sealed:
            self.on_sealed(path)
        self.passes += 1
        self.sealed += len(done.sealed)
        self.failures += len(done.failed)
        if done.failed:
            log.warning(
                "archive: pass sealed=%d failed=%d failed_total=%d",
                len(done.sealed),
                len(done.failed),
                self.failures,
            )
        return len(done.failed)

    def run(self, stop: threading.Event, every_s: float) -> None:
        """A pass every `every_s` seconds until `stop`."""
        while not stop.is_set():
            try:
                self.run_once()
            except UNAVAILABLE as exc:
                log.error("archive: Redis is unreachable (%s); retrying in %.0f s", exc, _RETRY_S)
                stop.wait(_RETRY_S)
                continue
            stop.wait(every_s)
