// The offline basemap's style: the city's areas, streets and named places from the PMTiles
// archive the server builds, drawn by MapLibre under the live layers, with street and place
// names. Latin letters and digits come as distance-field glyphs from the server's own
// /glyphs route; Chinese is drawn by the browser from its local CJK font.
//
//   baseStyle(origin) → a MapLibre style object
//   LOCAL_IDEOGRAPHS   the local font MapLibre draws CJK text with (Map option localIdeographFontFamily)
//   LABEL_FONT         the font stack the labels ask the glyph route for
//   STREET_NAMES, PLACE_NAMES   the label layers' ids, for toggling them (map.setLayoutProperty)

export const LOCAL_IDEOGRAPHS = "Noto Sans CJK SC, sans-serif";
// Also a CSS family: MapLibre draws this stack's Chinese locally in the family the stack names.
export const LABEL_FONT = "Noto Sans CJK SC";
export const STREET_NAMES = "street-names";
export const PLACE_NAMES = "place-names";

const HALO = { "text-color": "#3d4238", "text-halo-color": "#ffffff", "text-halo-width": 1.5 };

export function baseStyle(origin) {
  const source = `pmtiles://${origin}/tiles/basemap.pmtiles`;
  return {
    version: 8,
    glyphs: `${origin}/glyphs/{fontstack}/{range}.pbf`,
    sources: { city: { type: "vector", url: source } },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#eef0ea" } },
      { id: "areas", type: "fill", source: "city", "source-layer": "areas", paint: { "fill-color": "#f8f9f4" } },
      { id: "streets-minor", type: "line", source: "city", "source-layer": "streets",
        filter: ["!=", ["get", "highway"], "primary"], paint: { "line-color": "#d0d4cc", "line-width": 1 } },
      { id: "streets-major", type: "line", source: "city", "source-layer": "streets",
        filter: ["==", ["get", "highway"], "primary"], paint: { "line-color": "#f1c27d", "line-width": 2.5 } },
      { id: "area-borders", type: "line", source: "city", "source-layer": "areas",
        paint: { "line-color": "#7a8a9a", "line-width": 1.2, "line-dasharray": [3, 2] } },
      // Along the street at street zoom; a name repeats only every 400 px of its line.
      { id: STREET_NAMES, type: "symbol", source: "city", "source-layer": "streets", minzoom: 14,
        filter: ["has", "name"],
        layout: { "symbol-placement": "line", "symbol-spacing": 400, "text-field": ["get", "name"],
          "text-font": [LABEL_FONT], "text-size": ["interpolate", ["linear"], ["zoom"], 14, 11, 17, 14],
          "text-max-angle": 30 },
        paint: HALO },
      { id: PLACE_NAMES, type: "symbol", source: "city", "source-layer": "places", minzoom: 13,
        layout: { "text-field": ["get", "name"], "text-font": [LABEL_FONT], "text-size": 12,
          "text-max-width": 8 },
        paint: { ...HALO, "text-color": "#5a4a8a" } },
    ],
  };
}
