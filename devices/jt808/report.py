"""What a location report means on our wire: the OwnTracks `location` an MQTT terminal would
publish, and an `sos` when the emergency bit rises.

The gateway hands these to the MQTT path's batch writer, so judging, chaining and storage are
one code path whichever protocol a fix came in by. Units as everywhere inside (DESIGN §3):
UTC epoch seconds from the terminal's clock and offset, km/h, degrees in the terminal's datum
(`crs`, converted to WGS-84 by the shared path like any other input).
"""

from __future__ import annotations

from devices.jt808.messages import LocationReport
from devices.jt808.terminals import Terminal
from devices.messages import Location, Sos
from gis.coords import Datum

SOS_ALARM = "sos"


def wire_location(report: LocationReport, terminal: Terminal) -> Location:
    return Location(
        lat=report.lat,
        lon=report.lon,
        tst=report.fix_at(terminal.utc_offset_s),
        alt=float(report.altitude_m),
        vel=report.speed_kmh,
        cog=float(report.course_deg),
        crs=_crs(terminal),
        sat=report.satellites,
        # Status bit 1 clear: the receiver has no fix and the position is its last one.
        fix=1 if report.located else 0,
    )


def wire_sos(report: LocationReport, terminal: Terminal) -> Sos:
    """The alarm of a report with the emergency bit; placed only if the report has a fix
    (otherwise the engine opens it at the officer's last known position)."""
    return Sos(
        tst=report.fix_at(terminal.utc_offset_s),
        alarm=SOS_ALARM,
        lat=report.lat if report.located else None,
        lon=report.lon if report.located else None,
        crs=_crs(terminal) if report.located else None,
        raw={"jt808_alarm": report.alarm, "jt808_status": report.status},
    )


def _crs(terminal: Terminal) -> str | None:
    return None if terminal.crs is Datum.WGS84 else terminal.crs.value
