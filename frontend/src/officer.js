// The officer page (phone-sized): the current order with a small map of the way there, its
// details and clocks, the answers the server says apply now, and an SOS button. Works beside
// the OwnTracks app, which keeps reporting the position the page shows.
//
// State is read from GET /api/orders/mine: every few seconds, when the live feed says an
// incident changed, and after each answer. window.__yiwang exposes it for the browser tests.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { clocks, policyFor } from "./clock.js";
import { LiveFeed } from "./live.js";
import { api, me, showAccount } from "./session.js";
import { Actions } from "./officer/actions.js";
import { announceNew, attention } from "./officer/attention.js";
import { html } from "./officer/html.js";
import { MapCard } from "./officer/map.js";
import { OrderCard } from "./officer/order.js";
import { Sos } from "./officer/sos.js";

const REFRESH_MS = 5000;
const state = { orders: [], mapLoaded: false, map: null, errors: [], refreshes: 0, attention };
window.__yiwang = state;
const $ = (id) => document.getElementById(id);

// Where the incident is drawn on the map, and what is drawn there (for the browser tests).
window.__incidentOnMap = () => {
  const order = state.orders[0];
  if (!state.map || !order) return null;
  const { x, y } = state.map.project(order.location);
  const hits = state.map.queryRenderedFeatures([[x - 4, y - 4], [x + 4, y + 4]], { layers: ["incident"] });
  return { x, y, width: state.map.getCanvas().clientWidth, height: state.map.getCanvas().clientHeight, drawn: hits.length };
};

function App({ start, subscribe }) {
  const [orders, setOrders] = useState(state.orders);
  const [, setTick] = useState(0);
  useEffect(() => {
    subscribe(setOrders);
    const timer = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, []);
  const order = orders[0] || null;
  const now = start.now();
  const running = order
    ? clocks(order, policyFor(start.policies, order), now).filter((c) => c.due != null && !c.reached)
    : [];
  return html`
    <${MapCard} order=${order} bounds=${start.city.bounds} onLoad=${(map) => { state.map = map; state.mapLoaded = true; }} />
    ${order
      ? html`<${OrderCard} key=${order.id} order=${order} categories=${start.categories} clocks=${running} now=${now} />
             <${Actions} key=${order.order.id} order=${order} answer=${start.answer} />
             ${orders.length > 1 && html`<p class="hint more">另有 ${orders.length - 1} 条指令待处理</p>`}`
      : html`<section class="card"><p id="no-order" class="hint">暂无指令</p></section>`}
    <${Sos} />`;
}

async function start() {
  const account = await me();
  $("who").textContent = account.display_name || account.officer || account.account;
  showAccount($("account-slot"), account);
  const [policies, clock, city] = await Promise.all([api("/api/policies"), api("/api/clock"), api("/api/city")]);
  const local = performance.now();
  const listeners = [];
  const refresh = async () => {
    try {
      state.orders = await api("/api/orders/mine");
      state.refreshes += 1;
      announceNew(state.orders);
      for (const listener of listeners) listener(state.orders);
    } catch (error) {
      state.errors.push(String(error));
    }
  };
  const context = {
    policies, city, categories: policies.categories || {},
    now: () => clock.now + ((performance.now() - local) / 1000) * clock.rate,
    answer: async (status, reason) => {
      const order = state.orders[0];
      try {
        await api(`/api/orders/${encodeURIComponent(order.order.id)}/ack`, { status, reason });
      } finally {
        setTimeout(refresh, 600); // the engine applies the answer a moment later
      }
    },
  };
  render(html`<${App} start=${context} subscribe=${(fn) => listeners.push(fn)} />`, $("app"));
  await refresh();
  let pending = null;
  new LiveFeed("/ws/live?types=incident", (message) => {
    if (message.type !== "incident" && message.type !== "snapshot") return;
    clearTimeout(pending);
    pending = setTimeout(refresh, 200);
  }, (s) => { $("feed").textContent = s === "live" ? "在线" : "重连中…"; });
  setInterval(refresh, REFRESH_MS);
}

start().catch((error) => { state.errors.push(String(error)); $("feed").textContent = `出错：${error.message}`; });
