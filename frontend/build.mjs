// Bundles the pages into dist/ from node_modules only: nothing is fetched at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/command.js", "src/officer.js", "src/login.js", "src/supervision.js", "src/report.js"],
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  target: "es2022",
  outdir: "dist",
  logLevel: "warning",
});
// maplibre-gl 6 loads its worker from a file beside the bundle.
copyFileSync("node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs", "dist/maplibre-gl-worker.mjs");
copyFileSync("node_modules/maplibre-gl/dist/maplibre-gl.css", "dist/maplibre-gl.css");
for (const name of readdirSync("static")) copyFileSync(`static/${name}`, `dist/${name}`);
// A CDN address in the bundle would break a command center without internet.
for (const name of readdirSync("dist").filter((n) => n.endsWith(".js"))) {
  const text = readFileSync(`dist/${name}`, "utf8");
  for (const host of ["unpkg.com/", "cdn.jsdelivr", "api.mapbox.com", "cartocdn"]) {
    if (text.includes(host) && !text.includes("@loaders.gl/${")) {
      throw new Error(`dist/${name} refers to ${host}`);
    }
  }
}
