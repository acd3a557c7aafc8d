// The selected incident: where, who called, what was said, the owning team, the clocks and the
// timeline; the actions the server allows in its phase (`incident.actions`) with a reason
// asked for where the audit keeps one; the recommended officers to order. In replay it shows
// the incident as it was, with no action at all.
//
//   <Detail state incident onAction={(action, body) → Promise} />
import { useEffect, useState } from "preact/hooks";
import { html } from "../html.js";
import { api } from "../session.js";
import { clocks, countdown, policyFor } from "../clock.js";
import { name, refusal, t, when } from "../i18n.js";
import { now } from "../situation.js";

// Actions whose reason the audit keeps; cancel and close cannot go without one.
const REASON_REQUIRED = ["cancel", "close"];
const RECOMMEND_EVERY_MS = 15_000;
const REASON_OPTIONAL = ["reassign", "resolve"];
// Offered elsewhere: assign on a recommended officer; merge needs the incident it repeats.
const NOT_BUTTONS = ["assign", "merge"];

// What the server allows in the incident's phase now: the page never re-derives the rules.
export const allowedActions = (incident) => incident.actions ?? [];

// A refusal as a person reads it: in the user's language when the server coded it, else the
// server's `detail`, a validation list as its messages.
export function readable(error) {
  const worded = error?.code ? refusal(error) : null;
  if (worded) return worded;
  const text = String(error.message ?? error);
  try {
    const detail = JSON.parse(text);
    if (Array.isArray(detail)) return detail.map((d) => d.msg ?? JSON.stringify(d)).join("; ");
  } catch { /* already a sentence */ }
  return text;
}

function ReasonForm({ action, onSubmit, onBack }) {
  const [reason, setReason] = useState("");
  const required = REASON_REQUIRED.includes(action);
  const blank = reason.trim() === "";
  return html`<form id="reason-form" data-action=${action} onSubmit=${(e) => { e.preventDefault(); if (!(required && blank)) onSubmit(reason.trim()); }}>
    <label>${name("action", action)} · ${t("reason")}${required ? " *" : ""}
      <textarea id="reason" rows="2" maxlength="2000" value=${reason} onInput=${(e) => setReason(e.target.value)}></textarea></label>
    ${required && blank ? html`<small class="hint">${t("reason_needed")}</small>` : null}
    <div><button type="submit" id="reason-submit" disabled=${required && blank}>${t("confirm")}</button>
      <button type="button" id="reason-back" onClick=${onBack}>${t("cancel_dialog")}</button></div>
  </form>`;
}

function Facts({ incident }) {
  const [lon, lat] = incident.location;
  const rows = [
    ["address", incident.address], ["area", incident.area_name || incident.area], ["coordinates", `${lon.toFixed(6)}, ${lat.toFixed(6)}`],
    ["caller", [incident.caller_name, incident.caller_phone].filter(Boolean).join(" · ")], ["description", incident.description],
    ["team", incident.team], ["ticket", incident.ticket],
  ];
  return html`<dl class="facts">${rows.filter(([, v]) => v).map(([k, v]) => html`<dt key=${k}>${t(k)}</dt><dd key=${`${k}-v`} data-fact=${k}>${v}</dd>`)}</dl>`;
}

function Clocks({ state, incident }) {
  const t0 = now(state);
  const running = clocks(incident, policyFor(state.policies, incident), t0).filter((c) => c.due != null);
  return html`<table class="clocks"><tbody>${running.map((c) => html`<tr key=${c.milestone} class=${c.state}>
    <td>${name("milestone", c.milestone)}</td><td>${when(c.due, t0)}</td>
    <td>${c.reached ? (c.reached.late_by_s > 0 ? `${t("late")} +${Math.round(c.reached.late_by_s)}s` : t("on_time")) : countdown(c.left)}</td>
    <td>${c.reached ? `${when(c.reached.reached_at, t0)} · ${c.reached.by}` : ""}</td></tr>`)}</tbody></table>`;
}

// An IoT sensor's alarms counted on its incident: how many, the latest reading, the clear.
function SensorAlarms({ alarms, t0 }) {
  if (!alarms) return null;
  return html`<p id="detail-alarms">${t("alarms", { sensor: alarms.sensor, count: alarms.count, value: alarms.value, unit: alarms.unit, at: when(alarms.last_at, t0) })}
    ${alarms.cleared_at ? ` · ${t("cleared", { at: when(alarms.cleared_at, t0) })}` : ""}</p>`;
}

