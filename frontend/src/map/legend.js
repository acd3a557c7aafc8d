// The map's legend and layer switches, drawn over the map's corner; the colours it explains
// are the ones the layers use.
//
//   <Legend layers={visible by id} onToggle={(id) => …} />
import { html } from "../html.js";
import { name, t } from "../i18n.js";
import { CLOCK_COLOURS } from "./incidents.js";

export const STATUS_COLOURS = {
  available: [46, 160, 67], ordered: [245, 159, 0], en_route: [25, 113, 194],
  on_scene: [132, 94, 247], offline: [134, 142, 150],
};
export const TOGGLES = ["incidents", "officers", "trails", "areas", "labels", "route"];
const CLOCK_WORDS = { running: ["进行中", "running"], warning: ["预警", "warning"], breached: ["超时", "breached"] };

const swatch = (rgb) => html`<i class="swatch" style=${{ background: `rgb(${rgb.join(",")})` }}></i>`;

export function Legend({ layers, onToggle, lang }) {
  return html`<div class="legend" id="legend">
    <b>${t("legend")}</b>
    <div>${Object.keys(STATUS_COLOURS).map((s) => html`<span key=${s}>${swatch(STATUS_COLOURS[s])}${name("status", s)}</span>`)}</div>
    <div>${Object.entries(CLOCK_WORDS).map(([s, words]) => html`<span key=${s}><i class="ring" style=${{ borderColor: `rgb(${CLOCK_COLOURS[s].join(",")})` }}></i>${words[lang === "en" ? 1 : 0]}</span>`)}</div>
    <b>${t("layers")}</b>
    <div>${TOGGLES.map((id) => html`<label key=${id}><input type="checkbox" data-layer=${id} checked=${layers[id]} onChange=${() => onToggle(id)} />${t(`${id}_layer`)}</label>`)}</div>
  </div>`;
}
