"""The readable report inside an evidence package: the incident, its milestones, each officer's
track, the clips, a citizen's photos and the audit trail, in local time, with a drawn map.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.evidence.formats import PackageContent, photo_file
from gis.coords import LonLat, haversine_m


def _crosscheck_text(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "no GPS in the file"
    if not stats.get("compared"):
        return f"{stats['file_points']} file points, none at a time the officer's track covers"
    return (
        f"{stats['compared']} of {stats['file_points']} points compared: median "
        f"{stats['median_m']} m, p95 {stats['p95_m']} m, max {stats['max_m']} m"
    )


def _local(at: float | None, zone: str) -> str:
    return (
        "-"
        if at is None
        else datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
    )


def _photo_row(photo: dict[str, Any], zone: str) -> str:
    report = photo.get("report", {})
    place = report.get("place", {})
    picture = (
        f"missing: {escape(str(photo['missing']))}"
        if "missing" in photo
        else f'<img src="{photo_file(photo["sha256"])}" width="240" alt="photo">'
    )
    return (
        f"<tr><td>{picture}</td><td><code>{escape(photo['sha256'])}</code></td>"
        f"<td>{photo.get('width')}×{photo.get('height')}</td><td>{_local(report.get('received_at'), zone)}</td>"
        f"<td>{place.get('lon')}, {place.get('lat')} ({escape(str(place.get('from')))})</td></tr>"
    )


def render_report(content: PackageContent, chains: dict[str, Any], drawing: str) -> str:
    """`report.html`; `chains` are the manifest's chain entries by device, `drawing` the map."""
    incident, zone = content.incident, content.zone
    rows = "".join(
        f"<tr><td>{escape(m['milestone'])}</td><td>{_local(m.get('due_at'), zone)}</td><td>{_local(m['reached_at'], zone)}</td>"
        f"<td>{m['late_by_s']:.0f} s</td><td>{escape(str(m['by']))}</td><td>{escape(str(m['via']))}</td></tr>"
        for m in incident.get("milestones", [])
    )
    audit = "".join(
        f"<tr><td>{_local(float(r['at']), zone)}</td><td>{escape(str(r.get('kind')))}</td><td>{escape(str(r.get('detail') or r.get('reason') or ''))[:300]}</td></tr>"
        for r in content.audit
    )
    tracks = ""
    for track in content.tracks:
        fixes = [r.fix for r in track.records]
        length = sum(
            haversine_m(LonLat(a["lon"], a["lat"]), LonLat(b["lon"], b["lat"]))
            for a, b in itertools.pairwise(fixes)
        )
        span = (
            f"{_local(fixes[0]['fix_at'], zone)} – {_local(fixes[-1]['fix_at'], zone)}"
            if fixes
            else "-"
        )
        tracks += (
            f"<tr><td>{escape(track.officer)}</td><td>{escape(track.device)}</td><td>{len(fixes)}</td>"
            f"<td>{length:,.0f} m</td><td>{span}</td><td><code>{chains[track.device]['head'][:16]}…</code></td></tr>"
        )
    clips = "".join(
        f"<tr><td>{escape(str(c.get('clip_id')))}</td><td>{escape(str(c.get('officer', '')))}</td><td>{_local(c.get('start'), zone)}</td>"
        f"<td>{_local(c.get('end'), zone)}</td><td>{escape(str(c.get('file_name', '')))}</td>"
        f"<td>{escape(_crosscheck_text(content.crosschecks.get(str(c.get('clip_id')))))}</td></tr>"
        for c in content.clips
    )
    photos = "".join(_photo_row(p, zone) for p in content.photos)
    start, end = content.window
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>执法证据包 {escape(incident["id"])}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}}h1{{font-size:20px}}h2{{font-size:16px;margin-top:2em}}</style></head><body>
<h1>执法证据包 Evidence package — {escape(incident["id"])}</h1>
<p>{escape(incident.get("title") or incident["category"])} · 类别 {escape(incident["category"])} · 优先级 {incident.get("priority")} · 来源 {escape(str(incident.get("source")))}<br>
上报 reported {_local(incident.get("reported_at"), zone)} · 状态 phase {escape(str(incident.get("phase")))} · 时段 window {_local(start, zone)} – {_local(end, zone)} ({escape(zone)})</p>
{drawing}
<h2>1/3/15 时限 Milestones</h2><table><tr><th>milestone</th><th>due</th><th>reached</th><th>late</th><th>by</th><th>via</th></tr>{rows}</table>
<h2>轨迹 Tracks</h2><table><tr><th>officer</th><th>device</th><th>fixes</th><th>length</th><th>from – to</th><th>chain head</th></tr>{tracks}</table>
<h2>执法记录仪 Clips</h2><table><tr><th>clip</th><th>officer</th><th>start</th><th>end</th><th>file</th><th>GPS cross-check</th></tr>{clips}</table>
<h2>市民随手拍 Citizen's photos</h2><table><tr><th>photo</th><th>sha256</th><th>pixels</th><th>received</th><th>place</th></tr>{photos}</table>
<h2>审计 Audit trail</h2><table><tr><th>time</th><th>what</th><th>detail</th></tr>{audit}</table>
<h2>核验 How to verify</h2><p>Every file's sha256 is in <code>manifest.json</code>, signed in <code>manifest.sig</code> (Ed25519, public key inside the manifest).
Each chain record's hash is sha256(previous hash ‖ canonical fix ‖ sha256(raw payload)). Run <code>yiwang evidence verify PACKAGE.zip</code>, or recompute them with any sha256 tool.</p>
</body></html>"""
