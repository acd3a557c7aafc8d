// The supervision page (数据驾驶舱): the month's 1/3/15 figures for the signed-in account's
// scope — tiles, a map of areas shaded by on-time share, hours, causes, ranked teams and
// officers — and a drill-down from an area to its late incidents and to one incident's audit.
import * as echarts from "echarts/core";
import { BarChart, MapChart, PieChart } from "echarts/charts";
import { GridComponent, TooltipComponent, VisualMapComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { esc } from "./escape.js";
import { api, me, showAccount } from "./session.js";

echarts.use([BarChart, MapChart, PieChart, GridComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);

const $ = (id) => document.getElementById(id);
const state = { errors: [], summary: null, loaded: 0, charts: {} };
window.__yiwang = state;
window.addEventListener("error", (e) => state.errors.push(String(e.message)));

const MILESTONES = { respond: "响应 respond", turn_out: "出勤 turn-out", handle: "处置 handle" };
const CAUSES = {
  no_acknowledgement: "无人受理", no_candidate: "无可派警力", not_accepted: "未及时接单",
  rejected: "警员拒单", officer_offline: "警员离线", long_travel: "路途过远", late_handling: "处置超时",
  unknown: "其他",
};
const percent = (share) => (share == null ? "–" : `${(share * 100).toFixed(1)}%`);
const charts = state.charts; // exposed for tests, which click on the map

function monthRange() {
  const [year, month] = $("month").value.split("-").map(Number);
  const pad = (n) => String(n).padStart(2, "0");
  const next = month === 12 ? [year + 1, 1] : [year, month + 1];
  return { since: `${year}-${pad(month)}-01T00:00:00`, until: `${next[0]}-${pad(next[1])}-01T00:00:00` };
}

const query = (extra = {}) => new URLSearchParams({ ...monthRange(), ...extra }).toString();

function tiles(summary) {
  const cells = [["事件 Incidents", summary.incidents, "incidents"], ["超时 Breaches", summary.breaches, "breaches"]];
  for (const [m, label] of Object.entries(MILESTONES)) {
    cells.push([`${label} 按时率`, percent(summary.milestones[m].on_time_share), m]);
  }
  $("kpis").innerHTML = cells.map(([label, value, key]) =>
    `<div class="kpi" data-kpi="${esc(key)}"><small>${esc(label)}</small><b>${esc(value)}</b></div>`).join("");
}

function table(id, rows, names = {}) {
  const ranked = [...rows].sort((a, b) => (b.milestones.handle.on_time_share ?? -1) - (a.milestones.handle.on_time_share ?? -1));
  $(id).innerHTML = "<tr><th>名称</th><th>事件</th><th>响应</th><th>出勤</th><th>处置</th><th>超时</th></tr>" +
    ranked.map((r) => `<tr data-key="${esc(r.key)}"><td>${esc(names[r.key] || r.key || "–")}</td><td>${esc(r.incidents)}</td>` +
      Object.keys(MILESTONES).map((m) => `<td>${percent(r.milestones[m].on_time_share)}</td>`).join("") +
      `<td>${esc(r.breaches)}</td></tr>`).join("");
}

function chart(id) {
  charts[id] = charts[id] || echarts.init($(id));
  return charts[id];
}

async function drill(area, name) {
  // The late ones first: they are what a supervisor asks about; else every incident there.
  const late = await api(`/api/incidents?${query({ open_only: "false", area, breached: "handle", limit: "50" })}`);
  const all = late.length ? late : await api(`/api/incidents?${query({ open_only: "false", area, limit: "50" })}`);
  $("drill-title").textContent = `${name}: ${late.length ? "处置超时事件 late incidents" : "事件 incidents"}`;
  $("drill").innerHTML = all.map((i) =>
    `<li data-incident="${esc(i.id)}"><a href="#">${esc(i.id)}</a> ${esc(i.title || i.category)} · ${esc(i.phase)}</li>`).join("") ||
    "<li class='hint'>无 none</li>";
  $("audit").innerHTML = "";
}

async function showAudit(incident) {
  const records = await api(`/api/incidents/${encodeURIComponent(incident)}/audit`);
  $("audit").innerHTML = records.map((r) =>
    `<li data-kind="${esc(r.kind)}">${esc(new Date(Number(r.at) * 1000).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }))} · ${esc(r.kind)} ${esc(r.event || "")}</li>`).join("");
  $("audit").dataset.incident = incident;
}

async function load() {
  const [summary, areas, hours, teams, officers] = await Promise.all([
    api(`/api/stats/summary?${query()}`),
    api(`/api/stats/breakdown?${query({ by: "area" })}`),
    api(`/api/stats/breakdown?${query({ by: "hour" })}`),
    api(`/api/stats/breakdown?${query({ by: "team" })}`),
    api(`/api/stats/breakdown?${query({ by: "officer" })}`),
  ]);
  state.summary = summary;
  tiles(summary);
  const names = Object.fromEntries(state.city.areas.features.map((f) => [f.properties.id, f.properties.name]));
  chart("map").setOption({
    tooltip: { formatter: (p) => `${esc(names[p.name] || p.name)}: ${Number.isFinite(p.value) ? percent(p.value) : "–"}` },
    visualMap: { min: 0, max: 1, left: "left", bottom: 0, calculable: true, inRange: { color: ["#c0392b", "#f1c40f", "#27ae60"] } },
    series: [{ type: "map", map: "city", nameProperty: "id", roam: true,
      emphasis: { label: { formatter: (p) => names[p.name] || p.name } },
      data: areas.map((a) => ({ name: a.key, value: a.milestones.handle.on_time_share })) }],
  }, true);
  const hourly = Array.from({ length: 24 }, (_, h) => hours.find((r) => Number(r.key) === h));
  chart("hours").setOption({
    tooltip: {}, xAxis: { type: "category", data: hourly.map((_, h) => `${h}时`) }, yAxis: { type: "value" },
    series: [{ type: "bar", name: "事件", data: hourly.map((r) => (r ? r.incidents : 0)) }],
  }, true);
  chart("causes").setOption({
    tooltip: {},
    series: [{ type: "pie", radius: "60%", data: Object.entries(summary.causes).filter(([, n]) => n > 0)
      .map(([cause, n]) => ({ name: CAUSES[cause] || cause, value: n })) }],
  }, true);
  table("teams", teams);
  table("officers", officers);
  state.loaded += 1;
}

async function start() {
  const now = new Date(Date.now() + 8 * 3600 * 1000);
  $("month").value = now.toISOString().slice(0, 7);
  showAccount($("account-slot"), await me());
  state.city = await api("/api/city");
  echarts.registerMap("city", state.city.areas);
  chart("map").on("click", (p) => drill(p.name, (state.city.areas.features.find((f) => f.properties.id === p.name) || {}).properties?.name || p.name));
  $("drill").addEventListener("click", (e) => {
    const item = e.target.closest("li[data-incident]");
    if (item) { e.preventDefault(); showAudit(item.dataset.incident).catch((err) => state.errors.push(String(err))); }
  });
  $("month").addEventListener("change", () => load().catch((err) => state.errors.push(String(err))));
  await load();
}

start().catch((error) => { state.errors.push(String(error)); $("kpis").textContent = `error: ${error.message}`; });
