// The command-center page: wires the live feed into the store, the store into the map scene and
// the panels (Preact, keyed: updates patch the DOM), and the panels' requests to the API.
// Layers live in map/, panels in panels/, what is shown (live or replayed) in situation.js.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { LiveFeed } from "./live.js";
import { PositionStore } from "./positions.js";
import { createStore } from "./store.js";
import { api, me, showAccount } from "./session.js";
import { currentLanguage, name, setLanguage, t, useCategories, when } from "./i18n.js";
import { TRAIL_S, currentIncidents, isOpen, liveNow, now, officerStatus, ordersByOfficer, shownAlerts, shownPositions } from "./situation.js";
import { Scene } from "./map/scene.js";
import { Legend, TOGGLES } from "./map/legend.js";
import { Queue } from "./panels/queue.js";
import { Detail } from "./panels/detail.js";
import { Units } from "./panels/units.js";
import { Alerts, attention, isNew } from "./panels/alerts.js";
import { Intake } from "./panels/intake.js";
import { ReplayBar, stepReplay } from "./panels/replay.js";

const TICK_MS = 250;
const UNITS_EVERY_MS = 10_000;
const CLOCK_REDRAW_MS = 1000; // the map's clocks (deadline colours) are redrawn at least this often
const ALERTS_MAX = 200;

const state = {
  officers: new PositionStore({ trailSeconds: TRAIL_S }),
  incidents: new Map(),
  selected: null,
  selectedOfficer: null,
  alerts: [],
  units: new Map(), // device → GET /api/devices view (battery, speed, presence)
  teamOf: new Map(), // officer → team, from GET /api/roster and the recommendations
  teamNames: new Map(), // team → its name
  onDuty: new Map(), // officer → on a shift now
  layers: Object.fromEntries(TOGGLES.map((id) => [id, true])),
  intake: { picking: false, point: null },
  city: null,
  policies: null,
  categories: [],
  clock: { server: 0, local: 0, rate: 1 },
  errors: [],
  sounds: 0, // attention sounds started (window.__yiwang.sounds)
  soundsPlayed: 0, // …and actually played by the audio element
  flights: 0, // times the map flew to a selection off screen
  // Stream sequence of each positions update, with when it arrived and when it was drawn.
  received: [],
  renders: [],
};
const store = createStore(state);
window.__yiwang = state;
window.addEventListener("error", (e) => state.errors.push(String(e.message)));

const parsed = (body) => (typeof body === "string" ? JSON.parse(body) : body);

function keepAlert(alert) {
  const others = state.alerts.filter((a) => a.id !== alert.id);
  state.alerts = [alert, ...others].sort((a, b) => b.raised_at - a.raised_at).slice(0, ALERTS_MAX);
}

function onMessage(message, arrived = performance.now()) {
  if (message.type === "snapshot") {
    state.incidents.clear();
    for (const incident of message.incidents) state.incidents.set(incident.id, incident);
    state.officers.applyRows(message.devices);
    state.alerts = [];
    for (const alert of message.alerts) keepAlert(alert);
  } else if (message.type === "positions") {
    if (message.frame) state.officers.applyColumns(message.frame);
    else state.officers.applyRows(message.body);
    state.lastPositionsSeq = message.seq;
    state.positionsMs = performance.now() - arrived;
    state.received.push([message.seq, Date.now()]);
    if (state.received.length > 2000) state.received.splice(0, 1000);
    scheduleRedraw();
    return; // the panels catch up on their tick; the map draws on the next frame
  } else if (message.type === "incident") {
    const incident = parsed(message.body);
    state.incidents.set(incident.id, incident);
  } else if (message.type === "alert" || message.type === "alert_ack") {
    keepAlert(parsed(message.body));
  }
  store.notify();
  scheduleRedraw();
}

// --- the map --------------------------------------------------------------------------------

let scene = null;
let frameScheduled = false;
let redrawnAt = -Infinity; // performance.now() of the last map redraw
function redraw() {
  frameScheduled = false;
  redrawnAt = performance.now();
  if (scene) scene.redraw();
}
function scheduleRedraw() {
  if (!frameScheduled) {
    frameScheduled = true;
    requestAnimationFrame(redraw);
  }
}

function shownIncident() {
  if (!state.selected) return null;
  if (state.replay) return currentIncidents(state).find((i) => i.id === state.selected) ?? null;
  return state.incidents.get(state.selected) ?? null;
}

