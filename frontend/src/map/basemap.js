// The offline basemap's style: the city's areas and streets from the PMTiles archive the
// server builds, drawn by MapLibre under the live layers.
//
//   baseStyle(origin) → a MapLibre style object
//   LOCAL_IDEOGRAPHS   the local font MapLibre draws CJK text with (Map option localIdeographFontFamily)

export const LOCAL_IDEOGRAPHS = "Noto Sans CJK SC, sans-serif";

export function baseStyle(origin) {
  const source = `pmtiles://${origin}/tiles/basemap.pmtiles`;
  return {
    version: 8,
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
    ],
  };
}
