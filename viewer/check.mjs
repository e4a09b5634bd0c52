// Check collection files with the viewer's JavaScript reader, without Python:
//   node viewer/check.mjs FILE|DIR...
// For each file: the records, and every record's SHA-256 recomputed and compared with the stored
// one; a file the reader refuses is reported with the clause it breaks. For a directory, the
// shards its manifest.json lists (the manifest's own hashes are not checked here: use
// `neural-format verify`). Exit status: 0 all read and verified, 2 a file refused or a digest
// mismatch (NF-I001). This is the viewer's reader, not a validator: it checks what the viewer
// refuses (spec sections 2-4 structure, NF-H006 sizes) and the digests, not record content.
import fs from "node:fs";
import path from "node:path";
import * as h5wasm from "h5wasm";
import { openCollection, RefusedFile, verifyRecord } from "./src/reader.js";

function filesOf(target) {
  if (!fs.statSync(target).isDirectory()) return [target];
  const manifest = path.join(target, "manifest.json");
  if (!fs.existsSync(manifest)) throw new RefusedFile("NF-C001", "collection directory has no manifest", manifest);
  let shards;
  try {
    shards = JSON.parse(fs.readFileSync(manifest, "utf8")).shards.map((s) => s.path);
  } catch (err) {
    throw new RefusedFile("NF-C001", `manifest unreadable (${err.message})`, manifest);
  }
  const root = path.resolve(target);
  return shards.map((p) => {
    const full = path.resolve(root, p);
    if (!full.startsWith(root + path.sep) || !fs.existsSync(full)) throw new RefusedFile("NF-C002", "shard path leaves the collection or is missing", p);
    return full;
  });
}

async function check(file) {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const name = "/check.h5";
  h5wasm.FS.writeFile(name, bytes);
  let collection = null;
  try {
    collection = openCollection(h5wasm, name, { fileSize: bytes.length, readAt: (at, n) => bytes.subarray(at, at + n) });
    let mismatched = 0;
    for (let i = 0; i < collection.n; i++) {
      const rec = collection.record(i);
      const v = await verifyRecord(rec);
      if (!v.ok) {
        mismatched += 1;
        console.log(`${file}: NF-I001 record ${i} (${JSON.stringify(rec.id)}): computed ${v.computed}, stored ${v.stored}`);
      }
    }
    for (const w of collection.warnings) console.log(`${file}: warning: ${w}`);
    console.log(`${file}: ${collection.n} records, ${collection.n - mismatched} digests verified, ${mismatched} mismatched`);
    return mismatched ? 2 : 0;
  } finally {
    if (collection) collection.close();
    h5wasm.FS.unlink(name);
  }
}

const targets = process.argv.slice(2);
if (!targets.length) {
  console.error("usage: node viewer/check.mjs FILE|DIR...");
  process.exit(64);
}
await h5wasm.ready;
let status = 0;
for (const target of targets) {
  try {
    for (const file of filesOf(target)) status = Math.max(status, await check(file));
  } catch (err) {
    if (!(err instanceof RefusedFile)) throw err;
    console.log(`${target}: refused: ${err.message}`);
    status = 2;
  }
}
process.exit(status);