async function loadRoute(incident) {
  state.route = null;
  const crew = incident.order ? incident.order.officers : [];
  const positions = shownPositions(state);
  const officer = positions.devices.map((dev) => positions.get(dev)).find((o) => crew.includes(o.officer));
  if (!officer || !isOpen(incident)) return;
  const route = await api(`/api/route?from=${officer.lon},${officer.lat}&to=${incident.location.join(",")}`);
  if (state.selected === incident.id) state.route = { path: route.path, eta_s: route.eta_s };
  scheduleRedraw();
}

function selectIncident(id, { fromMap = false } = {}) {
  state.selected = id;
  state.selectedOfficer = null;
  const incident = shownIncident();
  if (incident) {
    if (!state.replay) loadRoute(incident).catch((error) => state.errors.push(String(error)));
    if (!fromMap) scene.show(incident.location);
  }
  store.notify();
  scheduleRedraw();
  if (fromMap) requestAnimationFrame(() => document.querySelector(`#queue [data-id="${CSS.escape(id)}"]`)?.scrollIntoView({ block: "nearest" }));
}

function selectOfficer(dev, { fromMap = false } = {}) {
  state.selectedOfficer = dev;
  const officer = shownPositions(state).get(dev);
  if (officer && !fromMap) scene.show([officer.lon, officer.lat]);
  store.notify();
  scheduleRedraw();
  if (fromMap) requestAnimationFrame(() => document.querySelector(`#officers [data-dev="${CSS.escape(dev)}"]`)?.scrollIntoView({ block: "nearest" }));
}

// --- what the panels ask of the server ------------------------------------------------------

const act = (action, body) => api(`/api/incidents/${encodeURIComponent(state.selected)}/${action}`, body);

async function acknowledge(alert) {
  const answer = await api(`/api/alerts/${encodeURIComponent(alert.id)}/ack`, {});
  if (answer && answer.id === alert.id) keepAlert(answer);
  store.notify();
}

