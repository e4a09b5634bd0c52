// A second, independent reader of neural-format collection files (spec/neural-format-1.0.md, format 1.1),
// on h5wasm (the HDF5 C library compiled to WebAssembly). It runs unchanged in Node (tests) and
// in a browser Web Worker (the viewer). It reads a file the way the Python SDK does: offsets
// first, then one slice per column for one record, and it refuses hostile files by the declared
// sizes of clause NF-H006 before it allocates anything.

import { RefusedFile } from "./errors.js";
import { checkChunksWritten } from "./chunk_guard.js";
import { checkRootAttributeHeap } from "./heap_guard.js";

// Limits of clause NF-H006 (neural_format/format/layout.py and reader.py hold the same numbers).
export const LIMITS = Object.freeze({
  metadataBytes: 16 * 2 ** 20,
  offsetsEntries: 2 ** 34,
  datasetBytes: 2 ** 40,
  compressionRatio: 2048,
  slackBytes: 2 ** 20,
  sliceBytes: 2 ** 30,
  attributes: 1000,
  depth: 32,
  links: 100000,
});

// The viewer's own ceiling on one read: a browser tab cannot hold a 1 GiB slice next to its copy
// in WebAssembly memory, so anything larger is refused with a message instead of crashing the tab.
export const READ_BUDGET_BYTES = 256 * 2 ** 20;

