// The open incidents on the map: a ring and a dot coloured by the worst running clock, the
// selected one ringed larger (ids "incident-rings", "incidents"). Picking "incidents" gives
// the incident object.
//
//   incidentLayers(incidents, {stateOf(incident) → clock state, selected, visible, tick})
import { ScatterplotLayer } from "@deck.gl/layers";

export const CLOCK_COLOURS = { running: [25, 113, 194], warning: [245, 159, 0], breached: [224, 49, 49], done: [46, 160, 67] };

export function incidentLayers(incidents, { stateOf, selected, visible, tick }) {
  const colour = (i) => CLOCK_COLOURS[stateOf(i)];
  return [
    new ScatterplotLayer({
      id: "incident-rings", data: incidents, visible, getPosition: (i) => i.location, radiusUnits: "pixels",
      getRadius: (i) => (i.id === selected ? 20 : 14), filled: false, stroked: true,
      getLineWidth: (i) => (i.id === selected ? 3 : 4), lineWidthUnits: "pixels", getLineColor: colour,
      updateTriggers: { getLineColor: tick, getRadius: selected, getLineWidth: selected },
    }),
    new ScatterplotLayer({
      id: "incidents", data: incidents, visible, pickable: true, getPosition: (i) => i.location,
      radiusUnits: "pixels", getRadius: 8, getFillColor: colour, updateTriggers: { getFillColor: tick },
    }),
  ];
}
