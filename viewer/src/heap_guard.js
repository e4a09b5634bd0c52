// The root attributes' global heap, checked from the file's own bytes before the HDF5 library reads
// them: a port of neural_format/files/heap_guard.py (check_root_attribute_heap). The HDF5 library loops
// forever on a zero-size free-space object in a global heap collection, and allocates up to 4 GiB
// for a variable-length attribute that declares more bytes than its heap object holds; in the
// viewer the first would keep the worker busy until the page's timeout stops it. A shape this
// check cannot follow is refused (NF-F001) rather than handed to the library, as in the SDK.
import { RefusedFile } from "./errors.js";

const UNDEFINED = 0xffffffffffffffffn;
const MAX_MESSAGES = 4096;
const MAX_BLOCKS = 64;
const MAX_BLOCK_BYTES = 1 << 24;
const MAX_COLLECTION_BYTES = 1 << 28;
const HEAP_OBJECT_HEADER = 16;
const VLEN_REFERENCE = 16;
const ATTRIBUTE_MESSAGE = 0x000c;
const CONTINUATION_MESSAGE = 0x0010;
const ATTRIBUTE_INFO_MESSAGE = 0x0015;
const SHARED_MESSAGE_FLAG = 0x02;
const VLEN_CLASS = 9;

export class Unguardable extends Error {}

function refuse(what, where) {
  return new RefusedFile("NF-F001", `HDF5 structure the attribute-heap safety check cannot follow: ${what}`, where);
}

export const u64 = (view, at) => view.getBigUint64(at, true);
export const num = (big, what) => {
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Unguardable(`${what} ${big} out of range`);
  return Number(big);
};
export const ascii = (bytes) => String.fromCharCode(...bytes);
const pad8 = (n) => (n + 7) & ~7;

/**
 * @param {(at: number, count: number) => Uint8Array} readAt synchronous reads of the file's bytes
 * @param {number} size the file's size in bytes
 */
export function boundedReader(readAt, size) {
  return (at, count) => {
    if (at < 0 || count < 0 || at + count > size) throw new Unguardable(`${count} bytes at byte ${at} lie outside the ${size}-byte file`);
    const data = readAt(at, count);
    if (data.length !== count) throw new Unguardable(`short read at byte ${at}`);
    return { bytes: data, view: new DataView(data.buffer, data.byteOffset, data.byteLength) };
  };
}

export function checkRootAttributeHeap(readAt, size) {
  const read = boundedReader(readAt, size);
  let address;
  try {
    address = rootHeaderAddress(read, size);
  } catch (err) {
    if (err instanceof Unguardable) throw refuse(err.message, "/ (superblock)");
    throw err;
  }
  const where = `object header at byte ${address}`;
  const cache = new Map();
  try {
    for (const [kind, flags, body] of messages(read, address)) {
      const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
      if (kind === ATTRIBUTE_INFO_MESSAGE) {
        if (body.length < 10) throw new Unguardable("attribute info message too short");
        const heapAt = body[1] & 0x01 ? 4 : 2;
        if (u64(view, heapAt) !== UNDEFINED) throw new Unguardable("attributes kept in dense storage (a fractal heap)");
        continue;
      }
      if (kind !== ATTRIBUTE_MESSAGE) continue;
      if (flags & SHARED_MESSAGE_FLAG) throw new Unguardable("a shared attribute message");
      for (const [name, length, heapAddress, index] of vlenReferences(body, view)) {
        if (length === 0 && heapAddress === 0) continue;
        const objects = checkCollection(read, heapAddress, size, cache);
        const stored = objects.get(index);
        if (stored === undefined || length > stored) {
          throw new RefusedFile("NF-E001", `attribute ${JSON.stringify(name)} declares ${length} bytes, its heap object holds ${stored ?? "none"}`, `@${name} (${where})`);
        }
      }
    }
  } catch (err) {
    if (err instanceof Unguardable) throw refuse(err.message, where);
    throw err;
  }
}

export function rootHeaderAddress(read, size) {
  const { bytes: head, view } = read(0, Math.min(size, 72));
  if (head.length < 48) throw new Unguardable("no HDF5 superblock at byte 0");
  const version = head[8];
  if (version === 0 || version === 1) {
    if (head[13] !== 8 || head[14] !== 8) throw new Unguardable(`${head[13]}-byte offsets / ${head[14]}-byte lengths`);
    // the stored base address is not used: HDF5 takes the superblock's own position (0) instead
    const at = version === 0 ? 64 : 68;
    if (head.length < at + 8) throw new Unguardable("superblock truncated");
    return num(u64(view, at), "root header address");
  }
  if (version === 2 || version === 3) {
    if (head[9] !== 8 || head[10] !== 8) throw new Unguardable(`${head[9]}-byte offsets / ${head[10]}-byte lengths`);
    return num(u64(view, 36), "root header address");
  }
  throw new Unguardable(`superblock version ${version}`);
}

