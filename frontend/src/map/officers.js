// The officers on the map: a dot per device coloured by status, an arrow for its heading and
// the trail behind it. Dots and trails go to deck.gl as binary attributes straight from the
// PositionStore's columns; a pick's `index` is the device at that column.
//
//   officerLayers(store, {statuses, colours: {status → [r, g, b]}, trailed(status) → bool})
//     statuses: each device's status in the store's column order
//     → [trails, headings, officers] layers (ids "trails", "headings", "officers")
import { PathLayer, ScatterplotLayer, TextLayer } from "@deck.gl/layers";

// Beyond this many devices only those `trailed` get a trail and an arrow, so a big city still
// redraws within the second.
export const TRAILS_FOR_ALL_MAX = 1000;

export function officerLayers(store, { statuses, colours, trailed }) {
  const { length, positions } = store.columns();
  const fill = new Uint8Array(length * 4);
  for (let n = 0; n < length; n++) {
    const [r, g, b] = colours[statuses[n]];
    fill[4 * n] = r;
    fill[4 * n + 1] = g;
    fill[4 * n + 2] = b;
    fill[4 * n + 3] = 255;
  }
  const all = length <= TRAILS_FOR_ALL_MAX;
  const followed = [];
  for (let n = 0; n < length; n++) if (all || trailed(statuses[n])) followed.push(n);
  const { heading, lon, lat } = store.cols;
  return [
    trailsLayer(store, followed),
    new TextLayer({
      // Heading: an arrow glyph turned to the last movement's bearing (north up, clockwise).
      id: "headings", data: followed.filter((n) => !Number.isNaN(heading[n])), getPosition: (n) => [lon[n], lat[n]],
      getText: () => "▲", getSize: 11, getAngle: (n) => -heading[n], getColor: [33, 37, 41, 200], characterSet: ["▲"],
    }),
    new ScatterplotLayer({
      id: "officers", pickable: true, radiusUnits: "pixels", getRadius: 6, stroked: true,
      lineWidthMinPixels: 1, getLineColor: [255, 255, 255],
      data: { length, attributes: { getPosition: { value: positions, size: 2 }, getFillColor: { value: fill, size: 4 } } },
    }),
  ];
}

// The followed devices' trails as one flat array of lon, lat with where each path starts.
function trailsLayer(store, followed) {
  const drawn = [];
  let points = 0;
  for (const n of followed) {
    const size = store.trailLength(n);
    if (size > 1) {
      drawn.push(n);
      points += size;
    }
  }
  const path = new Float32Array(points * 2);
  const startIndices = new Uint32Array(drawn.length);
  let at = 0;
  drawn.forEach((n, k) => {
    startIndices[k] = at;
    at += store.copyTrail(n, path, at);
  });
  return new PathLayer({
    id: "trails", _pathType: "open", positionFormat: "XY", getColor: [25, 113, 194, 90], widthMinPixels: 2,
    data: { length: drawn.length, startIndices, attributes: { getPath: { value: path, size: 2 } } },
  });
}
