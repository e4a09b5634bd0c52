// Chunks never written, found from the file's own bytes (NF-H006): HDF5 reads the rows of an
// unallocated chunk as fill values (zeros), so an edited or truncated file would show made-up
// data. The SDK counts each dataset's chunk index (reader.py, storage_guard); h5wasm does not
// expose it, so this module follows the file's structure itself: old-style groups (symbol-table
// B-trees, local heaps) and compact link messages down to each dataset's object header, its
// layout message (version 3, chunked) and the version-1 chunk B-tree, and counts the chunks.
// A structure it does not follow (dense link storage, other layout or index versions) is left
// unchecked: unlike the heap check, nothing here can hang the library, and the record digests
// still expose rows that read as zeros.
import { RefusedFile } from "./errors.js";
import { ascii, boundedReader, messages, num, rootHeaderAddress, u64, Unguardable } from "./heap_guard.js";

const LINK_MESSAGE = 0x0006;
const LAYOUT_MESSAGE = 0x0008;
const SYMBOL_TABLE_MESSAGE = 0x0011;
const LINK_INFO_MESSAGE = 0x0002;
const MAX_NODES = 100000; // B-tree nodes visited per file, bounding the work on a hostile index
const UNDEFINED = 0xffffffffffffffffn;

class Skip extends Error {}

/**
 * Refuse the file when a chunked dataset among `paths` has fewer allocated chunks than its extent needs.
 * @param {(at: number, count: number) => Uint8Array} readAt synchronous reads of the file's bytes
 * @param {number} size the file's size
 * @param {Map<string, number[]>} shapes dataset path -> its shape (as the HDF5 library reports it)
 */
export function checkChunksWritten(readAt, size, shapes) {
  const read = boundedReader(readAt, size);
  const budget = { nodes: 0 };
  let root;
  try {
    root = rootHeaderAddress(read, size);
  } catch {
    return; // the heap check has already refused shapes it cannot follow
  }
  const groups = new Map([["/", root]]);
  for (const [path, shape] of shapes) {
    let address;
    try {
      address = resolve(read, groups, path, budget);
      const layout = chunkLayout(read, address);
      if (!layout) continue;
      const expected = shape.reduce((n, extent, k) => n * Math.ceil(extent / layout.chunk[k]), 1);
      if (expected === 0) continue;
      const allocated = countChunks(read, layout.btree, budget, layout.rank + 1);
      if (allocated < expected) {
        throw new RefusedFile("NF-H006", `${expected - allocated} of ${expected} chunks were never written; their rows would read as fill values`, path);
      }
    } catch (err) {
      if (err instanceof Skip || err instanceof Unguardable) continue;
      throw err;
    }
  }
}

// the object header address of `path`, through the group headers on the way (cached per group)
function resolve(read, groups, path, budget) {
  const parts = path.split("/").filter(Boolean);
  let here = "/";
  let address = groups.get("/");
  for (const part of parts) {
    const next = `${here === "/" ? "" : here}/${part}`;
    if (groups.has(next)) {
      address = groups.get(next);
    } else {
      address = lookup(read, address, part, budget);
      groups.set(next, address);
    }
    here = next;
  }
  return address;
}

function lookup(read, groupAddress, name, budget) {
  for (const [kind, , body] of messages(read, groupAddress)) {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    if (kind === SYMBOL_TABLE_MESSAGE) {
      if (body.length < 16) throw new Skip();
      return symbolTableLookup(read, num(u64(view, 0), "B-tree address"), num(u64(view, 8), "heap address"), name, budget);
    }
    if (kind === LINK_INFO_MESSAGE) {
      const heapAt = body[1] & 0x01 ? 10 : 2;
      if (body.length >= heapAt + 8 && u64(view, heapAt) !== UNDEFINED) throw new Skip(); // dense link storage
    }
    if (kind === LINK_MESSAGE) {
      const found = linkTarget(body, view, name);
      if (found !== null) return found;
    }
  }
  throw new Skip();
}