export function messages(read, address) {
  const { bytes: head } = read(address, 5);
  if (ascii(head.subarray(0, 4)) === "OHDR") {
    if (head[4] !== 2) throw new Unguardable(`object header version ${head[4]}`);
    return v2Messages(read, address);
  }
  if (head[0] === 1) return v1Messages(read, address);
  throw new Unguardable(`object header version byte ${head[0]}`);
}

function* v1Messages(read, address) {
  const { view: prefix } = read(address, 16);
  const count = prefix.getUint16(2, true);
  const headerSize = prefix.getUint32(8, true);
  if (count > MAX_MESSAGES) throw new Unguardable(`${count} header messages`);
  const blocks = [[address + 16, headerSize]];
  let seen = 0;
  while (blocks.length && seen < count) {
    const [start, length] = blocks.shift();
    if (length > MAX_BLOCK_BYTES) throw new Unguardable(`a ${length}-byte header block`);
    const { bytes: block, view } = read(start, length);
    let at = 0;
    while (at + 8 <= block.length && seen < count) {
      const kind = view.getUint16(at, true);
      const size = view.getUint16(at + 2, true);
      const flags = block[at + 4];
      const body = block.subarray(at + 8, at + 8 + size);
      if (body.length !== size) throw new Unguardable("a header message runs past its block");
      seen += 1;
      if (kind === CONTINUATION_MESSAGE) {
        if (size < 16) throw new Unguardable("short continuation message");
        const b = new DataView(body.buffer, body.byteOffset, 16);
        blocks.push([num(u64(b, 0), "continuation address"), num(u64(b, 8), "continuation length")]);
        if (blocks.length > MAX_BLOCKS) throw new Unguardable("too many header continuation blocks");
      } else {
        yield [kind, flags, body];
      }
      at += 8 + size;
    }
  }
}

function* v2Messages(read, address) {
  const flags = read(address, 6).bytes[5];
  const at = address + 6 + (flags & 0x20 ? 16 : 0) + (flags & 0x10 ? 4 : 0);
  const width = 1 << (flags & 0x03);
  const sizeBytes = read(at, width).bytes;
  let chunk0 = 0;
  for (let k = width - 1; k >= 0; k--) chunk0 = chunk0 * 256 + sizeBytes[k];
  const step = flags & 0x04 ? 6 : 4; // messages carry a 2-byte creation order when tracked
  const blocks = [[at + width, chunk0]];
  let first = true;
  let done = 0;
  while (blocks.length) {
    const [start, length] = blocks.shift();
    if (length > MAX_BLOCK_BYTES) throw new Unguardable(`a ${length}-byte header block`);
    let block = read(start, length).bytes;
    if (!first) {
      if (length < 8 || ascii(block.subarray(0, 4)) !== "OCHK") throw new Unguardable("a header continuation block without its OCHK signature");
      block = block.subarray(4, block.length - 4);
    }
    first = false;
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    let pos = 0;
    while (pos + step <= block.length) {
      const kind = block[pos];
      const size = view.getUint16(pos + 1, true);
      const mflags = block[pos + 3];
      const body = block.subarray(pos + step, pos + step + size);
      if (body.length !== size) throw new Unguardable("a header message runs past its block");
      done += 1;
      if (done > MAX_MESSAGES) throw new Unguardable("too many header messages");
      if (kind === CONTINUATION_MESSAGE) {
        if (size < 16) throw new Unguardable("short continuation message");
        const b = new DataView(body.buffer, body.byteOffset, 16);
        blocks.push([num(u64(b, 0), "continuation address"), num(u64(b, 8), "continuation length")]);
        if (blocks.length > MAX_BLOCKS) throw new Unguardable("too many header continuation blocks");
      } else if (kind) {
        yield [kind, mflags, body];
      }
      pos += step + size;
    }
  }
}

