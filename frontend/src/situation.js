// The situation the screen shows: the live state, or a past moment of a replayed window.
// Pure reads of the store's state; `now(state)` is the screen's clock.
import { PositionStore } from "./positions.js";
import { t } from "./i18n.js";

export const TRAIL_S = 300;
const OFFLINE_AFTER_S = 300;
const TERMINAL = ["closed", "cancelled", "merged"];
const PHASE_AFTER = { respond: "dispatched", turn_out: "en_route", arrive: "on_scene", handle: "resolved" };

export const liveNow = (state) => state.clock.server + ((performance.now() - state.clock.local) / 1000) * state.clock.rate;
export const now = (state) => (state.replay ? state.replay.t : liveNow(state));

// The positions shown: the live store, or one laid out for the replayed moment (cached per t).
export function shownPositions(state) {
  const replay = state.replay;
  if (!replay) return state.officers;
  if (replay.shown && replay.shownAt === replay.t) return replay.shown;
  const t = replay.t;
  const tracks = Object.entries(replay.tracks);
  const shown = new PositionStore({ trailSeconds: TRAIL_S, capacity: tracks.length });
  const place = (dev, lon, lat, fixAt) => shown.move(shown.slot(dev), lon, lat, fixAt, NaN, NaN, fixAt);
  for (const [dev, fixes] of tracks) {
    let n = fixes.findIndex((f) => f[0] > t);
    if (n === 0) continue; // not yet heard from at t
    if (n === -1) n = fixes.length;
    for (const [fixAt, lon, lat] of fixes.slice(0, n)) if (fixAt >= t - TRAIL_S) place(dev, lon, lat, fixAt);
    const [t0, lon0, lat0] = fixes[n - 1];
    if (n < fixes.length) {
      const [t1, lon1, lat1] = fixes[n];
      const share = (t - t0) / (t1 - t0);
      place(dev, lon0 + (lon1 - lon0) * share, lat0 + (lat1 - lat0) * share, t0);
    }
  }
  Object.assign(replay, { shown, shownAt: t });
  return shown;
}

export function currentIncidents(state) {
  if (!state.replay) return [...state.incidents.values()];
  const t = state.replay.t;
  return state.replay.incidents.filter((i) => i.reported_at <= t).map((incident) => {
    const milestones = (incident.milestones || []).filter((m) => m.reached_at <= t);
    const last = milestones.length ? milestones[milestones.length - 1].milestone : null;
    const phase = last ? PHASE_AFTER[last] : "reported";
    // A replayed incident allows nothing: the past cannot be acted on.
    return { ...incident, milestones, phase, actions: [], order: phase === "reported" ? null : incident.order };
  });
}

export const isOpen = (incident) => !TERMINAL.includes(incident.phase);

// Who is on which open incident, for the officers' status and current order.
export function ordersByOfficer(incidents) {
  const orders = new Map();
  for (const incident of incidents) {
    if (!incident.order || !isOpen(incident)) continue;
    for (const officer of incident.order.officers) orders.set(officer, incident);
  }
  return orders;
}

export function officerStatus(officer, orders, t) {
  return statusOf(officer.officer, officer.heard_at, orders, t);
}

// Every shown device's status, in the store's column order: read from its columns, so a city
// of 10,000 officers costs no object per officer on each update.
export function officerStatuses(positions, orders, t) {
  const statuses = new Array(positions.size);
  for (let n = 0; n < positions.size; n++) statuses[n] = statusAt(positions, n, orders, t);
  return statuses;
}

// The status of the device at column n of the store.
export function statusAt(positions, n, orders, t) {
  return statusOf(positions.officers[n], positions.cols.heardAt[n], orders, t);
}

function statusOf(officer, heardAt, orders, t) {
  // By when the center last heard the device (its own clock), not the device's clock.
  if (t - heardAt > OFFLINE_AFTER_S) return "offline";
  const phase = orders.get(officer)?.phase;
  if (phase === "dispatched") return "ordered";
  if (phase === "en_route" || phase === "on_scene") return phase;
  return "available";
}

// The alerts shown: live ones, or in replay those raised by the replayed moment, with the
// acknowledgement only once it had happened.
export function shownAlerts(state) {
  if (!state.replay) return state.alerts;
  const t = state.replay.t;
  return (state.replay.alerts || []).filter((a) => a.raised_at <= t).map((a) =>
    a.acknowledged_at != null && a.acknowledged_at > t ? { ...a, acknowledged_by: null, acknowledged_at: null } : a,
  ).sort((a, b) => b.raised_at - a.raised_at);
}

// The name of the team an officer answers to (GET /api/roster, else the recommendations).
export function teamName(state, officer) {
  const team = state.teamOf.get(officer);
  return team ? state.teamNames.get(team) || team : t("none");
}