// a compact (new-style) link message: the hard link's target when its name is `name`
function linkTarget(body, view, name) {
  const flags = body[1];
  let at = 2;
  let type = 0;
  if (flags & 0x08) type = body[at++];
  if (flags & 0x04) at += 8; // creation order
  if (flags & 0x10) at += 1; // character set
  const width = 1 << (flags & 0x03);
  let length = 0;
  for (let k = width - 1; k >= 0; k--) length = length * 256 + body[at + k];
  at += width;
  const linkName = new TextDecoder().decode(body.subarray(at, at + length));
  at += length;
  if (linkName !== name) return null;
  if (type !== 0 || at + 8 > body.length) throw new Skip(); // soft and external links are refused elsewhere
  return num(u64(view, at), "link address");
}

function symbolTableLookup(read, btree, heap, name, budget) {
  const { bytes: h, view: hv } = read(heap, 32);
  if (ascii(h.subarray(0, 4)) !== "HEAP") throw new Skip();
  const dataSize = num(u64(hv, 8), "heap size");
  const dataAddress = num(u64(hv, 24), "heap data address");
  const names = read(dataAddress, dataSize).bytes;
  const nameAt = (offset) => {
    const end = names.indexOf(0, offset);
    return new TextDecoder().decode(names.subarray(offset, end < 0 ? names.length : end));
  };
  const visit = (node) => {
    if (++budget.nodes > MAX_NODES) throw new Skip();
    const { bytes: head, view } = read(node, 24);
    if (ascii(head.subarray(0, 4)) !== "TREE" || head[4] !== 0) throw new Skip();
    const level = head[5];
    const entries = view.getUint16(6, true);
    // keys (8-byte heap offsets) and children alternate after the 24-byte header: key, child, key, ...
    const { view: body } = read(node + 24, entries * 16 + 8);
    for (let k = 0; k < entries; k++) {
      const child = num(u64(body, 8 + 16 * k), "B-tree child");
      if (level > 0) {
        const found = visit(child);
        if (found !== null) return found;
        continue;
      }
      const { bytes: snod, view: sv } = read(child, 8);
      if (ascii(snod.subarray(0, 4)) !== "SNOD") throw new Skip();
      const symbols = sv.getUint16(6, true);
      const { view: table } = read(child + 8, symbols * 40);
      for (let e = 0; e < symbols; e++) {
        if (nameAt(num(u64(table, 40 * e), "name offset")) === name) return num(u64(table, 40 * e + 8), "header address");
      }
    }
    return null;
  };
  const found = visit(btree);
  if (found === null) throw new Skip();
  return found;
}

// the chunk shape and chunk B-tree of a chunked dataset with a version-3 layout message, else null
function chunkLayout(read, address) {
  for (const [kind, , body] of messages(read, address)) {
    if (kind !== LAYOUT_MESSAGE) continue;
    if (body[0] !== 3 || body[1] !== 2) return null; // contiguous, compact, or a newer chunk index
    const dims = body[2]; // the dataset's rank + 1 (the element size)
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const btree = u64(view, 3);
    if (btree === UNDEFINED) return { btree: null, chunk: readChunk(view, dims), rank: dims - 1 };
    return { btree: num(btree, "chunk B-tree"), chunk: readChunk(view, dims), rank: dims - 1 };
  }
  return null;
}

function readChunk(view, dims) {
  const chunk = [];
  for (let k = 0; k < dims - 1; k++) chunk.push(view.getUint32(11 + 4 * k, true));
  return chunk;
}

// allocated chunks under a version-1 chunk B-tree (node type 1); no tree: none allocated
function countChunks(read, node, budget, dims) {
  if (node === null) return 0;
  if (++budget.nodes > MAX_NODES) throw new Skip();
  const { bytes: head, view } = read(node, 24);
  if (ascii(head.subarray(0, 4)) !== "TREE" || head[4] !== 1) throw new Skip();
  const level = head[5];
  const entries = view.getUint16(6, true);
  if (level === 0) return entries;
  const keySize = 8 + 8 * dims;
  const { view: body } = read(node + 24, entries * (keySize + 8) + keySize);
  let total = 0;
  for (let k = 0; k < entries; k++) total += countChunks(read, num(u64(body, keySize + (keySize + 8) * k), "B-tree child"), budget, dims);
  return total;
}
