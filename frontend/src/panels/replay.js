// Replay mode: a past window loaded from /api/replay and played on the map and in the panels,
// visibly apart from live (banner, no action), with a slider labelled in local time and a mark
// per incident reported in the window. Leaving returns to live: the feed never stopped.
//
//   <ReplayBar state onLoad={(from, to) → Promise} onLeave={() => …} />
//   stepReplay(replay, speed)   advance a playing replay by the time since the last step
import { useState } from "preact/hooks";
import { html } from "../html.js";
import { t, when, ZONE } from "../i18n.js";
import { liveNow } from "../situation.js";
import { readable } from "./detail.js";

const localInput = (epoch) => new Date(epoch * 1000).toLocaleString("sv-SE", { timeZone: ZONE }).replace(" ", "T").slice(0, 16);
const SPEEDS = [1, 10, 60];
const MARKS_MAX = 500;

export function stepReplay(replay) {
  const tick = performance.now();
  if (replay.playing) replay.t = Math.min(replay.to, replay.t + ((tick - replay.lastTick) / 1000) * replay.speed);
  replay.lastTick = tick;
}

export function ReplayBar({ state, onLoad, onLeave, onChange }) {
  const [open, setOpen] = useState(false);
  const [range, setRange] = useState({ from: "", to: "" });
  const [error, setError] = useState(null);
  const replay = state.replay;
  const toggle = () => {
    if (open) { setOpen(false); onLeave(); return; }
    const t0 = liveNow(state);
    setRange({ from: localInput(t0 - 1800), to: localInput(t0) });
    setOpen(true);
  };
  const load = () => onLoad(range.from, range.to).then(() => setError(null), (e) => setError(readable(e)));
  const span = replay ? replay.to - replay.from : 1;
  return html`<span class="replay-controls">
    <button id="replay-toggle" class=${replay ? "active" : ""} onClick=${toggle}>${open ? t("leave_replay") : t("replay")}</button>
    ${open ? html`<span id="replay-bar">
      <input type="datetime-local" id="replay-from" value=${range.from} onInput=${(e) => setRange({ ...range, from: e.target.value })} /> –
      <input type="datetime-local" id="replay-to" value=${range.to} onInput=${(e) => setRange({ ...range, to: e.target.value })} />
      <button id="replay-load" onClick=${load}>${t("load")}</button>
      ${error ? html`<small class="refused">${error}</small>` : null}
    </span>` : null}
    ${replay ? html`<div id="replay-banner" class="banner">
      <span id="replay-label">${t("replay_banner", { at: when(replay.t, liveNow(state)) })}</span>
      <span class="slider">
        <small>${when(replay.from, liveNow(state))}</small>
        <span class="track">
          <input type="range" id="replay-slider" min=${replay.from} max=${replay.to} step="1" value=${replay.t}
            onInput=${(e) => { replay.t = Number(e.target.value); onChange(); }} />
          ${replay.incidents.filter((i) => i.reported_at >= replay.from).slice(0, MARKS_MAX).map((i) => html`<i key=${i.id} class="mark" data-incident=${i.id}
            title=${`${i.title || i.id} ${when(i.reported_at, liveNow(state))}`} style=${{ left: `${(100 * (i.reported_at - replay.from)) / span}%` }}></i>`)}
        </span>
        <small>${when(replay.to, liveNow(state))}</small>
      </span>
      <button id="replay-play" onClick=${() => { replay.playing = !replay.playing; onChange(); }}>${replay.playing ? "❚❚" : "▶"}</button>
      <select id="replay-speed" value=${replay.speed} onChange=${(e) => { replay.speed = Number(e.target.value); }}>
        ${SPEEDS.map((s) => html`<option key=${s} value=${s}>${s}×</option>`)}</select>
      <button id="replay-leave" onClick=${() => { setOpen(false); onLeave(); }}>${t("leave_replay")}</button>
    </div>` : null}
  </span>`;
}
