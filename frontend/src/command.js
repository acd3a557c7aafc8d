// The command-center page: the live map (MapLibre over an offline PMTiles basemap, deck.gl
// layers on top), the incident queue with running clocks, the selected incident with its
// timeline, recommendations and actions, the officer list and the alerts feed.
import { esc } from "./escape.js";
import { Map as MapLibre, addProtocol, setWorkerUrl } from "maplibre-gl";
import { MapboxOverlay } from "@deck.gl/mapbox";
import { GeoJsonLayer, ScatterplotLayer, TextLayer, PathLayer } from "@deck.gl/layers";
import { Protocol } from "pmtiles";
import { LiveFeed } from "./live.js";
import { PositionStore } from "./positions.js";
import { officerLayers } from "./map/officers.js";
import { LOCAL_IDEOGRAPHS, baseStyle } from "./map/basemap.js";
import { api, me, showAccount } from "./session.js";
import { LABELS, clocks, countdown, localTime, nextDeadline, policyFor, worst } from "./clock.js";

const STATUS_COLOURS = {
  available: [46, 160, 67], ordered: [245, 159, 0], en_route: [25, 113, 194],
  on_scene: [132, 94, 247], offline: [134, 142, 150],
};
const CLOCK_COLOURS = { running: [25, 113, 194], warning: [245, 159, 0], breached: [224, 49, 49], done: [46, 160, 67] };
const TRAIL_S = 300;
const OFFLINE_AFTER_S = 300;
const OFFICER_LIST_MAX = 300;

const state = {
  officers: new PositionStore({ trailSeconds: TRAIL_S }),
  incidents: new Map(),
  selected: null,
  alerts: [],
  city: null,
  policies: null,
  clock: { server: 0, local: 0, rate: 1 },
  errors: [],
  // Stream sequence of each positions update, with when it arrived and when it was drawn.
  received: [],
  renders: [],
};
window.__yiwang = state;
window.addEventListener("error", (e) => state.errors.push(String(e.message)));

const $ = (id) => document.getElementById(id);
const liveNow = () => state.clock.server + ((performance.now() - state.clock.local) / 1000) * state.clock.rate;
const now = () => (state.replay ? state.replay.t : liveNow());

// --- what the screen shows: the live state, or a past moment of a replayed window ----------

// The positions shown: the live store, or one laid out for the replayed moment.
function shownPositions() {
  if (!state.replay) return state.officers;
  const t = state.replay.t;
  const shown = new PositionStore({ trailSeconds: TRAIL_S });
  for (const [dev, fixes] of Object.entries(state.replay.tracks)) {
    let n = fixes.findIndex((f) => f[0] > t);
    if (n === 0) continue; // not yet heard from at t
    if (n === -1) n = fixes.length;
    for (const [fixAt, lon, lat] of fixes.slice(0, n)) if (fixAt >= t - TRAIL_S) shown.move(dev, lon, lat, fixAt);
    const [t0, lon0, lat0] = fixes[n - 1];
    if (n < fixes.length) {
      const [t1, lon1, lat1] = fixes[n];
      const share = (t - t0) / (t1 - t0);
      shown.move(dev, lon0 + (lon1 - lon0) * share, lat0 + (lat1 - lat0) * share, t0);
    }
  }
  return shown;
}

function currentOfficers() {
  const store = shownPositions();
  return store.devices.map((dev) => store.get(dev));
}

const PHASE_AFTER = { respond: "dispatched", turn_out: "en_route", arrive: "on_scene", handle: "resolved" };

function currentIncidents() {
  if (!state.replay) return [...state.incidents.values()];
  const t = state.replay.t;
  return state.replay.incidents.filter((i) => i.reported_at <= t).map((incident) => {
    const milestones = (incident.milestones || []).filter((m) => m.reached_at <= t);
    const last = milestones.length ? milestones[milestones.length - 1].milestone : null;
    const phase = last ? PHASE_AFTER[last] : "reported";
    return { ...incident, milestones, phase, order: phase === "reported" ? null : incident.order };
  });
}

