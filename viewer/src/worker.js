// The viewer's Web Worker: all HDF5 parsing and hashing happens here, so a large or hostile file
// never blocks the page. Messages: {id, op: "open", file | url} and {id, op: "record", index};
// replies: {id, ok: true, result} or {id, ok: false, error: {code, message}}.
import * as h5wasm from "h5wasm";
import { openCollection, RefusedFile, verifyRecord } from "./reader.js";

let current = null;
let mounted = null;
let opened = 0;

function release() {
  if (current) current.close();
  current = null;
  if (mounted) {
    try {
      h5wasm.FS.unmount(mounted);
      h5wasm.FS.rmdir(mounted);
    } catch { /* nothing mounted */ }
    mounted = null;
  }
}

async function open({ file, url, name }) {
  await h5wasm.ready;
  release();
  let blob = file;
  if (url) {
    const response = await fetch(url);
    if (!response.ok) throw new RefusedFile("NF-VIEW", `could not fetch ${url}: HTTP ${response.status}`);
    blob = await response.blob();
  }
  // WORKERFS reads the file lazily through FileReaderSync: nothing is copied up front
  const dir = `/file${++opened}`;
  h5wasm.FS.mkdir(dir);
  h5wasm.FS.mount(h5wasm.FS.filesystems.WORKERFS, { blobs: [{ name: "data.h5", data: blob }] }, dir);
  mounted = dir;
  const reader = new FileReaderSync();
  const readAt = (at, count) => new Uint8Array(reader.readAsArrayBuffer(blob.slice(at, at + count)));
  current = openCollection(h5wasm, `${dir}/data.h5`, { fileSize: blob.size, readAt });
  return {
    name: name || (file && file.name) || url, size: blob.size, n: current.n, meta: current.meta,
    formatVersion: current.formatVersion, warnings: current.warnings, listing: current.listing(),
  };
}

const typed = (column, Type) => (column ? new Type(column.bytes.slice().buffer) : null);
const int64s = (column) => (column ? Array.from(new BigInt64Array(column.bytes.slice().buffer), Number) : null);

// What the page draws: the record's fields as plain typed arrays (feature vectors stay here).
function forPage(rec, verification) {
  const tileTypes = { "|u1": Uint8Array, "<u2": Uint16Array, "<f4": Float32Array };
  return {
    index: rec.index, id: rec.id, verification,
    featureShape: rec.patchFeatures.shape, featureDtype: rec.patchFeatures.dtype,
    entityFeatureShape: rec.entityFeatures ? rec.entityFeatures.shape : null,
    scores: typed(rec.patchScores, Float32Array),
    positions: typed(rec.patchPositions, Int32Array),
    edges: typed(rec.patchEdges, Int32Array),
    tiles: rec.tiles ? { shape: rec.tiles.shape, dtype: rec.tiles.dtype, data: typed(rec.tiles, tileTypes[rec.tiles.dtype]) } : null,
    entityTypes: typed(rec.entityTypes, Int16Array),
    entityAssertions: typed(rec.entityAssertions, Int8Array),
    entityText: rec.entityText,
    relations: typed(rec.relations, Int32Array),
    relationTypes: typed(rec.relationTypes, Int16Array),
    bridge: rec.bridge,
    labels: typed(rec.labels, Float32Array),
    imageSize: int64s(rec.imageSize), patchSize: int64s(rec.patchSize), gridShape: int64s(rec.gridShape),
    pixelSpacing: rec.pixelSpacing ? Array.from(typed(rec.pixelSpacing, Float64Array)) : null,
    report: rec.report, reportSource: rec.reportSource, groupKey: rec.groupKey,
  };
}

async function handle(message) {
  if (message.op === "open") return open(message);
  if (message.op === "record") {
    if (!current) throw new RefusedFile("NF-VIEW", "no file is open");
    const rec = current.record(message.index);
    return forPage(rec, await verifyRecord(rec));
  }
  throw new Error(`unknown request ${message.op}`);
}

self.onmessage = async (event) => {
  const { id } = event.data;
  try {
    self.postMessage({ id, ok: true, result: await handle(event.data) });
  } catch (err) {
    if (event.data.op === "open") release();
    self.postMessage({ id, ok: false, error: { code: err.code || "NF-VIEW", message: err.message || String(err) } });
  }
};
