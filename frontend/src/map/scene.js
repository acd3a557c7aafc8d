// The live map: MapLibre over the offline basemap with zoom, compass and scale controls, the
// deck.gl layers on top, hover tooltips, click-to-select and flying to a selection that is off
// screen. What is drawn comes from the store's state; `redraw()` rebuilds the layer list.
//
//   const scene = new Scene(container, state, {onSelect({incident} | {officer}), onPoint([lon, lat])})
//   scene.redraw()          the layers for the state now
//   scene.show([lon, lat])  fly there unless it is already on screen
//   scene.pickAt(x, y)      {incident} | {officer: dev} | null at a pixel of the map
import { Map as MapLibre, NavigationControl, ScaleControl, addProtocol, setWorkerUrl } from "maplibre-gl";
import { MapboxOverlay } from "@deck.gl/mapbox";
import { Protocol } from "pmtiles";
import { LOCAL_IDEOGRAPHS, baseStyle } from "./basemap.js";
import { officerLayers } from "./officers.js";
import { areasLayer } from "./areas.js";
import { incidentLayers } from "./incidents.js";
import { routeLayer } from "./route.js";
import { CALLSIGNS_MAX, ZOOM_LABELS, labelLayers } from "./labels.js";
import { selectionLayers } from "./selection.js";
import { STATUS_COLOURS } from "./legend.js";
import { clocks, countdown, policyFor, worst } from "../clock.js";
import { ago, name, t } from "../i18n.js";
import { currentIncidents, isOpen, now, officerStatus, officerStatuses, ordersByOfficer, shownPositions, teamName } from "../situation.js";

const FLY_ZOOM = 15;

export class Scene {
  constructor(container, state, { onSelect, onPoint }) {
    this.state = state;
    this.onSelect = onSelect;
    this.onPoint = onPoint;
    addProtocol("pmtiles", new Protocol().tile);
    setWorkerUrl(new URL("/static/maplibre-gl-worker.mjs", location.href).href);
    const map = new MapLibre({
      container, style: baseStyle(location.origin), localIdeographFontFamily: LOCAL_IDEOGRAPHS,
      bounds: state.city.bounds, fitBoundsOptions: { padding: 20 }, attributionControl: false,
    });
    map.addControl(new NavigationControl({ visualizePitch: true }), "top-left");
    map.addControl(new ScaleControl({ unit: "metric" }), "bottom-left");
    this.overlay = new MapboxOverlay({ interleaved: false, layers: [], onAfterRender: () => this.drawn() });
    map.addControl(this.overlay);
    map.on("load", () => { state.mapLoaded = true; });
    map.on("zoomend", () => this.redraw());
    map.on("click", (e) => this.clicked(e));
    map.on("mousemove", (e) => this.hovered(e));
    map.on("mouseout", () => this.hideTooltip());
    this.map = map;
    this.tooltip = document.createElement("div");
    this.tooltip.id = "tooltip";
    this.tooltip.hidden = true;
    container.appendChild(this.tooltip);
  }

  // An update's sequence is reported drawn once deck.gl has rendered it (bench screen).
  drawn() {
    const state = this.state;
    if (state.drawnSeq && state.drawnSeq !== state.reportedSeq) {
      state.renders.push([state.drawnSeq, Date.now()]);
      if (state.renders.length > 2000) state.renders.splice(0, 1000);
      state.reportedSeq = state.drawnSeq;
    }
  }

  redraw() {
    const state = this.state;
    const started = performance.now();
    state.drawnSeq = state.lastPositionsSeq;
    this.overlay.setProps({ layers: this.layers() });
    state.layersMs = performance.now() - started;
    performance.measure("yiwang:layers", { start: started, detail: state.drawnSeq });
  }

  layers() {
    const state = this.state;
    const t0 = now(state);
    const positions = shownPositions(state);
    state.officerOrder = positions.devices;
    const incidents = currentIncidents(state);
    const orders = ordersByOfficer(incidents);
    const open = incidents.filter(isOpen);
    const visible = state.layers;
    const [trails, headings, officers] = officerLayers(positions, {
      statuses: officerStatuses(positions, orders, t0), colours: STATUS_COLOURS,
      trailed: (status) => status !== "available",
    });
    const zoom = this.map.getZoom();
    const selectedOfficer = state.selectedOfficer ? positions.get(state.selectedOfficer) : null;
    return [
      areasLayer(state.city, open, visible.areas),
      routeLayer(state.replay ? null : state.route, visible.route),
      trails.clone({ visible: visible.trails && visible.officers }),
      headings.clone({ visible: visible.officers }),
      officers.clone({ visible: visible.officers }),
      ...incidentLayers(open, {
        stateOf: (i) => worst(clocks(i, policyFor(state.policies, i), t0)),
        selected: state.selected, visible: visible.incidents, tick: Math.floor(t0),
      }),
      ...labelLayers(state.city, {
        officers: zoom >= ZOOM_LABELS && visible.officers ? this.inView(positions, CALLSIGNS_MAX + 1) : [],
        incidents: open, zoom, visible: visible.labels,
      }),
      ...selectionLayers({ officer: selectedOfficer, intake: state.intake.point }),
    ];
  }

