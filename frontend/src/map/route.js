// The route of the selected incident's first officer to the scene (id "route").
//
//   routeLayer(route | null, visible) → PathLayer
import { PathLayer } from "@deck.gl/layers";

export function routeLayer(route, visible) {
  return new PathLayer({
    id: "route", data: route ? [route] : [], visible, getPath: (d) => d.path,
    getColor: [224, 49, 49], widthMinPixels: 4,
  });
}
