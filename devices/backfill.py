"""Which fixes of a batch arrive late, and who their neighbours in time are (pure).

A late fix (not newer than its device's anchor) is judged against the stored fixes just
before and after it in fix time (`devices.quality`); this module says which fixes to ask the
store about, and merges its answer with the fixes accepted earlier in the same batch, which
the store does not hold yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devices.messages import Location
from devices.quality import Neighbours, wgs84_point
from devices.sink import LateFix, StoredAround
from dispatch.core.track import LastFix


def late_fixes(
    fixes: Sequence[tuple[str, Location]], anchors: Mapping[str, LastFix | None]
) -> dict[int, LateFix]:
    """The fixes that may be judged late, by index in `fixes`.

    A fix is late when not newer than its device's anchor, which only ever moves to a fix
    earlier in the batch: so every fix not newer than the device's newest so far is one.
    """
    newest: dict[str, int] = {}
    late: dict[int, LateFix] = {}
    for n, (device, location) in enumerate(fixes):
        anchor = anchors.get(device)
        fix_at = int(location.tst)
        bound = newest.get(device, anchor.fix_at if anchor is not None else None)
        if bound is not None and fix_at <= bound:
            point = wgs84_point(location)
            if point is not None:
                late[n] = LateFix(device, fix_at, point.lon, point.lat)
        newest[device] = max(fix_at, bound if bound is not None else fix_at)
    return late


def neighbours(late: LateFix, answer: StoredAround, accepted: list[LastFix]) -> Neighbours:
    """A late fix's neighbours in time among the stored fixes and those accepted before it in
    this batch; none for a fix already held, which the store answers as a duplicate."""
    if answer.stored:
        return Neighbours()
    before, after = answer.neighbours.before, answer.neighbours.after
    for fix in accepted:
        if _stored_order(fix) == _stored_order(late):
            return Neighbours()
        if fix.fix_at <= late.fix_at:
            if before is None or _stored_order(fix) > _stored_order(before):
                before = fix
        elif after is None or _stored_order(fix) < _stored_order(after):
            after = fix
    return Neighbours(before, after)


def _stored_order(fix: LastFix | LateFix) -> tuple[int, str]:
    """How the store orders and tells apart a device's fixes: by time, then by the position
    to the 7 decimals it keeps (the seen index's members)."""
    return fix.fix_at, f"{fix.lon:.7f}|{fix.lat:.7f}"