function officerStatus(officer) {
  // By when the center last heard the device (its own clock), not the device's clock.
  if (now() - officer.heard_at > OFFLINE_AFTER_S) return "offline";
  for (const incident of currentIncidents()) {
    const order = incident.order;
    if (!order || !order.officers.includes(officer.officer)) continue;
    if (incident.phase === "dispatched") return "ordered";
    if (incident.phase === "en_route") return "en_route";
    if (incident.phase === "on_scene") return "on_scene";
  }
  return "available";
}

function onMessage(message, arrived = performance.now()) {
  if (message.type === "snapshot") {
    state.incidents.clear();
    for (const incident of message.incidents) state.incidents.set(incident.id, incident);
    state.officers.applyRows(message.devices);
  } else if (message.type === "positions") {
    if (message.frame) state.officers.applyColumns(message.frame);
    else state.officers.applyRows(message.body);
    state.lastPositionsSeq = message.seq;
    state.positionsMs = performance.now() - arrived;
    state.received.push([message.seq, Date.now()]);
    if (state.received.length > 2000) state.received.splice(0, 1000);
    scheduleRedraw();
  } else if (message.type === "incident") {
    const incident = JSON.parse(typeof message.body === "string" ? message.body : JSON.stringify(message.body));
    state.incidents.set(incident.id, incident);
  } else if (["warning", "escalation", "partner_missing", "redispatch", "patrol_shortfall", "sensor_silent"].includes(message.type)) {
    const body = typeof message.body === "string" ? JSON.parse(message.body) : message.body;
    state.alerts.unshift({ type: message.type, body, at: now() });
    state.alerts.length = Math.min(state.alerts.length, 50);
  }
  state.dirty = true;
}

// --- the map -------------------------------------------------------------------------------

function layers() {
  const t = now();
  const positions = shownPositions();
  state.officerOrder = positions.devices;
  const statusOf = (dev) => officerStatus(positions.get(dev));
  const open = currentIncidents().filter((i) => !["closed", "cancelled", "merged"].includes(i.phase));
  const incidentState = (i) => worst(clocks(i, policyFor(state.policies, i), t));
  const busy = new Map();
  for (const incident of open) {
    const area = areaOf(incident.location);
    if (area) busy.set(area, (busy.get(area) || 0) + 1);
  }
  const route = state.route ? [state.route] : [];
  return [
    new GeoJsonLayer({
      // Areas with open incidents are shaded, darker the more they hold.
      id: "areas", data: state.city.areas, stroked: false, filled: true, pickable: true,
      getFillColor: (f) => [224, 49, 49, Math.min(90, 25 * (busy.get(f.properties.id) || 0))],
      updateTriggers: { getFillColor: [...busy.entries()].join() },
    }),
    new TextLayer({
      id: "area-labels", data: state.city.labels, getPosition: (d) => d.position, getText: (d) => d.name,
      getSize: 13, getColor: [70, 80, 90], characterSet: "auto", fontFamily: "Noto Sans CJK SC, sans-serif",
    }),
    new PathLayer({ id: "route", data: route, getPath: (d) => d.path, getColor: [224, 49, 49], widthMinPixels: 4 }),
    ...officerLayers(positions, {
      colourOf: (dev) => STATUS_COLOURS[statusOf(dev)],
      trailed: (dev) => statusOf(dev) !== "available",
    }),
    new ScatterplotLayer({
      id: "incident-rings", data: open, getPosition: (i) => i.location, radiusUnits: "pixels", getRadius: 14,
      filled: false, stroked: true, lineWidthMinPixels: 4, getLineColor: (i) => CLOCK_COLOURS[incidentState(i)],
      updateTriggers: { getLineColor: Math.floor(t) },
    }),
    new ScatterplotLayer({
      id: "incidents", data: open, pickable: true, getPosition: (i) => i.location, radiusUnits: "pixels",
      getRadius: 7, getFillColor: (i) => CLOCK_COLOURS[incidentState(i)], updateTriggers: { getFillColor: Math.floor(t) },
    }),
  ];
}

