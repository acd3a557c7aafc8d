// The order itself: what happened, where, how far and how long to get there, the clocks
// still running, and the caller to ring back. Fields a record lacks are left out.
//
//   <OrderCard order=… categories=… clocks=… now=… />   now: the center's clock, epoch s
import { LABELS, countdown } from "../clock.js";
import { html } from "./html.js";
import { PHASES, distance, duration } from "./format.js";

function Caller({ name, phone }) {
  if (!name && !phone) return null;
  const tel = (phone || "").replace(/[^\d+]/g, "");
  return html`<p class="caller">报警人：${name || "—"}
    ${tel && html` <a id="call" class="call" href=${`tel:${tel}`}>拨打 ${phone}</a>`}</p>`;
}

// How old the officer's own fix is: a position minutes old draws the route from where they were.
function fixAge(me, now) {
  if (!me) return "暂无本人定位";
  const s = Math.max(0, Math.round(now - me.fix_at));
  return s < 60 ? `定位 ${s} 秒前` : `定位 ${Math.round(s / 60)} 分钟前`;
}

export function OrderCard({ order, categories, clocks, now }) {
  const category = categories[order.category] || order.category;
  const title = order.title || category;
  const [lon, lat] = order.location;
  return html`<section id="order" class="card order-card">
    <h2 id="order-title" data-incident=${order.id} data-phase=${order.phase}>${title}</h2>
    <p class="meta"><span class="tag">${category}</span> <span class="tag phase">${PHASES[order.phase] || order.phase}</span>
      <span class="id">${order.id}</span></p>
    ${order.address && html`<p class="address">${order.address}</p>`}
    ${order.area_name && html`<p class="area">${order.area_name}</p>`}
    ${order.description && html`<p class="description">${order.description}</p>`}
    <p class="way"><span id="distance">距离 ${distance(order.distance_m)}</span> · <span id="eta">${duration(order.eta_s)}</span>
</p>
    <p id="fix-age" class="hint">${fixAge(order.me, now)}</p>
    <div class="clocks">${clocks.map((c) => html`<span key=${c.milestone} class=${`clock chip ${c.state}`}>${LABELS[c.milestone]} ${countdown(c.left)}</span>`)}</div>
    <${Caller} name=${order.caller_name} phone=${order.caller_phone} />
    <p><a class="navigate" href=${`geo:${lat},${lon}`}>用地图导航</a></p>
  </section>`;
}
