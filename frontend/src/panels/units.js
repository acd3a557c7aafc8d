// The units board: officers grouped by team, with status, duty, last fix, battery and current
// order; searched by name and filtered by team and status; a click locates the officer on the
// map. Keyed by device, so rows stay put while positions stream. At most UNITS_MAX rows.
//
//   <Units state onLocate={(dev) => …} />
import { useState } from "preact/hooks";
import { html } from "../html.js";
import { ago, name, t } from "../i18n.js";
import { STATUS_COLOURS } from "../map/legend.js";
import { currentIncidents, currentOfficers, now, officerStatus, ordersByOfficer } from "../situation.js";

const UNITS_MAX = 300;
const STATUSES = Object.keys(STATUS_COLOURS);

export function Units({ state, onLocate }) {
  const [query, setQuery] = useState("");
  const [team, setTeam] = useState("");
  const [status, setStatus] = useState("");
  const t0 = now(state);
  const orders = ordersByOfficer(currentIncidents(state));
  const rows = currentOfficers(state).map((o) => ({
    ...o, status: officerStatus(o, orders, t0), team: state.teamOf.get(o.officer) || "", order: orders.get(o.officer), unit: state.units.get(o.dev),
    onDuty: state.onDuty.get(o.officer),
  }));
  const teams = [...new Set(rows.map((r) => r.team).filter(Boolean))].sort();
  const needle = query.trim().toLowerCase();
  const matching = rows.filter((r) => (!needle || r.officer.toLowerCase().includes(needle) || r.dev.toLowerCase().includes(needle))
    && (!team || r.team === team) && (!status || r.status === status))
    .sort((a, b) => (a.team === b.team ? (a.officer < b.officer ? -1 : a.officer > b.officer ? 1 : 0) : a.team < b.team ? -1 : 1));
  const shown = matching.slice(0, UNITS_MAX);
  const groups = new Map();
  for (const row of shown) {
    if (!groups.has(row.team)) groups.set(row.team, []);
    groups.get(row.team).push(row);
  }
  return html`<section id="units">
    <h2>${t("units")} <small>${matching.length} / ${rows.length}</small></h2>
    <div class="filters">
      <input id="units-search" type="search" placeholder=${t("search")} value=${query} onInput=${(e) => setQuery(e.target.value)} />
      <select id="units-team" value=${team} onChange=${(e) => setTeam(e.target.value)}>
        <option value="">${t("team")}: ${t("all")}</option>${teams.map((x) => html`<option key=${x} value=${x}>${state.teamNames.get(x) || x}</option>`)}</select>
      <select id="units-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">${t("status")}: ${t("all")}</option>${STATUSES.map((s) => html`<option key=${s} value=${s}>${name("status", s)}</option>`)}</select>
    </div>
    ${matching.length > shown.length ? html`<p class="hint">${t("officers_shown", { all: matching.length, n: shown.length })}</p>` : null}
    <ul id="officers">${[...groups].map(([teamId, members]) => html`<li key=${`team:${teamId}`} class="team" data-team=${teamId}>
      <h4>${state.teamNames.get(teamId) || teamId || t("no_team")} <small>${members.length}</small></h4>
      <ul>${members.map((r) => html`<li key=${r.dev} data-dev=${r.dev} data-status=${r.status}
          class="unit ${r.dev === state.selectedOfficer ? "selected" : ""}" onClick=${() => onLocate(r.dev)}>${r.officer}
        <i class="swatch" style=${{ background: `rgb(${STATUS_COLOURS[r.status].join(",")})` }}></i>
        <small>${name("status", r.status)}${r.onDuty == null ? "" : ` · ${t(r.onDuty ? "on_duty" : "off_duty")}`}
          · ${t("last_seen")} ${ago(t0 - r.heard_at)}${r.unit?.fix?.batt_pct == null ? "" : ` · ${t("battery")} ${r.unit.fix.batt_pct}%`}
          ${r.order ? html` · ${t("current_order")} <span class="order" data-incident=${r.order.id}>${r.order.title || r.order.id}</span>` : null}</small>
      </li>`)}</ul></li>`)}
    </ul>
  </section>`;
}
