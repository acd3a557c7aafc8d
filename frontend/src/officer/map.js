// The order's small map: the officer's own position, the incident and the street route between
// them, on the same offline basemap as the command page (no tile leaves the center).
//
//   <MapCard order=… bounds=… />   order: an entry of GET /api/orders/mine, or null
import { useEffect, useRef } from "preact/hooks";
import { Map as MapLibre, addProtocol, setWorkerUrl } from "maplibre-gl";
import { Protocol } from "pmtiles";
import { LOCAL_IDEOGRAPHS, baseStyle } from "../map/basemap.js";
import { html } from "./html.js";

const EMPTY = { type: "FeatureCollection", features: [] };
const point = (kind, coordinates) => ({ type: "Feature", properties: { kind }, geometry: { type: "Point", coordinates } });

function features(order) {
  if (!order) return EMPTY;
  const list = [point("incident", order.location)];
  if (order.route) list.push({ type: "Feature", properties: { kind: "route" }, geometry: { type: "LineString", coordinates: order.route } });
  if (order.me) list.push(point("me", [order.me.lon, order.me.lat]));
  return { type: "FeatureCollection", features: list };
}

const LAYERS = [
  { id: "route", type: "line", filter: ["==", ["get", "kind"], "route"],
    paint: { "line-color": "#1a73e8", "line-width": 5, "line-opacity": 0.8 }, layout: { "line-cap": "round", "line-join": "round" } },
  { id: "incident", type: "circle", filter: ["==", ["get", "kind"], "incident"],
    paint: { "circle-radius": 10, "circle-color": "#d93025", "circle-stroke-color": "#fff", "circle-stroke-width": 3 } },
  { id: "me", type: "circle", filter: ["==", ["get", "kind"], "me"],
    paint: { "circle-radius": 8, "circle-color": "#1a73e8", "circle-stroke-color": "#fff", "circle-stroke-width": 3 } },
];

let protocolAdded = false;

function createMap(container, bounds, ready) {
  if (!protocolAdded) {
    addProtocol("pmtiles", new Protocol().tile);
    setWorkerUrl(new URL("/static/maplibre-gl-worker.mjs", location.href).href);
    protocolAdded = true;
  }
  const map = new MapLibre({
    container, style: baseStyle(location.origin), localIdeographFontFamily: LOCAL_IDEOGRAPHS,
    bounds, fitBoundsOptions: { padding: 20 }, attributionControl: false, dragRotate: false,
  });
  map.touchZoomRotate.disableRotation();
  map.on("load", () => {
    map.addSource("order", { type: "geojson", data: EMPTY });
    for (const layer of LAYERS) map.addLayer({ ...layer, source: "order" });
    ready(map);
  });
  return map;
}

// Frames the incident and the officer once per order, so a pan by the officer is not undone
// by the next refresh.
function frame(map, order) {
  const points = [order.location, ...(order.route || []), ...(order.me ? [[order.me.lon, order.me.lat]] : [])];
  const lons = points.map((p) => p[0]), lats = points.map((p) => p[1]);
  const sw = [Math.min(...lons), Math.min(...lats)], ne = [Math.max(...lons), Math.max(...lats)];
  if (sw[0] === ne[0] && sw[1] === ne[1]) map.jumpTo({ center: sw, zoom: 15 });
  else map.fitBounds([sw, ne], { padding: 40, maxZoom: 16, duration: 0 });
}

export function MapCard({ order, bounds, onLoad }) {
  const container = useRef(null);
  const map = useRef(null);
  const loaded = useRef(false);
  const framed = useRef(null);
  const latest = useRef(order);
  latest.current = order;

  const draw = () => {
    const current = latest.current;
    if (!loaded.current) return;
    map.current.getSource("order").setData(features(current));
    if (current && framed.current !== current.order.id) {
      frame(map.current, current);
      framed.current = current.order.id;
    }
  };

  useEffect(() => {
    map.current = createMap(container.current, bounds, () => { loaded.current = true; draw(); onLoad(map.current); });
    return () => map.current.remove();
  }, []);
  useEffect(draw, [order]);

  return html`<section class="card map-card"><div id="map" ref=${container}></div>
    <p class="legend"><i class="dot me"></i>我的位置 <i class="dot incident"></i>事发地 <i class="line"></i>路线</p></section>`;
}
