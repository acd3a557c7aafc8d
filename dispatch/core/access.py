"""Who may do what, and where: roles, their permissions, and area scopes (pure).

Every account has one role and one area scope, a node of the area tree (None: the whole
center; else a district, street or grid and everything inside it, the 省市县乡 levels of a
shared supervision platform). A place is in scope when its innermost area is the scope or lies
under it; an officer is in scope when one of the officer's teams answers for part of the scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dispatch.core.roster import OfficerId, Roster, Team
from gis.areas import AreaId, AreaIndex
from gis.coords import LonLat


class Role(StrEnum):
    ADMIN = "admin"  # accounts, devices, configuration; everything else too
    COMMANDER = "commander"  # 值班长/指挥长: everything in scope, statistics, evidence
    DISPATCHER = "dispatcher"  # intake, assignment, every incident action in scope
    OFFICER = "officer"  # own orders and own page only
    AUDITOR = "auditor"  # 监督: read-only incidents, audit, evidence and statistics
    INTEGRATION = "integration"  # another system (the 12345/8890 hotline) handing work over


class Permission(StrEnum):
    WATCH_LIVE = "watch_live"  # the live map: officers, devices, positions, alerts
    READ_INCIDENTS = "read_incidents"
    READ_TRACKS = "read_tracks"  # stored trajectories and replay
    REPORT_INCIDENTS = "report_incidents"
    ACT_ON_INCIDENTS = "act_on_incidents"  # acknowledge, assign, resolve, close, cancel, merge
    EXPORT_EVIDENCE = "export_evidence"
    READ_AUDIT = "read_audit"
    READ_STATISTICS = "read_statistics"
    ANSWER_OWN_ORDERS = "answer_own_orders"  # the officer page
    MANAGE_ACCOUNTS = "manage_accounts"
    MANAGE_DEVICES = "manage_devices"
    SUBMIT_WORK_ORDERS = "submit_work_orders"  # hotline work orders, each opening an incident


_READ_ONLY = {
    Permission.READ_INCIDENTS,
    Permission.READ_TRACKS,
    Permission.EXPORT_EVIDENCE,
    Permission.READ_AUDIT,
    Permission.READ_STATISTICS,
}
_DISPATCH = {
    Permission.WATCH_LIVE,
    Permission.READ_INCIDENTS,
    Permission.READ_TRACKS,
    Permission.REPORT_INCIDENTS,
    Permission.ACT_ON_INCIDENTS,
}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission) - {Permission.ANSWER_OWN_ORDERS},
    Role.COMMANDER: frozenset(_DISPATCH | _READ_ONLY),
    Role.DISPATCHER: frozenset(_DISPATCH),
    Role.OFFICER: frozenset({Permission.ANSWER_OWN_ORDERS}),
    Role.AUDITOR: frozenset(_READ_ONLY),
    Role.INTEGRATION: frozenset({Permission.SUBMIT_WORK_ORDERS}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an account with its role and scope, from an address."""

    account: str
    role: Role
    scope: AreaId | None = None  # None: the whole center
    officer: OfficerId | None = None  # the roster officer an officer account is
    address: str = ""
    credential: str = ""  # the session or token it came with, for revocation checks

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]


class AreaScope:
    """What one scope covers, answered from the area tree and the roster."""

    def __init__(self, scope: AreaId | None, areas: AreaIndex | None, roster: Roster | None):
        if scope is not None and areas is None:
            raise ValueError("an area scope needs a configured city (YIWANG_AREAS_FILE)")
        self.scope = scope
        self.areas = areas
        self.roster = roster
        self._officers: frozenset[OfficerId] | None = None

    @property
    def whole_center(self) -> bool:
        return self.scope is None

    def covers_area(self, area_id: str) -> bool:
        if self.scope is None:
            return True
        assert self.areas is not None
        if area_id == self.scope:
            return True
        return any(a.id == self.scope for a in self.areas.ancestors(area_id))

    def narrowed(self, area: str | None) -> AreaScope:
        """The part of the scope under `area` (the whole scope for None); ValueError if the
        area is unknown or outside the scope."""
        if area is None:
            return self
        known = validate_scope(area, self.areas)
        if known is None:
            return self
        if not self.covers_area(known):
            raise ValueError(f"area {area} is outside your area scope")
        return AreaScope(known, self.areas, self.roster)

    def area_ids(self) -> list[str] | None:
        """Every area the scope covers (None: the whole center, every area and none)."""
        if self.scope is None:
            return None
        assert self.areas is not None
        return [a.id for a in self.areas.areas if self.covers_area(a.id)]

    def covers_point(self, point: LonLat) -> bool:
        if self.scope is None:
            return True
        assert self.areas is not None
        found = self.areas.area_for(point)
        return found is not None and self.covers_area(found.id)

    def covers_team(self, team: Team) -> bool:
        """A team answers inside the scope: it owns an area in it, or the scope's ancestor."""
        if self.scope is None:
            return True
        assert self.areas is not None
        above = {a.id for a in self.areas.ancestors(self.scope)}
        return any(self.covers_area(a) or a in above for a in team.areas)

    def covers_officer(self, officer: str) -> bool:
        if self.scope is None:
            return True
        return officer in self.officers()

    def officers(self) -> frozenset[OfficerId]:
        """Every officer on a shift of a team in scope (computed once per scope)."""
        if self._officers is None:
            teams = (
                {t.id for t in self.roster.teams.values() if self.covers_team(t)}
                if self.roster is not None
                else set()
            )
            shifts = self.roster.shifts if self.roster is not None else ()
            self._officers = frozenset(o for s in shifts if s.team in teams for o in s.officers)
        return self._officers


def validate_scope(scope: str | None, areas: AreaIndex | None) -> AreaId | None:
    """The scope as an area id, or a ValueError naming what exists."""
    if scope in (None, "", "*"):
        return None
    if areas is None:
        raise ValueError("area scopes need a configured city (YIWANG_AREAS_FILE)")
    try:
        return areas.get(str(scope)).id
    except KeyError:
        known = ", ".join(sorted(a.id for a in areas.areas if a.level == 1)[:10])
        raise ValueError(f"unknown area {scope!r}; districts include {known}") from None


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(
            f"unknown role {value!r}; choose from {', '.join(r.value for r in Role)}"
        ) from None
