// What the dispatcher points at on the map: a ring on the selected officer and a pin where a
// new incident will be reported (ids "selected-officer", "intake-point").
//
//   selectionLayers({officer: {lon, lat} | null, intake: [lon, lat] | null})
import { ScatterplotLayer } from "@deck.gl/layers";

export function selectionLayers({ officer, intake }) {
  return [
    new ScatterplotLayer({
      id: "selected-officer", data: officer ? [officer] : [], getPosition: (o) => [o.lon, o.lat],
      radiusUnits: "pixels", getRadius: 12, filled: false, stroked: true, lineWidthMinPixels: 3, getLineColor: [33, 37, 41],
    }),
    new ScatterplotLayer({
      id: "intake-point", data: intake ? [intake] : [], getPosition: (p) => p, radiusUnits: "pixels",
      getRadius: 9, getFillColor: [255, 255, 255], stroked: true, lineWidthMinPixels: 4, getLineColor: [132, 94, 247],
    }),
  ];
}