function inRing(ring, [x, y]) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function areaOf(point) {
  for (const feature of state.city.areas.features) {
    const { type, coordinates } = feature.geometry;
    const polygons = type === "Polygon" ? [coordinates] : coordinates;
    for (const [outer, ...holes] of polygons) {
      if (inRing(outer, point) && !holes.some((h) => inRing(h, point))) return feature.properties.id;
    }
  }
  return null;
}

async function loadRoute(incident) {
  const officer = officersOf(incident)[0];
  state.route = null;
  if (!officer) return;
  const route = await api(`/api/route?from=${officer.lon},${officer.lat}&to=${incident.location.join(",")}`);
  state.route = { path: route.path, eta_s: route.eta_s };
}

function officersOf(incident) {
  const names = incident.order ? incident.order.officers : [];
  return currentOfficers().filter((o) => names.includes(o.officer));
}

// New positions are drawn on the next animation frame, not on the panels' 4 Hz tick.
let frameScheduled = false;
function redraw() {
  frameScheduled = false;
  if (!state.overlay || !state.policies) return;
  const started = performance.now();
  state.drawnSeq = state.lastPositionsSeq;
  state.overlay.setProps({ layers: layers() });
  state.layersMs = performance.now() - started;
  performance.measure("yiwang:layers", { start: started, detail: state.drawnSeq });
}
function scheduleRedraw() {
  if (!frameScheduled) {
    frameScheduled = true;
    requestAnimationFrame(redraw);
  }
}

// --- panels ---------------------------------------------------------------------------------

function renderQueue() {
  const t = now();
  const open = currentIncidents().filter((i) => !["closed", "cancelled", "merged"].includes(i.phase));
  open.sort((a, b) => nextDeadline(a, policyFor(state.policies, a), t) - nextDeadline(b, policyFor(state.policies, b), t));
  $("queue").innerHTML = open.map((incident) => {
    const running = clocks(incident, policyFor(state.policies, incident), t);
    const chips = running.filter((c) => c.due != null).map((c) => {
      const text = c.reached ? (c.reached.late_by_s > 0 ? `超时${Math.round(c.reached.late_by_s)}s` : "✓") : countdown(c.left);
      return `<span class="chip ${c.state}" data-milestone="${c.milestone}">${LABELS[c.milestone]} ${text}</span>`;
    }).join("");
    return `<li class="incident ${incident.id === state.selected ? "selected" : ""}" data-id="${esc(incident.id)}" data-phase="${esc(incident.phase)}">
      <b>${esc(incident.title || incident.category)}</b> <small>${esc(incident.id)} · ${esc(incident.phase)}</small><div>${chips}</div></li>`;
  }).join("");
  $("open-count").textContent = open.length;
}

// An IoT sensor's alarms counted on its incident: how many, the latest reading, the clear.
function sensorAlarms(alarms) {
  if (!alarms) return "";
  const cleared = alarms.cleared_at ? ` · 已解除 cleared ${localTime(alarms.cleared_at)}` : "";
  return `<p id="detail-alarms">传感器 ${esc(alarms.sensor)} · 报警 <b>${esc(alarms.count)}</b> 次 · 最新 ${esc(alarms.value)} ${esc(alarms.unit)} ${localTime(alarms.last_at)}${cleared}</p>`;
}