function elementCount(space) {
  if (space.length < 4) throw new Unguardable("dataspace message too short");
  const [version, rank] = space;
  let dimsAt;
  let kind;
  if (version === 1) {
    dimsAt = 8;
    kind = rank ? 1 : 0;
  } else if (version === 2) {
    dimsAt = 4;
    kind = space[3];
  } else {
    throw new Unguardable(`dataspace version ${version}`);
  }
  if (kind === 2) return 0;
  if (space.length < dimsAt + 8 * rank) throw new Unguardable("dataspace message too short");
  const view = new DataView(space.buffer, space.byteOffset, space.byteLength);
  let count = 1n;
  for (let k = 0; k < rank; k++) count *= u64(view, dimsAt + 8 * k);
  return num(count, "attribute elements");
}

function vlenElementBytes(dtype) {
  if (dtype.length < 8) throw new Unguardable("datatype message too short");
  if ((dtype[0] & 0x0f) !== VLEN_CLASS) return null;
  if ((dtype[1] & 0x0f) === 1) return 1; // a string: the length counts bytes
  const base = dtype.subarray(8);
  if (base.length < 8) throw new Unguardable("variable-length sequence without its base type");
  return Math.max(1, new DataView(base.buffer, base.byteOffset, 8).getUint32(4, true));
}

function* vlenReferences(body, view) {
  if (body.length < 8) throw new Unguardable("attribute message too short");
  const version = body[0];
  const nameSize = view.getUint16(2, true);
  const typeSize = view.getUint16(4, true);
  const spaceSize = view.getUint16(6, true);
  let at;
  let pad;
  if (version === 1) {
    at = 8;
    pad = pad8;
  } else if (version === 2 || version === 3) {
    if (body[1] & 0x03) throw new Unguardable("an attribute with a shared datatype or dataspace");
    at = version === 2 ? 8 : 9;
    pad = (n) => n;
  } else {
    throw new Unguardable(`attribute message version ${version}`);
  }
  const rawName = body.subarray(at, at + nameSize);
  const nul = rawName.indexOf(0);
  const name = new TextDecoder().decode(nul >= 0 ? rawName.subarray(0, nul) : rawName);
  at += pad(nameSize);
  const dtype = body.subarray(at, at + typeSize);
  at += pad(typeSize);
  const space = body.subarray(at, at + spaceSize);
  at += pad(spaceSize);
  const unit = vlenElementBytes(dtype);
  if (unit === null) return;
  const elements = elementCount(space);
  if (at + VLEN_REFERENCE * elements > body.length) throw new Unguardable(`attribute ${JSON.stringify(name)} declares more elements than its message holds`);
  for (let k = 0; k < elements; k++) {
    const o = at + VLEN_REFERENCE * k;
    yield [name, view.getUint32(o, true) * unit, num(u64(view, o + 4), "heap address"), view.getUint32(o + 12, true)];
  }
}

// Parse a collection as HDF5 does: {object index: object size}; refuse what would hang or overflow it.
function checkCollection(read, address, size, cache) {
  if (cache.has(address)) return cache.get(address);
  const where = `global heap collection at byte ${address}`;
  const { bytes: head, view: headView } = read(address, 16);
  if (ascii(head.subarray(0, 4)) !== "GCOL") throw new RefusedFile("NF-F001", "an attribute points to no global heap collection", where);
  const collectionSize = num(u64(headView, 8), "collection size");
  if (collectionSize < 16 || address + collectionSize > size || collectionSize > MAX_COLLECTION_BYTES) {
    throw new RefusedFile("NF-F001", `global heap collection size ${collectionSize} is not sane`, where);
  }
  const { view } = read(address, collectionSize);
  const objects = new Map();
  let at = 16;
  while (at < collectionSize) {
    if (at + HEAP_OBJECT_HEADER > collectionSize) break; // HDF5 treats a tail too small for a header as free space
    const index = view.getUint16(at, true);
    const objectSize = num(u64(view, at + 8), "heap object size");
    if (index === 0) {
      // HDF5 advances by the free-space size itself: 0 would never advance
      if (objectSize < HEAP_OBJECT_HEADER) throw new RefusedFile("NF-F001", `global heap free-space object of ${objectSize} bytes, which the HDF5 library loops on`, where);
      at += objectSize;
    } else {
      const step = HEAP_OBJECT_HEADER + pad8(objectSize);
      if (at + step > collectionSize) throw new RefusedFile("NF-F001", "global heap object runs past its collection", where);
      objects.set(index, objectSize);
      at += step;
    }
  }
  cache.set(address, objects);
  return objects;
}
