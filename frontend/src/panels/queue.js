// The incident queue: open incidents by their next deadline, with running clocks, filtered by
// phase, category and breached. Keyed by incident id, so an item under the mouse stays the
// same element while the clocks tick (a click is never lost, an id can be selected as text).
//
//   <Queue state onSelect={(id) => …} />
import { useState } from "preact/hooks";
import { html } from "../html.js";
import { clocks, countdown, nextDeadline, policyFor } from "../clock.js";
import { name, t } from "../i18n.js";
import { currentIncidents, isOpen, now } from "../situation.js";

const OPEN_PHASES = ["reported", "acknowledged", "dispatched", "en_route", "on_scene", "resolved"];

// A double-click on the id selects all of it, hyphens included, for copying into a call log.
function selectAll(e) {
  const range = document.createRange();
  range.selectNodeContents(e.currentTarget);
  const selection = getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function Chip({ clock }) {
  const text = clock.reached
    ? clock.reached.late_by_s > 0 ? `${t("late")}${Math.round(clock.reached.late_by_s)}s` : "✓"
    : countdown(clock.left);
  return html`<span class="chip ${clock.state}" data-milestone=${clock.milestone}>${name("milestone", clock.milestone)} ${text}</span>`;
}

export function Queue({ state, onSelect }) {
  const [phase, setPhase] = useState("");
  const [category, setCategory] = useState("");
  const [breachedOnly, setBreachedOnly] = useState(false);
  const t0 = now(state);
  const policy = (i) => policyFor(state.policies, i);
  const open = currentIncidents(state).filter(isOpen);
  const shown = open
    .map((incident) => ({ incident, running: clocks(incident, policy(incident), t0) }))
    .filter(({ incident, running }) => (!phase || incident.phase === phase) && (!category || incident.category === category)
      && (!breachedOnly || running.some((c) => c.state === "breached")))
    .sort((a, b) => nextDeadline(a.incident, policy(a.incident), t0) - nextDeadline(b.incident, policy(b.incident), t0));
  const categories = [...new Set(open.map((i) => i.category))].sort();
  return html`<section id="queue-panel">
    <h2>${t("queue")} <small id="queue-count">${shown.length} / ${open.length}</small></h2>
    <div class="filters">
      <select id="queue-phase" value=${phase} onChange=${(e) => setPhase(e.target.value)}>
        <option value="">${t("phase")}: ${t("all")}</option>
        ${OPEN_PHASES.map((p) => html`<option key=${p} value=${p}>${name("phase", p)}</option>`)}
      </select>
      <select id="queue-category" value=${category} onChange=${(e) => setCategory(e.target.value)}>
        <option value="">${t("category")}: ${t("all")}</option>
        ${categories.map((c) => html`<option key=${c} value=${c}>${name("category", c)}</option>`)}
      </select>
      <label><input type="checkbox" id="queue-breached" checked=${breachedOnly} onChange=${(e) => setBreachedOnly(e.target.checked)} />${t("breached_only")}</label>
    </div>
    <ul id="queue">${shown.map(({ incident, running }) => html`
      <li key=${incident.id} class="incident ${incident.id === state.selected ? "selected" : ""}" data-id=${incident.id}
          data-phase=${incident.phase} onClick=${() => onSelect(incident.id)}>
        <b>${incident.title || name("category", incident.category)}</b>
        <small><span class="incident-id" onDblClick=${selectAll}>${incident.id}</span> · ${name("phase", incident.phase)} · ${name("category", incident.category)}</small>
        <div>${running.filter((c) => c.due != null).map((c) => html`<${Chip} key=${c.milestone} clock=${c} />`)}</div>
      </li>`)}
    </ul>
  </section>`;
}
