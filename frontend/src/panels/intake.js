// Intake (接警): a new incident from a call. The place is set by a click on the map, typed
// coordinates (WGS-84, or GCJ-02 as Amap-based hotline systems hand them over) or a place or
// street found by type-ahead; the server fills in area, team and address, refuses a point
// outside every area and answers a repeated ticket with the incident it already opened.
//
//   <Intake state categories onPick={(on) => …} onCreated={(id) => …} />
//   state.intake = {picking, point: [lon, lat] | null} is shared with the map.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html.js";
import { api } from "../session.js";
import { name, t } from "../i18n.js";
import { readable } from "./detail.js";

const SOURCES = ["12345", "8890", "citizen", "patrol", "iot"];
const SEARCH_DELAY_MS = 250;
const PLACES_MAX = 8;

function PlaceSearch({ onChoose }) {
  const [query, setQuery] = useState("");
  const [places, setPlaces] = useState([]);
  useEffect(() => {
    if (!query.trim()) { setPlaces([]); return undefined; }
    let current = true;
    const timer = setTimeout(() => {
      api(`/api/places?q=${encodeURIComponent(query.trim())}&limit=${PLACES_MAX}`)
        .then((list) => { if (current) setPlaces(list); }, (error) => { if (current) setPlaces(readable(error)); });
    }, SEARCH_DELAY_MS);
    return () => { current = false; clearTimeout(timer); };
  }, [query]);
  return html`<div class="places">
    <input id="intake-place" type="search" placeholder=${t("place_search")} value=${query} onInput=${(e) => setQuery(e.target.value)} />
    ${typeof places === "string" ? html`<p class="hint">${places}</p>` : html`<ul id="intake-places">${places.map((p) => html`
      <li key=${`${p.name}:${p.lon}:${p.lat}`} data-place=${p.name} onClick=${() => { onChoose(p); setQuery(p.name); setPlaces([]); }}>
        <b>${p.name}</b> <small>${p.area_name || ""} ${p.address || ""}</small></li>`)}</ul>`}
  </div>`;
}

export function Intake({ state, categories, onPick, onCreated }) {
  const [form, setForm] = useState({ source: "12345", category: "", priority: "", description: "", caller_name: "", caller_phone: "", ticket: "", crs: "wgs84", lon: "", lat: "", address: "" });
  const [answer, setAnswer] = useState(null);
  const [sending, setSending] = useState(false);
  const point = state.intake.point;
  // A point from the map or a place fills the typed coordinates (WGS-84).
  useEffect(() => {
    if (point) setForm((f) => ({ ...f, lon: point[0].toFixed(6), lat: point[1].toFixed(6), crs: "wgs84" }));
  }, [point?.[0], point?.[1]]);
  const set = (key) => (e) => setForm((f) => ({ ...f, [key]: e.target.value }));
  const category = categories.find((c) => c.key === form.category);
  const submit = async (e) => {
    e.preventDefault();
    const lon = Number(form.lon);
    const lat = Number(form.lat);
    if (form.lon === "" || form.lat === "" || !Number.isFinite(lon) || !Number.isFinite(lat)) { setAnswer({ ok: false, text: t("choose_location") }); return; }
    const body = { category: form.category, source: form.source, lon, lat, crs: form.crs, title: form.description.split("\n")[0].slice(0, 60) || name("category", form.category) };
    if (form.priority) body.priority = Number(form.priority);
    for (const key of ["description", "caller_name", "caller_phone", "ticket"]) if (form[key].trim()) body[key] = form[key].trim();
    setSending(true);
    try {
      const reply = await api("/api/incidents", body);
      setAnswer({ ok: true, duplicate: Boolean(reply.duplicate), id: reply.incident, text: t(reply.duplicate ? "duplicate" : "created", { id: reply.incident }) });
      onCreated(reply.incident);
    } catch (error) {
      setAnswer({ ok: false, text: `${t("refused")}：${readable(error)}` });
    } finally {
      setSending(false);
    }
  };
  // Folded by default: an open form would push the panels below it while the dispatcher works.
  return html`<details id="intake"><summary><h2>${t("intake")}</h2></summary>
    <form id="intake-form" onSubmit=${submit}>
      <label>${t("source")} <select id="intake-source" value=${form.source} onChange=${set("source")}>
        ${SOURCES.map((s) => html`<option key=${s} value=${s}>${name("source", s)}</option>`)}</select></label>
      <label>${t("category")} <select id="intake-category" required value=${form.category} onChange=${(e) => {
        const chosen = categories.find((c) => c.key === e.target.value);
        setForm((f) => ({ ...f, category: e.target.value, priority: chosen?.priority ? String(chosen.priority) : f.priority }));
      }}><option value="">—</option>${categories.map((c) => html`<option key=${c.key} value=${c.key}>${name("category", c.key)}</option>`)}</select></label>
      <label>${t("priority")} <select id="intake-priority" value=${form.priority} onChange=${set("priority")}>
        <option value="">${category?.priority ? `P${category.priority}` : "—"}</option>${[1, 2, 3, 4].map((p) => html`<option key=${p} value=${p}>P${p}</option>`)}</select></label>
      <label>${t("description")} <textarea id="intake-description" rows="2" maxlength="2000" value=${form.description} onInput=${set("description")}></textarea></label>
      <label>${t("caller_name")} <input id="intake-caller-name" maxlength="64" value=${form.caller_name} onInput=${set("caller_name")} /></label>
      <label>${t("caller_phone")} <input id="intake-caller-phone" type="tel" maxlength="32" value=${form.caller_phone} onInput=${set("caller_phone")} /></label>
      <label>${t("ticket")} <input id="intake-ticket" maxlength="64" value=${form.ticket} onInput=${set("ticket")} /></label>
      <fieldset><legend>${t("location")}</legend>
        <button type="button" id="intake-pick" class=${state.intake.picking ? "active" : ""} onClick=${() => onPick(!state.intake.picking)}>${t("pick_on_map")}</button>
        <${PlaceSearch} onChoose=${(p) => { onPick(false, [p.lon, p.lat]); setForm((f) => ({ ...f, address: p.address || p.name })); }} />
        <div class="coords">
          <input id="intake-lon" placeholder=${t("lon")} inputmode="decimal" value=${form.lon} onInput=${set("lon")} />
          <input id="intake-lat" placeholder=${t("lat")} inputmode="decimal" value=${form.lat} onInput=${set("lat")} />
          <select id="intake-crs" value=${form.crs} onChange=${set("crs")}>${["wgs84", "gcj02"].map((c) => html`<option key=${c} value=${c}>${name("crs", c)}</option>`)}</select>
        </div>
        ${form.address ? html`<small id="intake-address">${form.address}</small>` : null}
      </fieldset>
      <button type="submit" id="intake-submit" disabled=${sending || !form.category}>${t("submit_incident")}</button>
    </form>
    ${answer ? html`<p id="intake-answer" class=${answer.ok ? (answer.duplicate ? "duplicate" : "sent") : "refused"} data-incident=${answer.id || ""}>${answer.text}</p>` : null}
  </details>`;
}
