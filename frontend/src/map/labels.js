// Text on the map: area names always; officers' callsigns and incidents' titles only at street
// zoom (ZOOM_LABELS and closer), where they no longer cover each other (ids "area-labels",
// "officer-labels", "incident-labels").
//
//   labelLayers(city, {officers: [{officer, lon, lat}], incidents, zoom, visible})
import { TextLayer } from "@deck.gl/layers";

export const ZOOM_LABELS = 15;
const FONT = "Noto Sans CJK SC, sans-serif";
// Beyond this many officers in view the callsigns are left out: the text atlas would dominate.
export const CALLSIGNS_MAX = 2000;

export function labelLayers(city, { officers, incidents, zoom, visible }) {
  const street = visible && zoom >= ZOOM_LABELS;
  return [
    new TextLayer({
      id: "area-labels", data: city.labels, visible, getPosition: (d) => d.position, getText: (d) => d.name,
      getSize: 13, getColor: [70, 80, 90], characterSet: "auto", fontFamily: FONT,
    }),
    new TextLayer({
      id: "officer-labels", data: street && officers.length <= CALLSIGNS_MAX ? officers : [], getPosition: (o) => [o.lon, o.lat],
      getText: (o) => o.officer, getSize: 11, getPixelOffset: [0, -14], getColor: [33, 37, 41],
      background: true, getBackgroundColor: [255, 255, 255, 200], characterSet: "auto", fontFamily: FONT,
    }),
    new TextLayer({
      id: "incident-labels", data: street ? incidents : [], getPosition: (i) => i.location,
      getText: (i) => i.title || i.id, getSize: 12, getPixelOffset: [0, 22], getColor: [224, 49, 49],
      background: true, getBackgroundColor: [255, 255, 255, 220], characterSet: "auto", fontFamily: FONT,
    }),
  ];
}