async function loadReplay(from, to) {
  const past = await api(`/api/replay?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  if (!state.replay) state.liveSelected = state.selected;
  state.selected = null;
  state.replay = { ...past, alerts: past.alerts ?? [], t: past.from, playing: false, speed: 10, lastTick: performance.now() };
  store.notify();
  scheduleRedraw();
}

function leaveReplay() {
  if (!state.replay) return;
  state.replay = null;
  state.selected = state.liveSelected ?? null;
  store.notify();
  scheduleRedraw();
}

function pickPoint(picking, point) {
  state.intake.picking = picking;
  if (point) state.intake.point = point;
  store.notify();
  scheduleRedraw();
}

async function loadUnits() {
  const [devices, roster] = await Promise.all([api("/api/devices"), api("/api/roster")]);
  state.units = new Map(devices.map((d) => [`${d.user}/${d.device}`, d]));
  state.teamNames = new Map(roster.teams.map((team) => [team.id, team.name]));
  state.onDuty = new Map(roster.officers.map((o) => [o.officer, o.on_duty]));
  for (const o of roster.officers) if (o.team) state.teamOf.set(o.officer, o.team);
}

// --- the page -------------------------------------------------------------------------------

function useStore() {
  const [, setVersion] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((n) => n + 1)), []);
}

function Header() {
  useStore();
  const alerts = shownAlerts(state);
  const open = currentIncidents(state).filter(isOpen).length;
  return html`
    <b>${t("title")}</b> · <span id="now" class=${state.replay ? "replayed" : ""}>${state.replay ? `${t("replay")} ` : ""}${when(now(state), liveNow(state))}</span>
    · ${t("open")} <span id="open-count">${open}</span>
    · ${t("alerts")} <span id="header-alerts" class=${alerts.some(isNew) ? "flash" : ""}>${t("new_alerts", { n: alerts.filter(isNew).length, total: alerts.length })}</span>
    · ${t("feed")} <span id="feed" data-state=${state.feed}>${name("feed", state.feed ?? "connecting")}</span>
    <${ReplayBar} state=${state} onLoad=${loadReplay} onLeave=${leaveReplay} onChange=${() => { store.notify(); scheduleRedraw(); }} />
    <button id="language" onClick=${() => { setLanguage(currentLanguage() === "en" ? "zh" : "en"); store.notify(); }}>${t("language")}</button>
    <a href="/supervision">${t("supervision")}</a>`;
}

function Panels() {
  useStore();
  const incident = shownIncident();
  return html`
    <${Queue} state=${state} onSelect=${(id) => selectIncident(id)} />
    <${Detail} state=${state} incident=${incident} onAction=${act} />
    ${state.replay ? null : html`<${Intake} state=${state} categories=${state.categories} onPick=${pickPoint} onCreated=${(id) => { state.selected = id; store.notify(); }} />`}
    <${Alerts} state=${state} alerts=${shownAlerts(state)} onAck=${acknowledge} />
    <${Units} state=${state} onLocate=${(dev) => selectOfficer(dev)} />`;
}

function MapCorner() {
  useStore();
  return html`<${Legend} layers=${state.layers} lang=${currentLanguage()} onToggle=${(id) => { state.layers[id] = !state.layers[id]; store.notify(); scheduleRedraw(); }} />`;
}

const $ = (id) => document.getElementById(id);

async function start() {
  setLanguage(currentLanguage());
  const [account, city, policies, clock] = await Promise.all([me(), api("/api/city"), api("/api/policies"), api("/api/clock")]);
  showAccount($("account-slot"), account);
  Object.assign(state, { account, city, policies, clock: { server: clock.now, local: performance.now(), rate: clock.rate } });
  state.categories = await api("/api/categories");
  useCategories(state.categories);
  scene = new Scene($("map"), state, {
    onSelect: (picked) => (picked.incident ? selectIncident(picked.incident, { fromMap: true }) : selectOfficer(picked.officer, { fromMap: true })),
    onPoint: (point) => pickPoint(false, point),
  });
  state.map = scene.map;
  state.overlay = scene.overlay;
  const audio = $("alert-sound");
  audio.addEventListener("play", () => { state.soundsPlayed += 1; });
  render(html`<${Header} />`, $("header-app"));
  render(html`<${Panels} />`, $("panels"));
  render(html`<${MapCorner} />`, $("map-corner"));
  // `/?positions=binary` takes positions as column frames, for cities of thousands of officers.
  const positions = new URLSearchParams(location.search).get("positions") || "json";
  new LiveFeed("/ws/live", onMessage, (s) => { state.feed = s; store.notify(); }, { positions });
  const refreshUnits = () => loadUnits().catch((error) => state.errors.push(String(error)));
  refreshUnits();
  setInterval(refreshUnits, UNITS_EVERY_MS);
  // Clocks change by the second: the map and the panels are redrawn when the shown second
  // turns, not on every tick (a software-rendered map cannot afford four frames a second).
  let shownSecond = null;
  setInterval(() => {
    if (state.replay) stepReplay(state.replay);
    const second = Math.floor(now(state));
    if (second !== shownSecond) {
      shownSecond = second;
      // Positions streaming at 1 Hz redraw the map anyway: a second redraw a second only
      // doubles the raster work and makes the next update wait for it.
      if (performance.now() - redrawnAt >= CLOCK_REDRAW_MS) scheduleRedraw();
      store.notify();
    }
    attention(state, audio);
    state.frames = (state.frames || 0) + 1;
  }, TICK_MS);
}

// --- hooks for tests and benches -------------------------------------------------------------

window.__replayAt = (t) => { state.replay.t = t; store.notify(); scheduleRedraw(); };
// The pixel where an officer is drawn, and how it is drawn (colour by status, arrow by heading).
window.__officerPixel = (dev) => {
  const officer = shownPositions(state).get(dev);
  return officer && state.map.project([officer.lon, officer.lat]);
};
window.__incidentPixel = (id) => {
  const incident = currentIncidents(state).find((i) => i.id === id);
  return incident && state.map.project(incident.location);
};
window.__officerLook = (dev) => {
  const positions = shownPositions(state);
  const officer = positions.get(dev);
  if (!officer) return undefined;
  const status = officerStatus(officer, ordersByOfficer(currentIncidents(state)), now(state));
  const trail = new Float32Array(positions.trailLength(positions.index.get(dev)) * 2);
  positions.copyTrail(positions.index.get(dev), trail, 0);
  return { status, heading: officer.heading, trail: Array.from(trail) };
};
window.__pick = (x, y) => {
  const info = state.overlay.pickObject({ x, y, radius: 3, layerIds: ["officers"] });
  return info ? state.officerOrder[info.index] : null;
};
// The store, for tests that play a newer server's fields (e.g. `actions`) into the page.
window.__store = store;

start().catch((error) => { state.errors.push(String(error)); $("panels").textContent = `${t("error")}: ${error.message}`; });
