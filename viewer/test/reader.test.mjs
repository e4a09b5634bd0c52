// The JavaScript reader against the Python SDK's files: every valid conformance fixture, plus the
// files named in NF_VIEWER_TEST_FILES (the pytest driver writes demo-like collections there).
// Each record is read whole and its SHA-256, recomputed with WebCrypto, must equal the stored one.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as h5wasm from "h5wasm";
import { digestMessage, hex, openCollection, RefusedFile, verifyRecord } from "../src/reader.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const conformance = path.resolve(here, "../../spec/conformance");
const validFixtures = fs.readdirSync(conformance).filter((n) => n.endsWith(".valid.h5")).sort()
  .map((n) => path.join(conformance, n));
const extra = (process.env.NF_VIEWER_TEST_FILES || "").split(path.delimiter).filter(Boolean);
const spec = path.resolve(here, "../../spec");
const vectorsDir = path.join(spec, "test-vectors");
const vectors = fs.existsSync(vectorsDir) ? fs.readdirSync(vectorsDir).filter((n) => n.endsWith(".json")).sort() : [];
const goldenDir = path.join(spec, "golden");
const goldenVersions = fs.existsSync(goldenDir)
  ? fs.readdirSync(goldenDir).filter((n) => fs.existsSync(path.join(goldenDir, n, "expected.json"))).sort() : [];

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

// The clauses the viewer enforces (docs/viewer.md): their invalid fixtures are refused with the
// clause's own code (NF-I001: a record's digest differs), as spec/conformance/run finds with
// viewer/check.mjs as the command.
const ENFORCED = ["NF-F001", "NF-H001", "NF-H002", "NF-H003", "NF-H004", "NF-H005", "NF-H006", "NF-I001", "NF-O001",
  "NF-R001", "NF-R014", "NF-S001", "NF-S002", "NF-S003", "NF-V001", "NF-V003", "NF-V004"];
for (const clause of ENFORCED) {
  test(`refuses ${clause}.invalid.h5 with ${clause}`, async () => {
    let collection = null;
    let name = null;
    try {
      ({ collection, name } = await openInMemory(path.join(conformance, `${clause}.invalid.h5`)));
      const results = [];
      for (let i = 0; i < collection.n; i++) results.push(await verifyRecord(collection.record(i)));
      assert.equal(clause, "NF-I001", `${clause}: read without refusal`);
      assert.ok(results.some((r) => !r.ok), "NF-I001: every digest verified");
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(err instanceof RefusedFile, String(err && err.stack));
      assert.equal(err.code, clause, err.message);
    } finally {
      if (collection) {
        collection.close();
        h5wasm.FS.unlink(name);
      }
    }
  });
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

// Appendix B's worked examples (spec/test-vectors): the pre-image, byte for byte, and its SHA-256.
const hexBytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
const utf8 = new TextEncoder();
function vectorRecord(stored) {
  const array = (v) => (v === null ? null : { dtype: v.dtype, shape: v.shape, bytes: hexBytes(v.hex) });
  let entityTextBytes = null;
  if (stored.entity_text !== null && stored.entity_text_known !== 0) {  // 0: unknown (format 1.1.0)
    const encoded = stored.entity_text.map((t) => utf8.encode(t));
    const offsets = new Float64Array(encoded.length + 1);
    encoded.forEach((b, k) => { offsets[k + 1] = offsets[k] + b.length; });
    const bytes = new Uint8Array(offsets[encoded.length]);
    encoded.forEach((b, k) => bytes.set(b, offsets[k]));
    entityTextBytes = { bytes, offsets };
  }
  return {
    idBytes: utf8.encode(stored.record_id),
    patchFeatures: array(stored.patch_features), patchScores: array(stored.patch_scores),
    patchPositions: array(stored.patch_positions), patchEdges: array(stored.patch_edges), tiles: array(stored.tiles),
    entityTextBytes, entityTypes: array(stored.entity_types), entityAssertions: array(stored.entity_assertions),
    entityFeatures: array(stored.entity_features), relations: array(stored.relations), relationTypes: array(stored.relation_types),
    bridgeBytes: hexBytes(stored.bridge.hex), labels: array(stored.labels),
    imageSize: array(stored.image_size), patchSize: array(stored.patch_size), gridShape: array(stored.grid_shape),
    pixelSpacing: array(stored.pixel_spacing),
    reportSource: stored.report_source, reportBytes: utf8.encode(stored.report ?? ""),
    groupKeyBytes: utf8.encode(stored.group_key ?? ""),
  };
}

test("the spec's digest test vectors exist", () => {
  assert.ok(vectors.length >= 3, `found ${vectors.length} in ${vectorsDir}`);
});

for (const name of vectors) {
  test(`test vector ${name}: pre-image and SHA-256 as Appendix B gives them`, async () => {
    const vector = JSON.parse(fs.readFileSync(path.join(vectorsDir, name), "utf8"));
    const message = digestMessage(vectorRecord(vector.stored));
    assert.equal(hex(message), vector.preimage_hex);
    const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", message)));
    assert.equal(digest, vector.sha256);
  });
}

// The golden files of every released version (spec/golden): every digest equals the one the SDK
// of that version recorded in expected.json, and the one stored in the file.
for (const version of goldenVersions) {
  const expected = JSON.parse(fs.readFileSync(path.join(goldenDir, version, "expected.json"), "utf8"));
  const files = [["collection.h5", expected["collection.h5"].records]];
  const shardDir = path.join(goldenDir, version, "sharded");
  if (fs.existsSync(shardDir)) {
    for (const [n, shard] of Object.entries(expected.sharded.shards)) files.push([path.join("sharded", n), shard.records]);
  }
  for (const [file, records] of files) {
    test(`golden ${version}/${file}: digests equal the recorded ones`, async () => {
      const recorded = new Map(records.map((r) => [r.record_id, r.sha256]));
      const { collection, name } = await openInMemory(path.join(goldenDir, version, file));
      try {
        assert.equal(collection.n, records.length);
        for (let i = 0; i < collection.n; i++) {
          const rec = collection.record(i);
          const { computed, ok } = await verifyRecord(rec);
          assert.ok(ok, `${rec.id}: computed ${computed}`);
          assert.equal(computed, recorded.get(rec.id), rec.id);
        }
      } finally {
        collection.close();
        h5wasm.FS.unlink(name);
      }
    });
  }
}
