// The JavaScript reader against the Python SDK's files: every valid conformance fixture, plus the
// files named in NF_VIEWER_TEST_FILES (the pytest driver writes demo-like collections there).
// Each record is read whole and its SHA-256, recomputed with WebCrypto, must equal the stored one.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as h5wasm from "h5wasm";
import { checkSignature, Collection, verifyRecord } from "../src/reader.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const conformance = path.resolve(here, "../../spec/conformance");
const validFixtures = fs.readdirSync(conformance).filter((n) => n.endsWith(".valid.h5")).sort()
  .map((n) => path.join(conformance, n));
const extra = (process.env.NF_VIEWER_TEST_FILES || "").split(path.delimiter).filter(Boolean);

export async function openInMemory(file) {
  await h5wasm.ready;
  const bytes = new Uint8Array(fs.readFileSync(file));
  checkSignature(bytes.subarray(0, 9));
  const name = `/${path.basename(file)}`;
  h5wasm.FS.writeFile(name, bytes);
  return { collection: new Collection(h5wasm, name, { fileSize: bytes.length }), name };
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