async function renderDetail() {
  const incident = state.selected && state.incidents.get(state.selected);
  if (!incident) { $("detail").innerHTML = "<p class='hint'>选择一个事件 Select an incident</p>"; return; }
  const milestones = (incident.milestones || []).map((m) =>
    `<tr><td>${LABELS[m.milestone]}</td><td>${localTime(m.reached_at)}</td><td>${m.late_by_s > 0 ? `+${Math.round(m.late_by_s)}s` : "按时"}</td><td>${esc(m.by)} · ${esc(m.via)}</td></tr>`).join("");
  $("detail").innerHTML = `<h3>${esc(incident.title || incident.category)} <small data-phase="${esc(incident.phase)}" id="detail-phase">${esc(incident.phase)}</small></h3>
    <p>${esc(incident.id)} · 上报 ${localTime(incident.reported_at)} · P${esc(incident.priority)} · ${esc(incident.source)}</p>
    ${sensorAlarms(incident.alarms)}
    <table>${milestones}</table>
    <div class="photos" id="photos"></div>
    <div class="actions">${["acknowledge", "reassign", "resolve", "close", "cancel"].map((a) =>
      `<button data-action="${a}">${{ acknowledge: "受理", reassign: "改派", resolve: "办结", close: "结案", cancel: "撤销" }[a]}</button>`).join("")}</div>
    <h4>推荐 Recommended</h4><ol id="recommendations"><li class="hint">…</li></ol>`;
  loadRoute(incident).catch((error) => state.errors.push(String(error)));
  renderPhotos(incident).catch((error) => { $("photos").textContent = error.message; });
  try {
    const ranked = await api(`/api/incidents/${incident.id}/recommendations`);
    $("recommendations").innerHTML = ranked.map((r) =>
      `<li>${esc(r.officer)} <small>${esc(r.team)} · ${Math.round(r.eta_s / 60)} min · ${esc(r.reason)}</small> <button data-assign="${esc(r.officer)}">派单</button></li>`).join("") || "<li class='hint'>无可用警员</li>";
  } catch (error) {
    $("recommendations").innerHTML = `<li class="hint">${esc(error.message)}</li>`;
  }
}

// A citizen's report (随手拍) brings its photo: served only to those who may read the incident.
async function renderPhotos(incident) {
  if (incident.source !== "citizen") return;
  const photos = await api(`/api/incidents/${encodeURIComponent(incident.id)}/photos`);
  if (state.selected !== incident.id) return; // another incident was chosen meanwhile
  $("photos").innerHTML = photos.map((p) => `<figure data-sha256="${esc(p.sha256)}">
      <a href="${esc(p.url)}" target="_blank" rel="noopener"><img src="${esc(p.url)}" alt="随手拍照片"></a>
      <figcaption>随手拍 · ${p.place_from === "exif" ? "照片定位" : "上报位置"} · 联系 ${esc(p.contact)}<br>sha256 ${esc(p.sha256.slice(0, 16))}…</figcaption></figure>`).join("");
}

function renderOfficers() {
  const all = currentOfficers().sort((a, b) => (a.officer < b.officer ? -1 : a.officer > b.officer ? 1 : 0));
  const list = all.slice(0, OFFICER_LIST_MAX);
  $("officers").innerHTML = (all.length > list.length ? `<li class="hint">${all.length} officers, first ${list.length}</li>` : "") + list.map((o) => `<li><i style="background:rgb(${STATUS_COLOURS[officerStatus(o)]})"></i>${esc(o.officer)} <small>${officerStatus(o)}</small></li>`).join("");
}

function renderAlerts() {
  $("alerts").innerHTML = state.alerts.map((a) =>
    `<li class="${esc(a.type)}">${localTime(a.at)} ${esc(a.type)} ${esc(a.body.incident ?? a.body.summary)} ${esc(a.body.milestone)}</li>`).join("");
}

async function act(action, officer) {
  const id = state.selected;
  if (action === "assign") await api(`/api/incidents/${id}/assign`, { officers: [officer] });
  else await api(`/api/incidents/${id}/${action}`, { reason: "" });
}

// --- start ------------------------------------------------------------------------------------

