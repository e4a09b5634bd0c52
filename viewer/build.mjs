// Builds bundle/worker.js: the Web Worker (src/worker.js + src/reader.js + h5wasm) as one classic
// script that defines `function nfViewerWorker() {...}`. The page starts the worker from that
// function's source text through a Blob URL, which works both when the page is served over HTTP
// and when it is opened from disk (file://), where browsers refuse to load worker scripts.
// Users never run this: the built bundle is committed. Run `npm run build` after changing src/;
// `node build.mjs --check` fails when the committed bundle is not what src/ builds to.
import { build } from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const h5wasmVersion = JSON.parse(fs.readFileSync(path.join(here, "node_modules/h5wasm/package.json"))).version;
const result = await build({
  entryPoints: [path.join(here, "src/worker.js")],
  bundle: true,
  minify: true,
  format: "iife",
  charset: "utf8", // h5wasm embeds its WebAssembly as a binary string: escaping it would add 1.3 MB
  target: ["chrome120", "firefox120"],
  legalComments: "none",
  logLevel: "error",
  write: false,
});
const code = result.outputFiles[0].text;
const banner = `/* neural-format viewer worker: built by viewer/build.mjs from viewer/src/ and h5wasm ${h5wasmVersion} ` +
  "(https://github.com/usnistgov/h5wasm, HDF5 compiled to WebAssembly). Do not edit. */\n";
const bundle = `${banner}function nfViewerWorker() {\n${code}}\n`;
const target = path.join(here, "bundle/worker.js");
if (process.argv.includes("--check")) {
  const committed = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
  if (committed !== bundle) {
    console.error("bundle/worker.js is out of date with src/: run `npm run build` and commit it");
    process.exit(1);
  }
  console.log("bundle/worker.js is up to date");
} else {
  fs.mkdirSync(path.join(here, "bundle"), { recursive: true });
  fs.writeFileSync(target, bundle);
  console.log(`bundle/worker.js: ${(Buffer.byteLength(bundle) / 2 ** 20).toFixed(2)} MiB`);
}
