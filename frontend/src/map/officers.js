// The officers on the map: a dot per device coloured by status, an arrow for its heading and
// the trail behind it. Positions go to deck.gl as binary attributes straight from the
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
  for (let n = 0; n < length; n++) if (all || trailed(statuses[n])) followed.push(store.get(store.devices[n]));
  return [
    new PathLayer({
      id: "trails", data: followed.filter((o) => store.trail(o.dev).length > 1),
      getPath: (o) => store.trail(o.dev).map((p) => [p[0], p[1]]), getColor: [25, 113, 194, 90], widthMinPixels: 2,
    }),
    new TextLayer({
      // Heading: an arrow glyph turned to the last movement's bearing (north up, clockwise).
      id: "headings", data: followed.filter((o) => o.heading != null), getPosition: (o) => [o.lon, o.lat],
      getText: () => "▲", getSize: 11, getAngle: (o) => -o.heading, getColor: [33, 37, 41, 200], characterSet: ["▲"],
    }),
    new ScatterplotLayer({
      id: "officers", pickable: true, radiusUnits: "pixels", getRadius: 6, stroked: true,
      lineWidthMinPixels: 1, getLineColor: [255, 255, 255],
      data: { length, attributes: { getPosition: { value: positions, size: 2 }, getFillColor: { value: fill, size: 4 } } },
    }),
  ];
}
