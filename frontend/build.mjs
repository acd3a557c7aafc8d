// Bundles the pages into dist/ from node_modules only: nothing is fetched at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

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

// The attention sounds, synthesised here so no recording ships in the repository: a PCM WAV
// of short tones, each [frequency Hz, seconds], with a soft attack and release so it does not click.
function tones(steps, rate = 16000) {
  const samples = steps.flatMap(([hz, seconds]) => Array.from({ length: Math.round(seconds * rate) }, (_, n) => {
    const edge = Math.min(1, n / (0.01 * rate), (seconds * rate - n) / (0.01 * rate));
    return hz ? Math.round(0.6 * 32767 * edge * Math.sin((2 * Math.PI * hz * n) / rate)) : 0;
  }));
  const wav = Buffer.alloc(44 + 2 * samples.length);
  wav.write("RIFF", 0);
  wav.writeUInt32LE(36 + 2 * samples.length, 4);
  wav.write("WAVEfmt ", 8);
  wav.writeUInt32LE(16, 16); // PCM header size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(2 * rate, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write("data", 36);
  wav.writeUInt32LE(2 * samples.length, 40);
  samples.forEach((value, n) => wav.writeInt16LE(value, 44 + 2 * n));
  return wav;
}
// Warnings, breaches and new incidents: two falling tones, repeated. A new order: a rising pair.
writeFileSync("dist/alert.wav", tones([[988, 0.18], [0, 0.06], [784, 0.18], [0, 0.12], [988, 0.18], [0, 0.06], [784, 0.18]]));
writeFileSync("dist/order.wav", tones([[660, 0.15], [0, 0.05], [880, 0.25]]));
// A CDN address in the bundle would break a command center without internet.
for (const name of readdirSync("dist").filter((n) => n.endsWith(".js"))) {
  const text = readFileSync(`dist/${name}`, "utf8");
  for (const host of ["unpkg.com/", "cdn.jsdelivr", "api.mapbox.com", "cartocdn"]) {
    if (text.includes(host) && !text.includes("@loaders.gl/${")) {
      throw new Error(`dist/${name} refers to ${host}`);
    }
  }
}
