// The alerts: kept by the server (snapshot `alerts`, feed `alert` / `alert_ack`), each new until
// a dispatcher acknowledges it; new ones flash and the attention sound plays (again every
// REPEAT_S) until none is left new. In replay the alerts of the replayed window are shown as
// they were, without acknowledging.
//
//   <Alerts state alerts onAck={(alert) → Promise} />
//   attention(state, audio)   plays the sound while new alerts wait; state.sounds counts plays
import { useState } from "preact/hooks";
import { html } from "../html.js";
import { name, t, when } from "../i18n.js";
import { readable } from "./detail.js";
import { now } from "../situation.js";

const REPEAT_S = 15;

export const isNew = (alert) => !alert.acknowledged_by && !alert.acknowledged_at;

export function attention(state, audio) {
  // Live alerts call for attention in replay too: the present does not wait for the past.
  const waiting = state.alerts.some(isNew);
  const newest = state.alerts.find(isNew)?.id;
  const t0 = performance.now() / 1000;
  if (!waiting) return;
  if (newest === state.lastSounded && t0 - state.soundedAt < REPEAT_S) return;
  state.lastSounded = newest;
  state.soundedAt = t0;
  state.sounds += 1;
  audio.currentTime = 0;
  audio.play().catch(() => {}); // a page not yet clicked may not play; the flash still shows
}

export function Alerts({ state, alerts, onAck }) {
  const [refusal, setRefusal] = useState(null);
  const t0 = now(state);
  const ack = (alert) => onAck(alert).then(() => setRefusal(null), (error) => setRefusal(readable(error)));
  return html`<section id="alerts-panel">
    <h2>${t("alerts")} <small id="alert-counts">${t("new_alerts", { n: alerts.filter(isNew).length, total: alerts.length })}</small></h2>
    ${refusal ? html`<p class="refused" id="alert-refusal">${t("refused")}：${refusal}</p>` : null}
    <ul id="alerts">${alerts.length ? alerts.map((a) => html`<li key=${a.id} data-alert=${a.id} data-kind=${a.kind}
        class="alert ${a.kind} ${isNew(a) ? "new" : "acknowledged"}">
      <b>${name("alert", a.kind)}</b> ${when(a.raised_at, t0)} ${a.incident ? html`<span class="incident-id">${a.incident}</span>` : null}
      <div>${a.message}</div>
      ${isNew(a) ? (state.replay ? null : html`<button data-ack=${a.id} onClick=${() => ack(a)}>${t("acknowledge_alert")}</button>`)
        : html`<small class="ack">${t("acknowledged_by", { by: a.acknowledged_by || "", at: when(a.acknowledged_at, t0) })}</small>`}
    </li>`) : html`<li class="hint">${t("no_alerts")}</li>`}</ul>
  </section>`;
}