export const HASH_PREFIX = "neural-graph-record-v1\0";
export const REPORT_SOURCE_NAMES = ["none", "ground truth", "generated"];
export const ASSERTION_NAMES = { "-1": "not recorded", 0: "present", 1: "absent", 2: "uncertain" };
const ALLOWED_FILTERS = { 1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf" };
// filters this build of the HDF5 library can decode (h5wasm ships zlib; lzf is an HDF5 plugin)
const DECODABLE_FILTERS = new Set([1, 2, 3]);
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
// the format version this reader implements: 1.1.0 added clauses only, no object (spec section 3.1)
const READER_VERSION = [1, 1];
const READER_MAJOR = READER_VERSION[0];

export { RefusedFile };

// The layout of spec section 4.2 (neural_format/format/layout.py COLUMNS): path, dtypes, trailing shape, condition.
const COLUMNS = [
  ["/records/bridge", ["<i8"], "2", "always"],
  ["/records/labels", ["<f4"], "L", "always"],
  ["/records/sha256", ["|u1"], "32", "always"],
  ["/records/report_source", ["|u1"], "", "always"],
  ["/records/image_size", ["<i8"], "A", "has_positions"],
  ["/records/patch_size", ["<i8"], "A", "has_positions"],
  ["/records/grid_shape", ["<i8"], "A", "has_positions"],
  ["/records/pixel_spacing", ["<f8"], "A", "has_positions"],
  ["/records/entity_text_known", ["|u1"], "", "entity_text_partial"],
  ["/patches/features", ["<f2", "<f4"], "D", "always"],
  ["/patches/scores", ["<f4"], "", "always"],
  ["/patches/positions", ["<i4"], "A", "has_positions"],
  ["/patches/tiles", ["|u1", "<u2", "<f4"], "T", "has_tiles"],
  ["/patch_edges/index", ["<i4"], "2", "always"],
  ["/entities/type", ["<i2"], "", "always"],
  ["/entities/assertion", ["|i1"], "", "always"],
  ["/entities/features", ["<f2", "<f4"], "De", "has_entity_features"],
  ["/relations/index", ["<i4"], "2", "always"],
  ["/relations/type", ["<i2"], "", "always"],
];
const STRING_COLUMNS = [
  ["/records/id", "always"],
  ["/records/report", "always"],
  ["/records/group_key", "always"],
  ["/entities/text", "has_entity_text"],
];
const RAGGED_TABLES = ["/patches", "/patch_edges", "/entities", "/relations"];

const utf8 = new TextDecoder("utf-8", { fatal: true });
const ascii = new TextEncoder();

function product(values) {
  return values.reduce((a, b) => a * b, 1);
}

/** numpy's dtype string (`<f4`, `|u1`) of an h5wasm dataset description. */
function dtypeString(meta) {
  let kind;
  if (meta.type === 0) kind = meta.signed ? "i" : "u";
  else if (meta.type === 1) kind = "f";
  else return `class-${meta.type}`;
  return `${meta.size === 1 ? "|" : meta.littleEndian ? "<" : ">"}${kind}${meta.size}`;
}

function when(condition, meta) {
  switch (condition) {
    case "always": return true;
    case "has_positions": return Boolean(meta.has_positions);
    case "has_tiles": return meta.tile_shape != null;
    case "has_entity_features": return (meta.entity_feature_dim || 0) > 0;
    case "has_entity_text": return Boolean(meta.has_entity_text);
    case "entity_text_partial": return Boolean(meta.has_entity_text && meta.entity_text_partial);
    default: throw new Error(condition);
  }
}

function trailingShape(code, meta) {
  switch (code) {
    case "": return [];
    case "2": return [2];
    case "32": return [32];
    case "A": return [meta.spatial_axes];
    case "D": return [meta.patch_feature_dim];
    case "De": return [meta.entity_feature_dim];
    case "L": return [(meta.label_names || []).length];
    case "T": return [...(meta.tile_shape || [])];
    default: throw new Error(code);
  }
}

function declaredDtype(path, meta, allowed) {
  if (path === "/patches/features") return [`<${meta.patch_feature_dtype === "float16" ? "f2" : "f4"}`];
  if (path === "/entities/features") return [`<${meta.entity_feature_dtype === "float16" ? "f2" : "f4"}`];
  if (path === "/patches/tiles") return [{ uint8: "|u1", uint16: "<u2", float32: "<f4" }[meta.tile_dtype]];
  return allowed;
}

/**
 * Check the first bytes of a file (NF-F001, NF-H001) before the HDF5 library sees it.
 * @param {Uint8Array} head at least the first 9 bytes
 */
export function checkSignature(head) {
  if (head.length < 9 || HDF5_SIGNATURE.some((b, i) => head[i] !== b)) {
    throw new RefusedFile("NF-F001", "not an HDF5 file (no HDF5 signature at byte 0)");
  }
  if (head[8] > 2) {
    throw new RefusedFile("NF-H001", `superblock version ${head[8]}; a collection file uses 0, 1 or 2`);
  }
}

/** An open collection file: metadata, per-record listing columns and per-record reads. */
export class Collection {
  /**
   * @param {object} h5wasm the h5wasm module, after `await h5wasm.ready`
   * @param {string} path the file's path in h5wasm's virtual file system
   * @param {{fileSize: number}} options fileSize: bytes of the file, bounding what its datasets can store
   */
  constructor(h5wasm, path, { fileSize }) {
    this.h5 = h5wasm;
    this.M = h5wasm.Module;
    this.fileSize = fileSize;
    this.warnings = [];
    try {
      this.file = new h5wasm.File(path, "r");
    } catch (err) {
      throw new RefusedFile("NF-F001", `the HDF5 library cannot open the file (${err.message || err})`);
    }
    this.fileId = this.file.file_id;
    this.datasets = new Map();
    try {
      this._open();
    } catch (err) {
      this.close();
      throw unreadable(err);
    }
  }

  close() {
    if (this.file) {
      try { this.file.close(); } catch { /* already closed */ }
      this.file = null;
    }
  }

  _open() {
    this._walk();
    this._checkVersion();
    this.meta = this._readMetadata();
    const meta = this.meta;
    for (const [path, dtypes, trailing, condition] of COLUMNS) {
      if (when(condition, meta)) this._dataset(path, declaredDtype(path, meta, dtypes), trailingShape(trailing, meta));
    }
    this.columns = new Set(COLUMNS.filter(([, , , c]) => when(c, meta)).map(([p]) => p));
    this.strings = new Map();
    for (const [path, condition] of STRING_COLUMNS) {
      if (when(condition, meta)) this.strings.set(path, this._stringArray(path));
    }
    const ids = this.strings.get("/records/id");
    this.n = ids.count;
    if (this.n + 1 > LIMITS.offsetsEntries) throw new RefusedFile("NF-H006", "too many records", "/records/id/offsets");
    for (const path of ["/records/report", "/records/group_key"]) {
      if (this.strings.get(path).count !== this.n) {
        throw new RefusedFile("NF-R001", `${this.strings.get(path).count} strings for ${this.n} records`, path);
      }
    }
    for (const [path] of COLUMNS) {
      if (path.startsWith("/records/") && this.columns.has(path) && this.datasets.get(path).shape[0] !== this.n) {
        throw new RefusedFile("NF-R001", `${this.datasets.get(path).shape[0]} rows for ${this.n} records`, path);
      }
    }
    // ragged tables: N + 1 offsets that cut every column of the table exactly (NF-O001)
    this.offsets = {};
    for (const table of RAGGED_TABLES) {
      const cols = [...this.columns].filter((p) => p.startsWith(`${table}/`));
      const rows = this.datasets.get(cols[0]).shape[0];
      for (const p of cols) {
        if (this.datasets.get(p).shape[0] !== rows) throw new RefusedFile("NF-S003", `${this.datasets.get(p).shape[0]} rows, ${cols[0]} has ${rows}`, p);
      }
      this.offsets[table] = this._offsets(`${table}/offsets`, this.n + 1, rows);
    }
    const text = this.strings.get("/entities/text");
    if (text && text.count !== this.datasets.get("/entities/type").shape[0]) {
      throw new RefusedFile("NF-O001", `${text.count} entity strings for ${this.datasets.get("/entities/type").shape[0]} entities`, "/entities/text/offsets");
    }
    // one record's slice of any column is at most 1 GiB (NF-H006)
    for (const path of this.columns) {
      const table = path.slice(0, path.lastIndexOf("/"));
      if (!this.offsets[table]) continue;
      const info = this.datasets.get(path);
      const rowBytes = info.size * product(info.shape.slice(1));
      const o = this.offsets[table];
      for (let i = 0; i < this.n; i++) {
        if ((o[i + 1] - o[i]) * rowBytes > LIMITS.sliceBytes) {
          throw new RefusedFile("NF-H006", `record ${i}'s slice is larger than 1 GiB`, path);
        }
      }
    }
  }

  // Visit every link without following soft or external links: counts links, depth and attributes.
  _walk() {
    const M = this.M;
    let links = 0;
    const visit = (path, depth) => {
      if (depth > LIMITS.depth) throw new RefusedFile("NF-H006", `groups nest deeper than ${LIMITS.depth} levels`, path);
      this._attributeCount(path);
      let names;
      try {
        names = M.get_names(this.fileId, path, false);
      } catch (err) {
        throw new RefusedFile("NF-F001", `group unreadable (${err.message || err})`, path);
      }
      links += names.length;
      if (links > LIMITS.links) throw new RefusedFile("NF-H006", `more than ${LIMITS.links} links`, path);
      for (const name of names) {
        const full = `${path === "/" ? "" : path}/${name}`;
        if (M.get_symbolic_link(this.fileId, full)) throw new RefusedFile("NF-H003", "soft link", full);
        const external = M.get_external_link(this.fileId, full);
        if (external && external.filename) throw new RefusedFile("NF-H003", `external link to ${external.filename}`, full);
        const type = M.get_type(this.fileId, full);
        if (type === M.H5G_GROUP) visit(full, depth + 1);
        else if (type === M.H5G_DATASET) this._anyDataset(full);
      }
    };
    visit("/", 0);
  }

  // What every dataset in the file must satisfy, named by the layout or not (NF-H002, H004, H005, H006).
  _anyDataset(path) {
    const M = this.M;
    this._attributeCount(path);
    let info;
    try {
      info = M.get_dataset_metadata(this.fileId, path);
    } catch (err) {
      throw new RefusedFile("NF-F001", `dataset unreadable (${err.message || err})`, path);
    }
    if (info.vlen || (info.type !== 0 && info.type !== 1)) {
      throw new RefusedFile("NF-H002", "datasets hold fixed-size integers and floats only", path);
    }
    if (info.virtual_sources && info.virtual_sources.length) throw new RefusedFile("NF-H004", "virtual dataset", path);
    this._filters(path);
    this._declaredSize(path, info);
  }

  _filters(path) {
    let filters;
    try {
      filters = this.M.get_dataset_filters(this.fileId, path);
    } catch (err) {
      throw new RefusedFile("NF-H005", `filter pipeline unreadable (${err.message || err})`, path);
    }
    for (const f of filters) {
      if (!(f.id in ALLOWED_FILTERS)) throw new RefusedFile("NF-H005", `filter id ${f.id} (${f.name}) is not allowed`, path);
      if (!DECODABLE_FILTERS.has(f.id)) {
        throw new RefusedFile("NF-VIEW", `the ${ALLOWED_FILTERS[f.id]} filter cannot be decoded in the browser; ` +
          "rewrite the file with gzip (e.g. neural-format merge --compression gzip OUT IN)", path);
      }
    }
  }

  // NF-H006: declared bytes. The library does not report a dataset's stored bytes here, but no
  // dataset stores more than the whole file, so 2048 x the file size + 1 MiB bounds every honest one.
  _declaredSize(path, info) {
    const declared = info.size * product(info.shape || []);
    if (declared > LIMITS.datasetBytes) throw new RefusedFile("NF-H006", `declares ${declared} bytes (limit 2^40)`, path);
    const backed = LIMITS.compressionRatio * this.fileSize + LIMITS.slackBytes;
    if (declared > backed) {
      throw new RefusedFile("NF-H006", `declares ${declared} bytes, more than ${LIMITS.compressionRatio} x the ${this.fileSize}-byte file can hold`, path);
    }
  }

  _attributeCount(path) {
    const names = this.M.get_attribute_names(this.fileId, path);
    if (names.length > LIMITS.attributes) throw new RefusedFile("NF-H006", `${names.length} attributes`, path);
  }

  _attr(path, name) {
    const obj = path === "/" ? this.file : this.file.get(path);
    const attr = obj && obj.attrs[name];
    if (!attr) return null;
    const value = attr.value;
    return typeof value === "string" ? value : null;
  }

  _checkVersion() {
    const format = this._attr("/", "format");
    const version = this._attr("/", "format_version");
    if (format !== "neural-graph" || !/^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/.test(version || "")) {
      throw new RefusedFile("NF-V001", `not a neural-format collection (format=${JSON.stringify(format)}, format_version=${JSON.stringify(version)})`, "/");
    }
    this.formatVersion = version;
    const [major, minor] = version.split(".").map(Number);
    if (major !== READER_MAJOR) {
      throw new RefusedFile(major > READER_MAJOR ? "NF-V003" : "NF-V004",
        `file format ${version}; this viewer reads major version ${READER_MAJOR}`, "/");
    }
    if (minor > READER_VERSION[1]) {
      this.warnings.push(`file format ${version} is newer than this viewer's ${READER_VERSION.join(".")}: ` +
        `objects and fields added after ${READER_VERSION.join(".")} are not shown`);
    }
  }

  // A dataset checked the way the SDK's dataset_guard does before anything is read.
  _dataset(path, dtypes, trailing, { ndim } = {}) {
    const M = this.M;
    const type = M.get_type(this.fileId, path);
    if (type !== M.H5G_DATASET) throw new RefusedFile("NF-S001", "required dataset is missing", path);
    let info;
    try {
      info = M.get_dataset_metadata(this.fileId, path);
    } catch (err) {
      throw new RefusedFile("NF-F001", `dataset unreadable (${err.message || err})`, path);
    }
    if (info.virtual_sources && info.virtual_sources.length) throw new RefusedFile("NF-H004", "virtual dataset", path);
    const dtype = dtypeString(info);
    if (info.vlen || !dtypes.includes(dtype)) {
      throw new RefusedFile(info.type === 0 || info.type === 1 ? "NF-S002" : "NF-H002", `dtype ${dtype}, expected ${dtypes.join(" or ")}`, path);
    }
    const shape = info.shape || [];
    const rank = ndim ?? 1 + trailing.length;
    if (shape.length !== rank || trailing.some((t, k) => shape[k + 1] !== t)) {
      throw new RefusedFile("NF-S003", `shape (${shape}), expected (n${trailing.map((t) => `, ${t}`).join("")})`, path);
    }
    this._filters(path);
    this._declaredSize(path, info);
    const entry = { shape, size: info.size, dtype, littleEndian: info.littleEndian };
    this.datasets.set(path, entry);
    return entry;
  }

  /** Raw little-endian bytes of rows [start, stop) of a dataset (all trailing dimensions). */
  readRows(path, start, stop) {
    const info = this.datasets.get(path);
    const trailing = info.shape.slice(1);
    const rows = stop - start;
    const nbytes = rows * product(trailing) * info.size;
    if (rows < 0 || stop > info.shape[0]) throw new RefusedFile("NF-O001", `rows ${start}:${stop} outside 0:${info.shape[0]}`, path);
    if (nbytes > READ_BUDGET_BYTES) {
      throw new RefusedFile("NF-VIEW", `one read of ${nbytes} bytes exceeds the viewer's ${READ_BUDGET_BYTES / 2 ** 20} MiB budget`, path);
    }
    if (nbytes === 0) return new Uint8Array(0);
    const M = this.M;
    const ptr = M._malloc(nbytes);
    if (!ptr) throw new RefusedFile("NF-VIEW", `cannot allocate ${nbytes} bytes`, path);
    let out;
    try {
      const count = [BigInt(rows), ...trailing.map(BigInt)];
      const offset = [BigInt(start), ...trailing.map(() => 0n)];
      const strides = count.map(() => 1n);
      const status = M.get_dataset_data(this.fileId, path, count, offset, strides, BigInt(ptr));
      if (status < 0) throw new RefusedFile("NF-F001", `rows ${start}:${stop} unreadable (damaged data or filter)`, path);
      out = M.HEAPU8.slice(ptr, ptr + nbytes);
    } finally {
      M._free(ptr);
    }
    return out; // little-endian: _dataset admits no other byte order (NF-S002)
  }

  _readMetadata() {
    const info = this._dataset("/metadata", ["|u1"], []);
    if (info.shape[0] > LIMITS.metadataBytes) {
      throw new RefusedFile("NF-H006", `metadata of ${info.shape[0]} bytes (limit 16 MiB)`, "/metadata");
    }
    try {
      return JSON.parse(utf8.decode(this.readRows("/metadata", 0, info.shape[0])));
    } catch (err) {
      if (err instanceof RefusedFile) throw err;
      throw new RefusedFile("NF-M001", `metadata is not UTF-8 JSON (${err.message})`, "/metadata");
    }
  }

  _offsets(path, count, rows) {
    const info = this._dataset(path, ["<i8"], []);
    if (info.shape[0] > LIMITS.offsetsEntries) throw new RefusedFile("NF-H006", `${info.shape[0]} offsets (limit 2^34)`, path);
    if (count !== null && info.shape[0] !== count) throw new RefusedFile("NF-O001", `${info.shape[0]} offsets, expected ${count}`, path);
    const raw = new BigInt64Array(this.readRows(path, 0, info.shape[0]).buffer);
    const out = new Float64Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      out[i] = Number(raw[i]);
      if (i === 0 ? out[0] !== 0 : out[i] < out[i - 1]) throw new RefusedFile("NF-O001", `offsets must start at 0 and never decrease (entry ${i})`, path);
    }
    if (raw.length === 0 || out[raw.length - 1] !== rows) {
      throw new RefusedFile("NF-O001", `offsets end at ${out[raw.length - 1]}, the column has ${rows}`, path);
    }
    return out;
  }

  _stringArray(path) {
    if (this.M.get_type(this.fileId, path) !== this.M.H5G_GROUP) throw new RefusedFile("NF-S001", "required string array is missing", path);
    const data = this._dataset(`${path}/data`, ["|u1"], []);
    const offsets = this._offsets(`${path}/offsets`, null, data.shape[0]);
    for (let i = 0; i + 1 < offsets.length; i++) {
      if (offsets[i + 1] - offsets[i] > LIMITS.sliceBytes) throw new RefusedFile("NF-H006", `string ${i} is larger than 1 GiB`, path);
    }
    return { path, offsets, count: offsets.length - 1 };
  }

  /** UTF-8 bytes of strings [start, stop) of a string array, and their offsets rebased to 0. */
  stringBytes(path, start, stop) {
    const s = this.strings.get(path);
    const o = s.offsets;
    const bytes = this.readRows(`${path}/data`, o[start], o[stop]);
    const offsets = new Float64Array(stop - start + 1);
    for (let i = start; i <= stop; i++) offsets[i - start] = o[i] - o[start];
    return { bytes, offsets };
  }

  stringsAt(path, start, stop) {
    const { bytes, offsets } = this.stringBytes(path, start, stop);
    const out = [];
    for (let i = 0; i + 1 < offsets.length; i++) out.push(decodeUtf8(bytes.subarray(offsets[i], offsets[i + 1]), `${path}[${start + i}]`));
    return out;
  }

  /** What the record list shows, for every record: ID, counts, labels, report source. */
  listing() {
    try {
      return this._listing();
    } catch (err) {
      throw unreadable(err);
    }
  }

  _listing() {
    const n = this.n;
    const ids = this.stringsAt("/records/id", 0, n);
    const sources = this.readRows("/records/report_source", 0, n);
    const L = this.datasets.get("/records/labels").shape[1];
    const labels = new Float32Array(this.readRows("/records/labels", 0, n).buffer);
    const p = this.offsets["/patches"];
    const e = this.offsets["/entities"];
    const rows = [];
    for (let i = 0; i < n; i++) {
      rows.push({
        index: i, id: ids[i], patches: p[i + 1] - p[i], entities: e[i + 1] - e[i],
        labels: Array.from(labels.subarray(i * L, (i + 1) * L)), reportSource: sources[i],
      });
    }
    return rows;
  }

  _rowsOf(path, i) {
    const table = path.slice(0, path.lastIndexOf("/"));
    const o = this.offsets[table];
    const info = this.datasets.get(path);
    const count = o[i + 1] - o[i];
    return { dtype: info.dtype, shape: [count, ...info.shape.slice(1)], bytes: this.readRows(path, o[i], o[i + 1]) };
  }

  _row(path, i) {
    const info = this.datasets.get(path);
    return { dtype: info.dtype, shape: info.shape.slice(1), bytes: this.readRows(path, i, i + 1) };
  }

  /** Every field of record i, as raw typed columns (the digest needs the exact bytes). */
  record(i) {
    try {
      return this._record(i);
    } catch (err) {
      throw unreadable(err);
    }
  }

  _record(i) {
    if (!(i >= 0 && i < this.n)) throw new RefusedFile("NF-VIEW", `no record ${i}`);
    const has = (p) => this.columns.has(p);
    const rec = { index: i };
    rec.id = this.stringsAt("/records/id", i, i + 1)[0];
    rec.idBytes = this.stringBytes("/records/id", i, i + 1).bytes;
    for (const [key, path] of [["patchFeatures", "/patches/features"], ["patchScores", "/patches/scores"],
      ["patchPositions", "/patches/positions"], ["patchEdges", "/patch_edges/index"], ["tiles", "/patches/tiles"],
      ["entityTypes", "/entities/type"], ["entityAssertions", "/entities/assertion"],
      ["entityFeatures", "/entities/features"], ["relations", "/relations/index"], ["relationTypes", "/relations/type"]]) {
      rec[key] = has(path) ? this._rowsOf(path, i) : null;
    }
    // format 1.1.0 (spec section 4.5): a record marked 0 has unknown entity text, hashed as absent
    const textUnknown = has("/records/entity_text_known") && this._row("/records/entity_text_known", i).bytes[0] === 0;
    if (this.strings.has("/entities/text") && !textUnknown) {
      const e = this.offsets["/entities"];
      const { bytes, offsets } = this.stringBytes("/entities/text", e[i], e[i + 1]);
      rec.entityTextBytes = { bytes, offsets };
      rec.entityText = [];
      for (let k = 0; k + 1 < offsets.length; k++) rec.entityText.push(decodeUtf8(bytes.subarray(offsets[k], offsets[k + 1]), `/entities/text[${e[i] + k}]`));
    } else {
      rec.entityTextBytes = null;
      rec.entityText = null;
    }
    rec.bridgeBytes = this.readRows("/records/bridge", i, i + 1);
    const bridge = new BigInt64Array(rec.bridgeBytes.slice().buffer);
    rec.bridge = bridge[0] < 0n && bridge[1] < 0n ? null : [Number(bridge[0]), Number(bridge[1])];
    rec.labels = this._row("/records/labels", i);
    if (this.meta.has_positions) {
      for (const [key, path] of [["imageSize", "/records/image_size"], ["patchSize", "/records/patch_size"],
        ["gridShape", "/records/grid_shape"], ["pixelSpacing", "/records/pixel_spacing"]]) {
        rec[key] = this._row(path, i);
      }
    }
    rec.reportSource = this.readRows("/records/report_source", i, i + 1)[0];
    rec.reportBytes = this.stringBytes("/records/report", i, i + 1).bytes;
    rec.report = decodeUtf8(rec.reportBytes, `/records/report[${i}]`);
    rec.groupKeyBytes = this.stringBytes("/records/group_key", i, i + 1).bytes;
    rec.groupKey = decodeUtf8(rec.groupKeyBytes, `/records/group_key[${i}]`);
    rec.storedDigest = this.readRows("/records/sha256", i, i + 1);
    return rec;
  }
}

