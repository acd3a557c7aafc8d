// The areas layer: each area shaded by how many open incidents it holds (id "areas").
//
//   areasLayer(city, incidents, visible) → GeoJsonLayer
import { GeoJsonLayer } from "@deck.gl/layers";

function inRing(ring, [x, y]) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// The area holding a point (its id), or null; for incidents that do not carry their area.
export function areaOf(city, point) {
  for (const feature of city.areas.features) {
    const { type, coordinates } = feature.geometry;
    const polygons = type === "Polygon" ? [coordinates] : coordinates;
    for (const [outer, ...holes] of polygons) {
      if (inRing(outer, point) && !holes.some((h) => inRing(h, point))) return feature.properties.id;
    }
  }
  return null;
}

export function areasLayer(city, incidents, visible) {
  const busy = new Map();
  for (const incident of incidents) {
    const area = incident.area ?? areaOf(city, incident.location);
    if (area) busy.set(area, (busy.get(area) || 0) + 1);
  }
  return new GeoJsonLayer({
    id: "areas", data: city.areas, stroked: false, filled: true, visible,
    getFillColor: (f) => [224, 49, 49, Math.min(90, 25 * (busy.get(f.properties.id) || 0))],
    updateTriggers: { getFillColor: [...busy.entries()].join() },
  });
}
