"""The screens: the command-center page, the officer page, the citizens' report page, their
static bundle, the offline basemap, and what the pages read once at start (the city, the
timeline policies, the clock).

The bundle is built from `frontend/` by `make frontend` (esbuild, from npm packages) and read
from YIWANG_SCREENS_DIR (the checkout's frontend/dist by default); without it the pages answer
503 with that instruction.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import msgspec
import shapely
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from shapely.geometry import mapping

from dispatch.api.auth import authenticated, identify, require, scope_of
from dispatch.api.state import AppState, app_state
from dispatch.api.times import parse_time
from dispatch.core.access import AreaScope, Permission, Principal
from dispatch.core.alerts import alert_record, as_of, in_scope
from dispatch.core.policy import PolicyBook, TimelinePolicy
from dispatch.core.track import DeviceKey
from dispatch.db.history import IncidentFilter
from dispatch.evidence.archive import full_track
from gis.coords import LonLat
from gis.routing import route_between

router = APIRouter(tags=["screens"])


Caller = Annotated[Principal, Depends(authenticated)]
TrackReader = Annotated[Principal, Depends(require(Permission.READ_TRACKS))]


def _page(request: Request, name: str) -> FileResponse:
    page = app_state(request).settings.screens_dir / name
    if not page.exists():
        raise HTTPException(
            503,
            f"the screens are not built: run `make frontend`, or set YIWANG_SCREENS_DIR to "
            f"the bundle's folder ({page} missing)",
        )
    return FileResponse(page, media_type="text/html")


def _page_for(request: Request, name: str, needs: Permission) -> Response:
    """The page for a caller who may use it; the login page (or their own page) otherwise."""
    principal = identify(request, app_state(request))
    if principal is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if principal.may(needs):
        return _page(request, name)
    for home, permission in _HOMES:
        if principal.may(permission):
            return RedirectResponse(home, status_code=303)
    return RedirectResponse("/login?denied=1", status_code=303)


_HOMES = (
    ("/", Permission.WATCH_LIVE),
    ("/officer", Permission.ANSWER_OWN_ORDERS),
    ("/supervision", Permission.READ_STATISTICS),
)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def command_page(request: Request) -> Response:
    return _page_for(request, "command.html", Permission.WATCH_LIVE)


@router.get("/officer", response_class=HTMLResponse, include_in_schema=False)
def officer_page(request: Request) -> Response:
    return _page_for(request, "officer.html", Permission.ANSWER_OWN_ORDERS)


@router.get("/supervision", response_class=HTMLResponse, include_in_schema=False)
def supervision_page(request: Request) -> Response:
    return _page_for(request, "supervision.html", Permission.READ_STATISTICS)


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report_page(request: Request) -> FileResponse:
    """The citizens' page for a photo report (随手拍): public, like the channel it posts to."""
    return _page(request, "report.html")


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request) -> FileResponse:
    return _page(request, "login.html")


@router.get("/api/roster")
def roster(request: Request, caller: Caller) -> dict[str, Any]:
    """The teams and, for each officer in the caller's scope, the team they answer to now and
    whether they are on duty (the units board groups and filters by these)."""
    state = app_state(request)
    if state.city is None:
        raise HTTPException(503, "no roster is configured: set YIWANG_ROSTER_FILE")
    book, scope, now = state.city.roster, scope_of(caller, state), state.clock()
    officers = []
    for officer in sorted(o for o in book.officers if scope.covers_officer(o)):
        team, on_duty = book.home_team(officer, now)
        officers.append({"officer": officer, "team": team, "on_duty": on_duty})
    shown = {o["team"] for o in officers}
    teams = [{"id": t.id, "name": t.name} for t in book.teams.values() if t.id in shown]
    return {"teams": teams, "officers": officers}


@router.get("/api/city")
def city(request: Request, _: Caller) -> dict[str, Any]:
    """The areas as GeoJSON, a label point for each, and the bounds to frame the map."""
    state = app_state(request)
    if state.city is None:
        raise HTTPException(
            503, "no city is configured: set YIWANG_AREAS_FILE and YIWANG_ROSTER_FILE"
        )
    areas = state.city.areas.areas
    west, south, east, north = shapely.union_all([a.geometry for a in areas]).bounds
    return {
        "areas": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"id": a.id, "name": a.name},
                    "geometry": mapping(a.geometry),
                }
                for a in areas
            ],
        },
        "labels": [
            {
                "id": a.id,
                "name": a.name,
                "position": list(shapely.point_on_surface(a.geometry).coords[0]),
            }
            for a in areas
        ],
        "bounds": [[west, south], [east, north]],
    }


def _policy(policy: TimelinePolicy) -> dict[str, Any]:
    return {
        "deadlines_s": {m.value: s for m, s in policy.deadlines_s.items()},
        "warn_at_fraction": policy.warn_at_fraction,
        "accept_within_s": policy.accept_within_s,
    }