// A citizen's report (随手拍) brings its photo: served only to those who may read the incident.
function Photos({ incident }) {
  const [photos, setPhotos] = useState([]);
  useEffect(() => {
    setPhotos([]);
    if (incident.source !== "citizen") return undefined;
    let current = true;
    api(`/api/incidents/${encodeURIComponent(incident.id)}/photos`).then((list) => { if (current) setPhotos(list); }, () => {});
    return () => { current = false; };
  }, [incident.id]);
  return html`<div class="photos" id="photos">${photos.map((p) => html`<figure key=${p.sha256} data-sha256=${p.sha256}>
    <a href=${p.url} target="_blank" rel="noopener"><img src=${p.url} alt=${t("photo")} /></a>
    <figcaption>${t("photo")} · ${t(p.place_from === "exif" ? "photo_place_exif" : "photo_place_report")} · ${t("contact")} ${p.contact}<br />sha256 ${p.sha256.slice(0, 16)}…</figcaption></figure>`)}</div>`;
}

function Recommendations({ state, incident, allowed, onAction }) {
  const [ranked, setRanked] = useState(null);
  useEffect(() => {
    let current = true;
    setRanked(null);
    const load = () => api(`/api/incidents/${encodeURIComponent(incident.id)}/recommendations`).then((list) => {
      for (const r of list) state.teamOf.set(r.officer, r.team);
      if (current) setRanked(list);
    }, (error) => { if (current) setRanked(readable(error)); });
    load();
    // Officers move, report in and take other orders: the ranking is renewed while it is shown.
    const timer = setInterval(load, RECOMMEND_EVERY_MS);
    return () => { current = false; clearInterval(timer); };
  }, [incident.id, incident.phase]);
  if (ranked === null) return html`<ol id="recommendations"><li class="hint">…</li></ol>`;
  if (typeof ranked === "string") return html`<ol id="recommendations"><li class="hint">${ranked}</li></ol>`;
  return html`<ol id="recommendations">${ranked.length ? ranked.map((r) => html`<li key=${r.officer}>${r.officer}
    <small>${r.team} · ${t("min", { n: Math.round(r.eta_s / 60) })} · ${r.reason}</small>
    ${allowed ? html`<button data-assign=${r.officer} onClick=${() => onAction("assign", { officers: [r.officer] })}>${t("assign")}</button>` : null}</li>`)
    : html`<li class="hint">${t("no_officer")}</li>`}</ol>`;
}

export function Detail({ state, incident, onAction }) {
  const [asking, setAsking] = useState(null);
  const [result, setResult] = useState(null);
  useEffect(() => { setAsking(null); setResult(null); }, [incident?.id]);
  if (!incident) return html`<section id="detail"><p class="hint">${t("select_incident")}</p></section>`;
  const replayed = Boolean(state.replay);
  const t0 = now(state);
  const actions = replayed ? [] : allowedActions(incident);
  const run = (action, body) => {
    setAsking(null);
    onAction(action, body).then(() => setResult({ ok: true, text: `${name("action", action)} · ${t("sent")}` }),
      (error) => setResult({ ok: false, text: `${t("refused")}：${readable(error)}` }));
  };
  const press = (action) => (REASON_REQUIRED.includes(action) || REASON_OPTIONAL.includes(action) ? setAsking(action) : run(action, { reason: "" }));
  const timeline = incident.milestones || [];
  return html`<section id="detail" class=${replayed ? "replayed" : ""} data-incident=${incident.id}>
    ${replayed ? html`<p class="banner">${t("replay_detail")}</p>` : null}
    <h3>${incident.title || name("category", incident.category)} <small data-phase=${incident.phase} id="detail-phase">${name("phase", incident.phase)}</small></h3>
    <p><span class="incident-id">${incident.id}</span> · ${t("reported")} ${when(incident.reported_at, t0)} · P${incident.priority} · ${name("source", incident.source)} · ${name("category", incident.category)}</p>
    <${Facts} incident=${incident} />
    <${SensorAlarms} alarms=${incident.alarms} t0=${t0} />
    <h4>${t("clocks")}</h4><${Clocks} state=${state} incident=${incident} />
    <h4>${t("timeline")}</h4>
    <ol id="timeline">${timeline.map((m) => html`<li key=${m.milestone}>${when(m.reached_at, t0)} ${name("milestone", m.milestone)} · ${m.by} · ${m.via}</li>`)}</ol>
    ${replayed ? null : html`<${Photos} incident=${incident} />`}
    <div class="actions" id="actions">${actions.filter((a) => !NOT_BUTTONS.includes(a)).map((a) => html`<button key=${a} data-action=${a} onClick=${() => press(a)}>${name("action", a)}</button>`)}</div>
    ${asking ? html`<${ReasonForm} action=${asking} onSubmit=${(reason) => run(asking, { reason })} onBack=${() => setAsking(null)} />` : null}
    ${result ? html`<p id="action-result" class=${result.ok ? "sent" : "refused"}>${result.text}</p>` : null}
    ${replayed ? null : html`<h4>${t("recommended")}</h4><${Recommendations} state=${state} incident=${incident} allowed=${actions.includes("assign")} onAction=${run} />`}
  </section>`;
}