// The HDF5 library reports damage as plain errors ("name not defined", failed reads): the file is unreadable.
function unreadable(err) {
  if (err instanceof RefusedFile) return err;
  return new RefusedFile("NF-F001", `file structure unreadable (${err && err.message ? err.message : err})`);
}

/**
 * Open a collection file after the checks that must precede the HDF5 library: the signature and
 * superblock version, and the root attributes' global heap (which the library can loop on).
 * @param {object} h5wasm the h5wasm module, after `await h5wasm.ready`
 * @param {string} path the file's path in h5wasm's virtual file system
 * @param {{fileSize: number, readAt: (at: number, count: number) => Uint8Array}} source the file's size and synchronous byte reads
 */
export function openCollection(h5wasm, path, { fileSize, readAt }) {
  checkSignature(readAt(0, Math.min(9, fileSize)));
  checkRootAttributeHeap(readAt, fileSize);
  const collection = new Collection(h5wasm, path, { fileSize });
  try {
    const shapes = new Map([...collection.datasets].map(([p, info]) => [p, info.shape]));
    checkChunksWritten(readAt, fileSize, shapes);
  } catch (err) {
    collection.close();
    throw err;
  }
  return collection;
}

function decodeUtf8(bytes, location) {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new RefusedFile("NF-R014", "string is not valid UTF-8", location);
  }
}

