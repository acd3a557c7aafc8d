"""An officer's SOS from the officer page: POST /api/sos raises the alarm a device's `sos`
raises, through the same inbox entry, so the engine opens the same priority-1 incident.

The page sends the phone's position when it has one; it is judged as a device alarm's is
(`devices.quality.placed_sos`): one that cannot be used is left out with the reason, and
the engine places the alarm at the officer's newest fix. With neither, the engine could not
place it at all, so the officer learns that at once (409) and calls instead.
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, HTTPException, Request
from pydantic import Field

from devices.messages import Sos
from devices.quality import placed_sos
from devices.translate import sos_incident
from dispatch.api.bodies import RequestBody
from dispatch.api.incidents import Officer, actor_of
from dispatch.api.state import app_state
from dispatch.core.roster import OfficerId

router = APIRouter(tags=["orders"])


class Alarm(RequestBody):
    lon: float | None = Field(None, ge=-180, le=180, description="WGS-84, as a phone gives it")
    lat: float | None = Field(None, ge=-90, le=90)
    acc: float | None = Field(None, ge=0, le=100_000, description="accuracy radius, m")


@router.post("/api/sos", status_code=202)
def raise_sos(alarm: Alarm, request: Request, caller: Officer) -> dict[str, str]:
    """Raise an SOS for the signed-in officer; answers the incident it opens (`SOS-…`)."""
    state = app_state(request)
    now = state.clock()
    officer = OfficerId(str(caller.officer))
    sos, refused = placed_sos(
        Sos(tst=int(now), lat=alarm.lat, lon=alarm.lon, acc=alarm.acc),
        state.fixes.writer.config.limits,
    )
    if sos.lon is None and state.store.newest_fix(officer) is None:
        why = refused.get("position_refused", "the page sent no position")
        raise HTTPException(
            409, f"the alarm cannot be placed: {why}, and no fix of {officer} is known; call in"
        )
    fields = {k: v for k, v in msgspec.structs.asdict(sos).items() if v is not None}
    body = {"_type": "sos", **fields, **refused}
    entry = state.store.incidents.post("sos", body, officer=officer, actor=actor_of(caller))
    incident = sos_incident(entry)
    state.identity.record(caller, "sos", now=now, target=incident, detail=entry)
    return {"incident": incident, "command": entry}
