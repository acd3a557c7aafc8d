"""Which happenings become alerts, and what each says (pure): the engine's alerting effects,
new incidents (an SOS among them), sensors gone silent and shifts below their patrol target.

Each names its occurrence from what happened, so the same happening always gives the same
alert id (dispatch.core.alerts). Messages are Chinese, the screens' first language.
"""

from __future__ import annotations

from dispatch.core import effects as fx
from dispatch.core.alerts import Alert, AlertKind, new_alert
from dispatch.core.model import Incident, Milestone, Source
from dispatch.core.sensors import SensorSilent

MILESTONE_ZH = {
    Milestone.RESPOND: "响应",
    Milestone.TURN_OUT: "出警",
    Milestone.ARRIVE: "到场",
    Milestone.HANDLE: "处置",
}

AlertingEffect = fx.Warn | fx.Escalate | fx.PartnerMissing | fx.Redispatch


def effect_alert(effect: AlertingEffect, incident: Incident | None, now: float) -> Alert:
    """The alert of one of the engine's alerting effects; `incident` places it."""
    location, team = _where(incident)
    case = effect.incident
    match effect:
        case fx.Warn(milestone=milestone):
            return new_alert(
                AlertKind.WARNING,
                occurrence=milestone.value,
                message=f"警情 {case} {MILESTONE_ZH[milestone]}即将超时",
                raised_at=now,
                incident=case,
                location=location,
                team=team,
            )
        case fx.Escalate(milestone=milestone, level=level, action=action):
            step = "已超时" if level == 1 else f"超时升级至第 {level} 级（{action.value}）"
            return new_alert(
                AlertKind.ESCALATION,
                occurrence=milestone.value,
                message=f"警情 {case} {MILESTONE_ZH[milestone]}{step}",
                raised_at=now,
                incident=case,
                level=level,
                location=location,
                team=team,
            )
        case fx.PartnerMissing(on_scene=on_scene):
            return new_alert(
                AlertKind.PARTNER_MISSING,
                occurrence="partner",
                message=f"警情 {case} 现场仅 {'、'.join(on_scene)} 一人，缺少同行队员",
                raised_at=now,
                incident=case,
                location=location,
                team=team,
            )
        case fx.Redispatch(reason=reason, exclude=exclude):
            return new_alert(
                AlertKind.REDISPATCH,
                occurrence=f"{reason}|{','.join(sorted(exclude))}",
                message=f"警情 {case} 重新派警：{reason}",
                raised_at=now,
                incident=case,
                location=location,
                team=team,
            )


def reported_alert(incident: Incident, now: float) -> Alert:
    """A new incident's alert: an SOS for an officer's alarm, else a new incident."""
    sos = incident.source is Source.DEVICE_SOS
    title = f"：{incident.title}" if incident.title else ""
    return new_alert(
        AlertKind.SOS if sos else AlertKind.NEW_INCIDENT,
        occurrence="reported",
        message=f"{'紧急求助' if sos else '新警情'} {incident.id}{title}",
        raised_at=now,
        incident=incident.id,
        location=(incident.location.lon, incident.location.lat),
        team=incident.team,
    )


def silence_alert(silent: SensorSilent, now: float) -> Alert:
    where = f"（{silent.place}）" if silent.place else ""
    return new_alert(
        AlertKind.SENSOR_SILENT,
        occurrence=f"{silent.sensor}|{silent.silent_since:.3f}",
        message=f"传感器 {silent.sensor}{where}失联，已 {now - silent.silent_since:.0f} 秒无心跳",
        raised_at=now,
        location=(silent.location.lon, silent.location.lat),
    )


def shortfall_alert(team: str, start_at: float, end_at: float, grids: int) -> Alert:
    """A shift that ended below its patrol target: raised as of the shift's end, whenever
    the watch looked."""
    return new_alert(
        AlertKind.PATROL_SHORTFALL,
        occurrence=f"{team}|{start_at:.0f}|{end_at:.0f}",
        message=f"{team} 班次巡查不达标：{grids} 个网格未达标",
        raised_at=end_at,
        team=team,
    )


def _where(incident: Incident | None) -> tuple[tuple[float, float] | None, str | None]:
    if incident is None:
        return None, None
    return (incident.location.lon, incident.location.lat), incident.team
