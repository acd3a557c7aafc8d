// The units board: officers grouped by team, with status, duty, last fix, battery and current
// order; searched by name and filtered by team and status; a click locates the officer on the
// map. Keyed by device, so rows stay put while positions stream. At most UNITS_MAX rows.
//
//   <Units state onLocate={(dev) => …} />
import { useMemo, useState } from "preact/hooks";
import { html } from "../html.js";
import { ago, name, t } from "../i18n.js";
import { STATUS_COLOURS } from "../map/legend.js";
import { currentIncidents, now, ordersByOfficer, shownPositions, statusAt } from "../situation.js";

const UNITS_MAX = 300;
const STATUSES = Object.keys(STATUS_COLOURS);

export function Units({ state, onLocate }) {
  const [query, setQuery] = useState("");
  const [team, setTeam] = useState("");
  const [status, setStatus] = useState("");
  const t0 = now(state);
  const orders = ordersByOfficer(currentIncidents(state));
  const positions = shownPositions(state);
  // By team, then officer; sorted again only when devices, the roster or the units change.
  const { order, teams } = useMemo(() => boardOrder(state, positions), [positions, positions.size, state.teamOf.size, state.units]);
  const needle = query.trim().toLowerCase();
  // Every device is counted, but only the rows shown are built: the board costs the same each
  // second for 300 officers as for 10,000.
  const shown = [];
  let matching = 0;
  for (const n of order) {
    const dev = positions.devices[n];
    const officer = positions.officers[n];
    const rowTeam = state.teamOf.get(officer) || "";
    if (needle && !officer.toLowerCase().includes(needle) && !dev.toLowerCase().includes(needle)) continue;
    if (team && rowTeam !== team) continue;
    const rowStatus = statusAt(positions, n, orders, t0);
    if (status && rowStatus !== status) continue;
    matching += 1;
    if (shown.length < UNITS_MAX) {
      shown.push({ ...positions.get(dev), status: rowStatus, team: rowTeam, order: orders.get(officer), unit: state.units.get(dev), onDuty: state.onDuty.get(officer) });
    }
  }
  const groups = new Map();
  for (const row of shown) {
    if (!groups.has(row.team)) groups.set(row.team, []);
    groups.get(row.team).push(row);
  }
  return html`<section id="units">
    <h2>${t("units")} <small>${matching} / ${positions.size}</small></h2>
    <div class="filters">
      <input id="units-search" type="search" placeholder=${t("search")} value=${query} onInput=${(e) => setQuery(e.target.value)} />
      <select id="units-team" value=${team} onChange=${(e) => setTeam(e.target.value)}>
        <option value="">${t("team")}: ${t("all")}</option>${teams.map((x) => html`<option key=${x} value=${x}>${state.teamNames.get(x) || x}</option>`)}</select>
      <select id="units-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">${t("status")}: ${t("all")}</option>${STATUSES.map((s) => html`<option key=${s} value=${s}>${name("status", s)}</option>`)}</select>
    </div>
    ${matching > shown.length ? html`<p class="hint">${t("officers_shown", { all: matching, n: shown.length })}</p>` : null}
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


// The store's columns in the board's order, and the teams seen.
function boardOrder(state, positions) {
  const teamOf = (n) => state.teamOf.get(positions.officers[n]) || "";
  const text = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  const order = Array.from({ length: positions.size }, (_, n) => n);
  order.sort((a, b) => text(teamOf(a), teamOf(b)) || text(positions.officers[a], positions.officers[b]));
  return { order, teams: [...new Set(order.map(teamOf).filter(Boolean))].sort() };
}