function int64LE(values) {
  const out = new Uint8Array(8 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, k) => view.setBigInt64(8 * k, BigInt(v), true));
  return out;
}

// Every NaN bit pattern hashes as the dtype's canonical quiet NaN (numpy's np.nan cast to it).
function canonicalFloats(dtype, bytes) {
  const size = Number(dtype.slice(2));
  if (dtype[1] !== "f" || bytes.length === 0) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let copy = null;
  for (let k = 0; k < bytes.length; k += size) {
    let nan;
    if (size === 2) nan = (view.getUint16(k, true) & 0x7fff) > 0x7c00;
    else if (size === 4) nan = Number.isNaN(view.getFloat32(k, true));
    else nan = Number.isNaN(view.getFloat64(k, true));
    if (!nan) continue;
    if (!copy) copy = new DataView(bytes.slice().buffer);
    if (size === 2) copy.setUint16(k, 0x7e00, true);
    else if (size === 4) copy.setUint32(k, 0x7fc00000, true);
    else copy.setBigUint64(k, 0x7ff8000000000000n, true);
  }
  return copy ? new Uint8Array(copy.buffer) : bytes;
}

/**
 * The bytes whose SHA-256 is a record's digest, its pre-image (spec section 6 and Appendix B,
 * neural_format/format/hashing.py):
 * the prefix, then per canonical field its name, NUL, and either `absent NUL` or dtype NUL,
 * int64 shape and C-order little-endian data.
 */