async function start() {
  const [account, city, policies, clock] = await Promise.all([me(), api("/api/city"), api("/api/policies"), api("/api/clock")]);
  showAccount($("account-slot"), account);
  Object.assign(state, { city, policies, clock: { server: clock.now, local: performance.now(), rate: clock.rate } });
  addProtocol("pmtiles", new Protocol().tile);
  setWorkerUrl(new URL("/static/maplibre-gl-worker.mjs", location.href).href);
  const map = new MapLibre({ container: "map", style: baseStyle(location.origin), localIdeographFontFamily: LOCAL_IDEOGRAPHS, bounds: city.bounds, fitBoundsOptions: { padding: 20 }, attributionControl: false });
  const overlay = new MapboxOverlay({
    interleaved: false,
    layers: [],
    onAfterRender: () => {
      if (state.drawnSeq && state.drawnSeq !== state.reportedSeq) {
        state.renders.push([state.drawnSeq, Date.now()]);
        if (state.renders.length > 2000) state.renders.splice(0, 1000);
        state.reportedSeq = state.drawnSeq;
      }
    },
  });
  map.addControl(overlay);
  state.map = map;
  state.overlay = overlay;
  map.on("load", () => { state.mapLoaded = true; });
  const positionsFormat = new URLSearchParams(location.search).get("positions") || "json";
  new LiveFeed("/ws/live", onMessage, (s) => { $("feed").textContent = s; }, { positions: positionsFormat });
  wireReplay();

  $("queue").addEventListener("click", (e) => {
    const item = e.target.closest("[data-id]");
    if (item) { state.selected = item.dataset.id; renderDetail(); }
  });
  $("detail").addEventListener("click", async (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    try { await act(button.dataset.assign ? "assign" : button.dataset.action, button.dataset.assign); }
    catch (error) { state.alerts.unshift({ type: "refused", body: { incident: error.message }, at: now() }); }
  });
  let lastPhase = null;
  setInterval(() => {
    redraw();
    renderQueue();
    renderOfficers();
    renderAlerts();
    const selected = state.selected && state.incidents.get(state.selected);
    if (selected && selected.phase !== lastPhase) { lastPhase = selected.phase; renderDetail(); }
    $("now").textContent = (state.replay ? "回放 " : "") + localTime(now());
    if (state.replay) stepReplay();
    state.frames = (state.frames || 0) + 1;
  }, 250);
}

// --- situation replay ------------------------------------------------------------------------

const localInput = (epoch) => new Date(epoch * 1000).toLocaleString("sv-SE", { timeZone: "Asia/Shanghai" }).replace(" ", "T").slice(0, 16);

async function loadReplay(from, to) {
  const window_ = await api(`/api/replay?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  state.replay = { ...window_, t: window_.from, playing: false, lastTick: performance.now() };
  const slider = $("replay-slider");
  Object.assign(slider, { min: window_.from, max: window_.to, step: 1, value: window_.from });
  state.dirty = true;
}

function stepReplay() {
  const replay = state.replay;
  const tick = performance.now();
  if (replay.playing) replay.t = Math.min(replay.to, replay.t + ((tick - replay.lastTick) / 1000) * Number($("replay-speed").value));
  replay.lastTick = tick;
  $("replay-slider").value = replay.t;
}

window.__replayAt = (t) => { state.replay.t = t; };

function wireReplay() {
  $("replay-toggle").addEventListener("click", () => {
    const bar = $("replay-bar");
    bar.hidden = !bar.hidden;
    const t = liveNow();
    $("replay-from").value = localInput(t - 1800);
    $("replay-to").value = localInput(t);
    if (bar.hidden) state.replay = null;
  });
  $("replay-load").addEventListener("click", () => loadReplay($("replay-from").value, $("replay-to").value)
    .catch((error) => state.errors.push(String(error))));
  $("replay-slider").addEventListener("input", (e) => { if (state.replay) state.replay.t = Number(e.target.value); });
  $("replay-play").addEventListener("click", () => { if (state.replay) state.replay.playing = !state.replay.playing; });
}

// The pixel where an officer is drawn, for tests and for the list's "show on map".
window.__officerPixel = (dev) => {
  const officer = currentOfficers().find((o) => o.dev === dev);
  return officer && state.map.project([officer.lon, officer.lat]);
};
// How the map shows an officer (colour by status, arrow by heading), for tests.
window.__officerLook = (dev) => {
  const officer = currentOfficers().find((o) => o.dev === dev);
  return officer && { status: officerStatus(officer), heading: officer.heading };
};
window.__pick = (x, y) => {
  const info = state.overlay.pickObject({ x, y, radius: 3, layerIds: ["officers"] });
  return info ? state.officerOrder[info.index] : null;
};

start().catch((error) => { state.errors.push(String(error)); $("feed").textContent = `error: ${error.message}`; });
