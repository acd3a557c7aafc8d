// The officer page (phone-sized): the current order with its clocks and the buttons an
// officer presses. Works beside the OwnTracks app, which keeps reporting the position.
import { esc } from "./escape.js";
import { LiveFeed } from "./live.js";
import { ApiError, api, me, showAccount } from "./session.js";
import { LABELS, clocks, countdown, policyFor } from "./clock.js";

let officer = ""; // the signed-in officer, from the session
const state = { incidents: new Map(), policies: null, clock: { server: 0, local: 0, rate: 1 }, errors: [] };
window.__yiwang = state;
const $ = (id) => document.getElementById(id);
const now = () => state.clock.server + ((performance.now() - state.clock.local) / 1000) * state.clock.rate;
const ACTIONS = { dispatched: ["accepted", "rejected"], en_route: ["arrived"], on_scene: ["done"] };
const NAMES = { accepted: "接受", rejected: "拒绝", enroute: "出发", arrived: "到达", done: "完成" };

function current() {
  return [...state.incidents.values()].find((i) =>
    i.order && i.order.officers.includes(officer) && ["dispatched", "en_route", "on_scene"].includes(i.phase));
}

function render() {
  const incident = current();
  if (!incident) { $("order").innerHTML = "<p class='hint'>暂无指令 No order</p>"; return; }
  const t = now();
  const policy = policyFor(state.policies, incident);
  const timers = clocks(incident, policy, t).filter((c) => c.due != null && !c.reached)
    .map((c) => `<div class="clock chip ${c.state}">${LABELS[c.milestone]} ${countdown(c.left)}</div>`).join("");
  let buttons = ACTIONS[incident.phase] || [];
  if (incident.phase === "dispatched" && incident.order.accepted_by === officer) buttons = ["enroute", "arrived"];
  const [lon, lat] = incident.location;
  $("order").innerHTML = `<h3 id="order-title" data-incident="${esc(incident.id)}" data-phase="${esc(incident.phase)}">${esc(incident.title || incident.category)}</h3>
    <p>${esc(incident.id)} · ${esc(incident.phase)}</p>${timers}
    <p>${buttons.map((b) => `<button data-status="${b}">${NAMES[b]}</button>`).join("")}</p>
    <p><a href="geo:${lat},${lon}">导航 Navigate</a></p>`;
}

async function start() {
  const account = await me();
  officer = account.officer || "";
  $("who").textContent = officer;
  showAccount($("account-slot"), account);
  const [policies, clock] = await Promise.all([api("/api/policies"), api("/api/clock")]);
  Object.assign(state, { policies, clock: { server: clock.now, local: performance.now(), rate: clock.rate } });
  new LiveFeed("/ws/live?types=incident", (message) => {
    if (message.type === "snapshot") for (const i of message.incidents) state.incidents.set(i.id, i);
    if (message.type === "incident") {
      const incident = typeof message.body === "string" ? JSON.parse(message.body) : message.body;
      state.incidents.set(incident.id, incident);
    }
    render();
  }, (s) => { $("feed").textContent = s; });
  $("order").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-status]");
    const incident = current();
    if (!button || !incident) return;
    $("refusal").textContent = "";
    try {
      await api(`/api/orders/${incident.order.id}/ack`, { status: button.dataset.status });
    } catch (error) {
      // A refusal says why (not yours, withdrawn, no longer applies): show it, never hide it.
      $("refusal").textContent = error instanceof ApiError ? `未受理 Refused: ${error.message}` : String(error);
    }
  });
  setInterval(render, 500);
}

start().catch((error) => { state.errors.push(String(error)); $("feed").textContent = `error: ${error.message}`; });