export function digestMessage(rec) {
  const parts = [ascii.encode(HASH_PREFIX)];
  const field = (name, value) => {
    parts.push(ascii.encode(`${name}\0`));
    if (value === null) {
      parts.push(ascii.encode("absent\0"));
      return;
    }
    parts.push(ascii.encode(`${value.dtype}\0`), int64LE(value.shape), canonicalFloats(value.dtype, value.bytes));
  };
  const bytesField = (bytes) => ({ dtype: "|u1", shape: [bytes.length], bytes });
  field("record_id", bytesField(rec.idBytes));
  field("patch_features", rec.patchFeatures);
  field("patch_scores", rec.patchScores);
  field("patch_positions", rec.patchPositions);
  field("patch_edges", rec.patchEdges);
  field("tiles", rec.tiles);
  if (rec.entityTextBytes) {
    // entity text: the strings' UTF-8 bytes, then their int64 offsets, hashed as one |u1 array
    const { bytes, offsets } = rec.entityTextBytes;
    const blob = new Uint8Array(bytes.length + 8 * offsets.length);
    blob.set(bytes, 0);
    blob.set(int64LE(Array.from(offsets)), bytes.length);
    field("entity_text", bytesField(blob));
  } else {
    field("entity_text", null);
  }
  field("entity_types", rec.entityTypes);
  field("entity_assertions", rec.entityAssertions);
  field("entity_features", rec.entityFeatures);
  field("relations", rec.relations);
  field("relation_types", rec.relationTypes);
  field("bridge", { dtype: "<i8", shape: [2], bytes: rec.bridgeBytes });
  field("labels", rec.labels);
  if (rec.imageSize) {
    field("image_size", rec.imageSize);
    field("patch_size", rec.patchSize);
    field("grid_shape", rec.gridShape);
    const spacing = new Float64Array(rec.pixelSpacing.bytes.slice().buffer);
    field("pixel_spacing", spacing.every(Number.isNaN) ? null : rec.pixelSpacing);
  } else {
    for (const name of ["image_size", "patch_size", "grid_shape", "pixel_spacing"]) field(name, null);
  }
  // a report is hashed only with a report source; a code outside 0..2 hashes as 255
  field("report", rec.reportSource === 0 ? null : bytesField(rec.reportBytes));
  field("report_source", bytesField(Uint8Array.of(rec.reportSource <= 2 ? rec.reportSource : 255)));
  field("group_key", rec.groupKeyBytes.length ? bytesField(rec.groupKeyBytes) : null);
  const total = parts.reduce((a, p) => a + p.length, 0);
  const message = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    message.set(p, at);
    at += p.length;
  }
  return message;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of the record's canonical bytes with WebCrypto; compared with the stored digest. */
export async function verifyRecord(rec) {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", digestMessage(rec)));
  const computed = hex(digest);
  const stored = hex(rec.storedDigest);
  return { computed, stored, ok: computed === stored };
}