  // Up to `most` of the shown officers inside the map's view (street zoom shows a few streets).
  inView(positions, most) {
    const bounds = this.map.getBounds();
    const [west, east, south, north] = [bounds.getWest(), bounds.getEast(), bounds.getSouth(), bounds.getNorth()];
    const { lon, lat } = positions.cols;
    const shown = [];
    for (let n = 0; n < positions.size && shown.length < most; n++) {
      if (lon[n] >= west && lon[n] <= east && lat[n] >= south && lat[n] <= north) shown.push(positions.get(positions.devices[n]));
    }
    return shown;
  }

  pickAt(x, y) {
    const info = this.overlay.pickObject({ x, y, radius: 4, layerIds: ["incidents", "officers"] });
    if (!info) return null;
    if (info.layer.id === "incidents") return { incident: info.object.id };
    return { officer: this.state.officerOrder[info.index] };
  }

  clicked(e) {
    if (this.state.intake.picking) {
      this.onPoint([e.lngLat.lng, e.lngLat.lat]);
      return;
    }
    const picked = this.pickAt(e.point.x, e.point.y);
    if (picked) this.onSelect(picked);
  }

  hovered(e) {
    this.hover = e.point;
    if (this.hoverFrame) return;
    this.hoverFrame = requestAnimationFrame(() => {
      this.hoverFrame = null;
      const picked = this.pickAt(this.hover.x, this.hover.y);
      const lines = picked ? this.describe(picked) : null;
      this.map.getCanvas().style.cursor = picked ? "pointer" : this.state.intake.picking ? "crosshair" : "";
      if (!lines) return this.hideTooltip();
      this.tooltip.replaceChildren(...lines.map((line, n) => {
        const row = document.createElement(n ? "div" : "b");
        row.textContent = line; // text only: names and titles come from reports and devices
        return row;
      }));
      Object.assign(this.tooltip.style, { left: `${this.hover.x + 12}px`, top: `${this.hover.y + 12}px` });
      this.tooltip.hidden = false;
      this.tooltip.dataset.kind = picked.incident ? "incident" : "officer";
    });
  }

  hideTooltip() {
    this.tooltip.hidden = true;
  }

  // The tooltip's lines for a picked officer or incident.
  describe(picked) {
    const state = this.state;
    const t0 = now(state);
    if (picked.incident) {
      const incident = currentIncidents(state).find((i) => i.id === picked.incident);
      if (!incident) return null;
      const running = clocks(incident, policyFor(state.policies, incident), t0).filter((c) => c.due != null && !c.reached);
      return [incident.title || name("category", incident.category), `${name("category", incident.category)} · ${name("phase", incident.phase)}`,
        ...running.map((c) => `${name("milestone", c.milestone)} ${countdown(c.left)}`)];
    }
    const positions = shownPositions(state);
    const officer = positions.get(picked.officer);
    if (!officer) return null;
    const unit = state.units.get(picked.officer);
    const status = officerStatus(officer, ordersByOfficer(currentIncidents(state)), t0);
    const speed = unit?.fix?.vel_kmh;
    const battery = unit?.fix?.batt_pct;
    return [officer.officer, `${t("team")} ${teamName(state, officer.officer)} · ${name("status", status)}`,
      `${t("speed")} ${speed == null ? t("none") : `${Math.round(speed)} km/h`} · ${t("battery")} ${battery == null ? t("none") : `${battery}%`}`,
      `${t("fix_age")} ${ago(t0 - officer.fix_at)}`];
  }

  // Fly to a place unless it is already in view; counted for tests (state.flights).
  show(lonLat) {
    if (!lonLat || this.map.getBounds().contains(lonLat)) return;
    this.state.flights += 1;
    this.map.flyTo({ center: lonLat, zoom: Math.max(this.map.getZoom(), FLY_ZOOM), duration: 800 });
  }
}