@router.get("/api/policies")
def policies(request: Request, _: Caller) -> dict[str, Any]:
    """The deadlines screens count down to, by category and `category/priority`, and the
    catalogue of categories a report may name (key → label; a work order may also name the
    label, or an alias → key)."""
    book: PolicyBook = app_state(request).policies
    return {
        "categories": dict(book.categories),
        "aliases": dict(book.aliases),
        "default": _policy(book.default),
        "by_category": {c: _policy(p) for c, p in book.by_category.items()},
        "by_category_priority": {
            f"{c}/{n}": _policy(p) for (c, n), p in book.by_category_priority.items()
        },
    }


@router.get("/api/clock")
def clock(request: Request, _: Caller) -> dict[str, float]:
    """The center's time and how fast it runs (1 in production), for the screens' clocks."""
    state = app_state(request)
    return {"now": state.clock(), "rate": state.clock.rate}


@router.get("/api/route")
def route(
    request: Request, _: Caller, from_: str = Query(alias="from"), to: str = Query()
) -> dict[str, Any]:
    """The fastest street route between two `lon,lat` points, with its travel time."""
    state = app_state(request)
    if state.city is None:
        raise HTTPException(
            503, "no city is configured: set YIWANG_AREAS_FILE and YIWANG_ROSTER_FILE"
        )
    way = route_between(state.city.travel, _lon_lat(from_), _lon_lat(to))
    return {"path": [[p.lon, p.lat] for p in way.path], "eta_s": round(way.eta_s, 1)}


def _lon_lat(text: str) -> LonLat:
    """A `lon,lat` point of WGS-84 degrees, or 422 saying what one looks like."""
    try:
        lon, lat = (float(part) for part in text.split(","))
    except ValueError:
        lon = lat = math.nan
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):  # NaN fails both
        raise HTTPException(422, f"{text[:60]!r} is no lon,lat point (degrees, e.g. 119.65,29.08)")
    return LonLat(lon, lat)


_REPLAY_MAX_S = 24 * 3600
_REPLAY_INCIDENTS = 5000


@router.get("/api/replay")
def replay(
    request: Request,
    caller: TrackReader,
    from_: str = Query(
        alias="from", description="epoch s or ISO 8601 (Asia/Shanghai if no offset)"
    ),
    to: str = Query(description="epoch s or ISO 8601"),
) -> dict[str, Any]:
    """A past window as it was: every device's fixes in it (from the archive and the live
    track), every incident reported before its end, with its milestones, and every alert
    raised in it as it stood at its end, so a screen can show officers, incidents, clocks and
    alerts at any moment of the window. Only what lies in the
    caller's area scope is replayed."""
    state = app_state(request)
    scope = scope_of(caller, state)
    zone = state.settings.timezone
    start, end = parse_time(from_, zone), parse_time(to, zone)
    if not 0 < end - start <= _REPLAY_MAX_S:
        raise HTTPException(
            422, f"choose a window of up to {_REPLAY_MAX_S // 3600} h that ends after it starts"
        )
    archive = state.settings.archive()
    tracks = {}
    for dev in state.store.tracks.device_keys():
        if not scope.covers_officer(dev.split("/", 1)[0]):
            continue
        fixes = [
            [r.fix["fix_at"], r.fix["lon"], r.fix["lat"]]
            for r in full_track(state.store, archive, DeviceKey(dev), start, end)
            if start <= r.fix["fix_at"] <= end and not r.backfill
        ]
        if fixes:
            tracks[dev] = sorted(fixes)
    # Incidents reported in the window or in the day before it (one may run that long).
    window = IncidentFilter(
        since=start - _REPLAY_MAX_S, until=end, areas=scope.area_ids(), limit=_REPLAY_INCIDENTS
    )
    incidents = [
        msgspec.to_builtins(i)
        for i in state.records.search(window, lambda i: scope.covers_point(i.location))
    ]
    return {
        "from": start,
        "to": end,
        "tracks": tracks,
        "incidents": incidents,
        "alerts": _replayed_alerts(state, scope, start, end),
    }


def _replayed_alerts(
    state: AppState, scope: AreaScope, start: float, end: float
) -> list[dict[str, Any]]:
    """Every alert raised in the window, oldest first, as it stood at its end: acknowledged
    only if that came before it. Alerts are held 12 h after their acknowledgement, so a
    window further back shows those not acknowledged, and those acknowledged late."""
    zone = state.settings.timezone
    return [
        alert_record(past, zone)
        for alert in state.store.alerts.alerts(start, end)
        if in_scope(alert, scope) and (past := as_of(alert, end)) is not None
    ]


def mount_static(app: FastAPI, screens: Path, basemap: Path | None) -> None:
    """The bundle under /static and the basemap under /tiles (range requests)."""
    if screens.exists():
        app.mount("/static", StaticFiles(directory=screens), name="static")
    if basemap is not None and basemap.exists():
        app.mount("/tiles", StaticFiles(directory=basemap.parent), name="tiles")
