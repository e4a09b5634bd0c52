// The JavaScript reader against the Python SDK's files: every valid conformance fixture, plus the
// files named in NF_VIEWER_TEST_FILES (the pytest driver writes demo-like collections there).
// Each record is read whole and its SHA-256, recomputed with WebCrypto, must equal the stored one.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as h5wasm from "h5wasm";
import { openCollection, RefusedFile, verifyRecord } from "../src/reader.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const conformance = path.resolve(here, "../../spec/conformance");
const validFixtures = fs.readdirSync(conformance).filter((n) => n.endsWith(".valid.h5")).sort()
  .map((n) => path.join(conformance, n));
const extra = (process.env.NF_VIEWER_TEST_FILES || "").split(path.delimiter).filter(Boolean);

export async function openInMemory(file) {
  await h5wasm.ready;
  const bytes = new Uint8Array(fs.readFileSync(file));
  const name = `/${path.basename(file)}`;
  h5wasm.FS.writeFile(name, bytes);
  try {
    const readAt = (at, count) => bytes.subarray(at, at + count);
    return { collection: openCollection(h5wasm, name, { fileSize: bytes.length, readAt }), name };
  } catch (err) {
    h5wasm.FS.unlink(name);
    throw err;
  }
}

test("there are valid conformance fixtures to read", () => {
  assert.ok(validFixtures.length >= 10, `found ${validFixtures.length} in ${conformance}`);
});

for (const file of [...validFixtures, ...extra]) {
  test(`reads ${path.basename(file)} and recomputes every record digest`, async () => {
    const { collection, name } = await openInMemory(file);
    try {
      const rows = collection.listing();
      assert.equal(rows.length, collection.n);
      for (const row of rows) {
        const rec = collection.record(row.index);
        assert.equal(rec.id, row.id);
        assert.equal(rec.patchScores.shape[0], row.patches);
        const { computed, stored, ok } = await verifyRecord(rec);
        assert.ok(ok, `${row.id}: computed ${computed}, stored ${stored}`);
      }
    } finally {
      collection.close();
      h5wasm.FS.unlink(name);
    }
  });
}

// The hostile-input corpus of tests/hostile/generate.py (written by the pytest driver into
// NF_VIEWER_HOSTILE_DIR with its expected.json): every file is read or refused with a coded
// RefusedFile, never a crash or a hang. Files the SDK's reader refuses are refused here too,
// except for NF-E001 (encoding attributes, which the viewer does not read); files the SDK reads
// are read here too, unless the viewer's walk of every link refuses them by NF-H006 (depth, links).
const hostileDir = process.env.NF_VIEWER_HOSTILE_DIR;
if (hostileDir) {
  const expected = JSON.parse(fs.readFileSync(path.join(hostileDir, "expected.json"), "utf8"));
  for (const [kind, { file, reader }] of Object.entries(expected)) {
    test(`hostile ${kind}: SDK reader ${reader}`, async () => {
      let outcome;
      let collection = null;
      let name = null;
      try {
        ({ collection, name } = await openInMemory(path.join(hostileDir, file)));
        collection.listing();
        for (let i = 0; i < collection.n; i++) await verifyRecord(collection.record(i));
        outcome = "ok";
      } catch (err) {
        assert.ok(err instanceof RefusedFile, `${kind}: not a coded refusal: ${err && err.stack}`);
        assert.match(err.code, /^NF-[A-Z]+\d*$/);
        outcome = err.code;
      } finally {
        if (collection) collection.close();
        if (name && collection) h5wasm.FS.unlink(name);
      }
      if (reader === "ok") assert.ok(outcome === "ok" || outcome === "NF-H006", `${kind}: refused with ${outcome}`);
      else if (reader !== "NF-E001") assert.notEqual(outcome, "ok", `${kind}: read, the SDK refuses it with ${reader}`);
    });
  }
}
