"""Generate the hostile-input corpus: one small file per kind, each named after what it breaks.

    python tests/hostile/generate.py OUT_DIR          # writes OUT_DIR/<kind>.h5 and OUT_DIR/expected.json

Every kind starts from the same small valid collection (6 synthetic records) and breaks exactly one
thing, by rewriting objects with h5py or by editing raw bytes. :data:`KINDS` is the table of
expected outcomes, one row per kind:

* ``reader`` -- the code of the :class:`~neural_format.errors.NeuralFormatError` that opening the
  file and reading every record must raise, or ``"ok"`` when the break is semantic (indices out of
  range, NaN, duplicates...) and the lazy reader is expected to read what is stored without
  judging it; such breaks are the validator's job.
* ``validator`` -- the clause ID that ``neural_format.validate(path)`` must list among its error
  findings.

The corpus is deterministic (fixed seeds, no time-dependent bytes are compared) and is generated
at test time into a temporary directory, so no binary file is committed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import h5py
import numpy as np

HDF5_LIBVER = ("earliest", "v108")
BOMB = 1 << 60


@dataclass(frozen=True)
class HostileCase:
    name: str
    build: Callable[[Path, "Bases"], None]
    reader: str  # expected reader outcome: an error code, or "ok"
    validator: Optional[str]  # clause the validator must report as an error (None: must report none)
    family: str
    note: str = ""


@dataclass
class Bases:
    plain: Path  # 6 valid records, uncompressed chunked datasets
    gzip: Path  # the same records, gzip-compressed


# -- helpers -------------------------------------------------------------------------------------

def make_bases(directory: Path) -> Bases:
    import neural_format as nf
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(feature_dim=4)
    records = list(synthetic_records(6, meta, seed=0, patches=(2, 6), entities=(2, 4)))
    directory.mkdir(parents=True, exist_ok=True)
    plain = directory / "_base_plain.h5"
    packed = directory / "_base_gzip.h5"
    for path, compression in ((plain, None), (packed, "gzip")):
        if path.exists():
            path.unlink()
        nf.write_collection(path, meta, records, compression=compression, fsync=False)
    return Bases(plain, packed)


def write_records(path: Path, edit: Callable[[list], None], **meta_kwargs) -> None:
    """Write the base records through the real writer after ``edit`` broke them semantically.

    The writer hashes what it is given, so the stored hashes agree with the data: the only
    finding the validator can make is the semantic one.
    """
    import neural_format as nf
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    meta = synthetic_meta(feature_dim=4, **meta_kwargs)
    records = list(synthetic_records(6, meta, seed=0, patches=(2, 6), entities=(2, 4)))
    edit(records)
    nf.write_collection(path, meta, records, compression="gzip", fsync=False, overwrite=True)


def mutate(fn: Callable[[h5py.File], None], base: str = "gzip", libver=HDF5_LIBVER):
    def build(path: Path, bases: Bases) -> None:
        shutil.copyfile(getattr(bases, base), path)
        with h5py.File(path, "r+", libver=libver) as f:
            fn(f)
    return build


def raw(fn: Callable[[bytearray], bytes], base: str = "gzip"):
    def build(path: Path, bases: Bases) -> None:
        data = bytearray(getattr(bases, base).read_bytes())
        path.write_bytes(bytes(fn(data)))
    return build


def literal(content: bytes):
    def build(path: Path, bases: Bases) -> None:
        path.write_bytes(content)
    return build


def replace(f: h5py.File, path: str, **kwargs) -> None:
    """Replace dataset ``path`` by a new one created with ``kwargs``, keeping its attributes."""
    attrs = dict(f[path].attrs) if path in f else {}
    if path in f:
        del f[path]
    ds = f.create_dataset(path, **kwargs)
    for key, value in attrs.items():
        ds.attrs[key] = value


def set_values(path: str, index, value):
    def fn(f: h5py.File) -> None:
        data = f[path][()]
        data[index] = value
        replace(f, path, data=data, maxshape=(None, *data.shape[1:]), chunks=True)
    return fn


def truncate_at(fraction: float):
    def fn(data: bytearray) -> bytes:
        return bytes(data[: max(1, int(len(data) * fraction))])
    return fn


def flip_signature(signature: bytes, occurrence: int):
    """Flip the first byte of the ``occurrence``-th HDF5 structure signature (B-tree, heap...)."""
    def fn(data: bytearray) -> bytes:
        at = -1
        for _ in range(occurrence + 1):
            at = data.index(signature, at + 1)
        data[at] ^= 0xFF
        return bytes(data)
    return fn


def vlen_attribute_length(name: bytes, length: int):
    """Rewrite the declared length in the vlen-string descriptor of root attribute ``name``.

    A vlen string attribute stores (uint32 length, heap collection address, heap index); the
    collection of the base file is at byte 2048. HDF5 2.0 allocates and fills ``length`` bytes
    before it compares them with the heap object, so this needs RLIMIT_AS to stay a coded error.
    """
    def fn(data: bytearray) -> bytes:
        at = data.index(name)
        value = len(b"1.0.0").to_bytes(4, "little") + (2048).to_bytes(8, "little")
        at = data.index(value, at)
        data[at:at + 4] = length.to_bytes(4, "little")
        return bytes(data)
    return fn


def zero_global_heap_tail(data: bytearray) -> bytes:
    """Zero the global heap collection from its 16th object on (as a fuzzer input did).

    HDF5 2.0 then loops forever parsing the collection the root attributes live in; no Python
    guard runs before it, so only a process boundary bounds it (neural_format.validation.isolation).
    """
    at = data.index(b"GCOL")
    data[at + 448:at + 752] = bytes(304)
    return bytes(data)


def group_attribute_heap_zeroed(path: Path, bases: Bases) -> None:
    """Root attributes moved to a second, healthy heap collection; the first one (holding the
    groups' encoding attributes) zeroed as in zero_global_heap_tail. The reader never reads group
    attributes; the validator does, and HDF5 would loop there without heap_guard."""
    shutil.copyfile(bases.gzip, path)
    with h5py.File(path, "r+", libver=HDF5_LIBVER) as f:
        saved = {name: f.attrs[name] for name in ("format", "format_version", "encoding-type", "encoding-version")}
        for name in saved:
            del f.attrs[name]
        filler = f.create_group("filler")
        for i in range(40):  # fill the first collection so the root attributes land in a new one
            filler.attrs[f"f{i}"] = "x" * 100
        for name, value in saved.items():
            f.attrs[name] = value
    path.write_bytes(zero_global_heap_tail(bytearray(path.read_bytes())))


def wrapping_offsets(path: str):
    def fn(f: h5py.File) -> None:
        data = f[path][()]
        step = 1 << 62
        data[1:5] = np.array([step, -2 * step, -step, 0], np.int64)  # 2^62, then wrapping past 2^63
        data[5:-1] = 0
        replace(f, path, data=data, maxshape=(None,), chunks=True)
    return fn


def compound_vlen_format(length: int):
    """Root ``format`` as a compound {text: vlen string, n: int32}, its string's length set to ``length``."""
    def build(path: Path, bases: Bases) -> None:
        shutil.copyfile(bases.gzip, path)
        value = np.array([("neural-collection", 1)], dtype=[("text", h5py.string_dtype()), ("n", "<i4")])
        with h5py.File(path, "r+", libver=HDF5_LIBVER) as f:
            f.attrs["format"] = value
        data = bytearray(path.read_bytes())
        # the compound's string went to a new heap collection (the last one); the plain string
        # attributes holding the same text live in the first
        reference = (17).to_bytes(4, "little") + heap_collections(data)[-1].to_bytes(8, "little")
        at = data.index(reference)
        data[at:at + 4] = length.to_bytes(4, "little")
        path.write_bytes(bytes(data))
    return build


def unwritten_chunk(path: str):
    """Rewrite ``path`` in 2-row chunks and write all but its second chunk."""
    def fn(f: h5py.File) -> None:
        data = f[path][()]
        replace(f, path, shape=data.shape, dtype=data.dtype, maxshape=(None, *data.shape[1:]), chunks=(2, *data.shape[1:]))
        f[path][:2] = data[:2]
        f[path][4:] = data[4:]
    return fn


def latest_format(damage: Callable[[bytearray], bytes]):
    """The base file rewritten by h5py with ``libver="latest"`` (superblock 3, object header 2,
    attribute message 3), then ``damage`` applied: the heap guard must understand that shape too."""
    def build(path: Path, bases: Bases) -> None:
        with h5py.File(bases.gzip, "r") as src, h5py.File(path, "w", libver="latest") as dst:
            for name in src:
                src.copy(src[name], dst, name=name)
            for key, value in src.attrs.items():
                dst.attrs[key] = value
        data = bytearray(path.read_bytes())
        assert data[8] == 3, "libver latest must write superblock 3"
        path.write_bytes(damage(data))
    return build


def heap_collections(data: bytes) -> list[int]:
    """Byte addresses of the global heap collections (signature ``GCOL``, version 1)."""
    found, at = [], data.find(b"GCOL")
    while at >= 0:
        if data[at + 4] == 1:
            found.append(at)
        at = data.find(b"GCOL", at + 1)
    return found


def zero_every_heap(data: bytearray) -> bytes:
    """Zero the objects of every global heap collection: the first object becomes a free-space
    object of size 0, on which HDF5 2.0 loops."""
    for at in heap_collections(data):
        size = int.from_bytes(data[at + 8:at + 16], "little")
        data[at + 16:at + size] = bytes(size - 16)
    return bytes(data)


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum HDF5 puts on version-2 metadata."""
    M = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & M

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & M
    at = 0
    while n - at > 12:
        a = (a + int.from_bytes(data[at:at + 4], "little")) & M
        b = (b + int.from_bytes(data[at + 4:at + 8], "little")) & M
        c = (c + int.from_bytes(data[at + 8:at + 12], "little")) & M
        a = (a - c) & M
        a ^= rot(c, 4)
        c = (c + b) & M
        b = (b - a) & M
        b ^= rot(a, 6)
        a = (a + c) & M
        c = (c - b) & M
        c ^= rot(b, 8)
        b = (b + a) & M
        a = (a - c) & M
        a ^= rot(c, 16)
        c = (c + b) & M
        b = (b - a) & M
        b ^= rot(a, 19)
        a = (a + c) & M
        c = (c - b) & M
        c ^= rot(b, 4)
        b = (b + a) & M
        at += 12
    tail = data[at:] + bytes(12 - (n - at))
    if n - at == 0:
        return c
    a = (a + int.from_bytes(tail[0:4], "little")) & M
    b = (b + int.from_bytes(tail[4:8], "little")) & M
    c = (c + int.from_bytes(tail[8:12], "little")) & M
    c ^= b
    c = (c - rot(b, 14)) & M
    a ^= c
    a = (a - rot(c, 11)) & M
    b ^= a
    b = (b - rot(a, 25)) & M
    c ^= b
    c = (c - rot(b, 16)) & M
    a ^= c
    a = (a - rot(c, 4)) & M
    b ^= a
    b = (b - rot(a, 14)) & M
    c ^= b
    c = (c - rot(b, 24)) & M
    return c


def reseal_object_header(data: bytearray, inside: int) -> None:
    """Recompute the checksum of the version-2 object header block (``OHDR`` chunk 0 or an
    ``OCHK`` continuation block) that holds byte ``inside``."""
    start = max(data.rfind(b"OHDR", 0, inside), data.rfind(b"OCHK", 0, inside))
    if data[start:start + 4] == b"OHDR":
        flags = data[start + 5]
        at = start + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 0x03)
        end = at + width + int.from_bytes(data[at:at + width], "little")
    else:  # the continuation message that points here gives the block's length
        pointer = data.index(start.to_bytes(8, "little"))
        end = start + int.from_bytes(data[pointer + 8:pointer + 16], "little") - 4
    assert start < inside < end
    data[end:end + 4] = lookup3(bytes(data[start:end])).to_bytes(4, "little")


def vlen_length_anywhere(name: bytes, value: bytes, length: int):
    """Like :func:`vlen_attribute_length`, wherever the collection holding ``value`` lies; a
    version-2 object header gets its checksum recomputed, so HDF5 reads the damaged value."""
    def fn(data: bytearray) -> bytes:
        at = data.index(name)
        for heap in heap_collections(data):
            reference = len(value).to_bytes(4, "little") + heap.to_bytes(8, "little")
            hit = data.find(reference, at)
            if hit >= 0:
                data[hit:hit + 4] = length.to_bytes(4, "little")
                if data.rfind(b"OHDR", 0, hit) >= 0:
                    reseal_object_header(data, hit)
                return bytes(data)
        raise ValueError(f"no vlen reference of attribute {name!r} found")
    return fn


def flip_at(offset: int, mask: int = 0xFF):
    def fn(data: bytearray) -> bytes:
        data[offset] ^= mask
        return bytes(data)
    return fn


def flip_in_dataset(path: str, byte: int, mask: int = 0xFF):
    """Flip bits ``mask`` of one byte inside the stored (uncompressed) raw data of ``path``."""
    def build(target: Path, bases: Bases) -> None:
        with h5py.File(bases.plain, "r") as f:
            start = dataset_byte_ranges(f[path])[0][0]
        data = bytearray(bases.plain.read_bytes())
        data[start + byte] ^= mask
        target.write_bytes(bytes(data))
    return build


def dataset_byte_ranges(ds: h5py.Dataset) -> list[tuple[int, int]]:
    """File byte ranges (start, stop) holding the dataset's raw data (contiguous or chunked)."""
    offset = ds.id.get_offset()
    if offset is not None:
        return [(offset, offset + ds.id.get_storage_size())]
    ranges = []
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        ranges.append((info.byte_offset, info.byte_offset + info.size))
    return ranges


def replace_metadata(text: bytes):
    def fn(f: h5py.File) -> None:
        replace(f, "/metadata", data=np.frombuffer(text, np.uint8))
    return fn


def edit_metadata(edit: Callable[[dict], None]):
    def fn(f: h5py.File) -> None:
        meta = json.loads(bytes(f["/metadata"][()]).decode("utf-8"))
        edit(meta)
        replace(f, "/metadata", data=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))
    return fn


def set_attr(obj: str, name: str, value):
    def fn(f: h5py.File) -> None:
        if value is None:
            del f[obj].attrs[name]
        else:
            f[obj].attrs[name] = value
    return fn


def declared_only(path: str, shape, dtype, chunks, *, offsets: Optional[dict] = None):
    """Replace ``path`` by a chunked dataset that declares ``shape`` but stores nothing."""
    def fn(f: h5py.File) -> None:
        replace(f, path, shape=shape, maxshape=tuple(None for _ in shape), dtype=dtype, chunks=chunks)
        for opath, values in (offsets or {}).items():
            replace(f, opath, data=np.asarray(values, np.int64), maxshape=(None,), chunks=True)
    return fn


def with_filter(path: str, filter_id: int, values=()):
    """Rewrite ``path`` through a low-level create with ``filter_id`` in its pipeline."""
    def fn(f: h5py.File) -> None:
        data = f[path][()]
        del f[path]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((max(1, data.shape[0]), *data.shape[1:]))
        dcpl.set_filter(filter_id, h5py.h5z.FLAG_OPTIONAL, tuple(values))
        space = h5py.h5s.create_simple(data.shape, (h5py.h5s.UNLIMITED, *data.shape[1:]))
        h5py.h5d.create(f.id, path.encode(), h5py.h5t.py_create(data.dtype), space, dcpl=dcpl)
        f[path][...] = data
    return fn


def nested_groups(depth: int):
    def fn(f: h5py.File) -> None:
        group = f.create_group("extra")
        for i in range(depth):
            group = group.create_group("g")
    return fn


def ids(values: list[str]):
    def fn(f: h5py.File) -> None:
        encoded = [v.encode("utf-8", "surrogateescape") for v in values]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        offsets[1:] = np.cumsum([len(e) for e in encoded])
        replace(f, "/records/id/data", data=np.frombuffer(b"".join(encoded), np.uint8), maxshape=(None,), chunks=True)
        replace(f, "/records/id/offsets", data=offsets, maxshape=(None,), chunks=True)
    return fn


def edit_record(index: int, **changes):
    def edit(records: list) -> None:
        for key, value in changes.items():
            setattr(records[index], key, value(records[index]) if callable(value) else value)
    return edit


def _nested_dtype(depth: int) -> np.dtype:
    dtype = np.dtype("<i4")
    for level in range(depth):
        dtype = np.dtype([(f"l{level}", dtype)])
    return dtype


def _virtual(f: h5py.File, path: str, source: str) -> None:
    n = f[path].shape[0]
    layout = h5py.VirtualLayout(shape=(n,), dtype="<f4")
    layout[:] = h5py.VirtualSource(source, "data", shape=(n,))
    del f[path]
    f.create_virtual_dataset(path, layout, fillvalue=0)


BASE_IDS = [f"rec-{i:06d}" for i in range(6)]

# -- the table ----------------------------------------------------------------------------------
KINDS: list[HostileCase] = [
    # not HDF5 at all
    HostileCase("empty-zero-bytes", literal(b""), "NF-F001", "NF-F001", "not-hdf5"),
    HostileCase("not-hdf5-text", literal(b"patient,finding\nDoe,pneumonia\n" * 20), "NF-F001", "NF-F001", "not-hdf5"),
    HostileCase("not-hdf5-zip", literal(b"PK\x03\x04" + bytes(200)), "NF-F001", "NF-F001", "not-hdf5"),
    HostileCase("not-hdf5-pickle", literal(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94."),
                "NF-F001", "NF-F001", "not-hdf5"),
    HostileCase("hdf5-signature-only", literal(b"\x89HDF\r\n\x1a\n"), "NF-F001", "NF-F001", "not-hdf5"),
    HostileCase("hdf5-signature-then-zeros", literal(b"\x89HDF\r\n\x1a\n" + bytes(4096)), "NF-F001", "NF-F001", "not-hdf5"),
    # truncation at many points
    *[HostileCase(f"truncated-at-{int(fr * 1000):04d}permille", raw(truncate_at(fr)), "NF-F001", "NF-F001", "truncated")
      for fr in (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999)],
    HostileCase("truncated-last-byte", raw(lambda d: bytes(d[:-1])), "NF-F001", "NF-F001", "truncated"),
    # byte flips in the superblock and in data
    HostileCase("flip-signature", raw(flip_at(1)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-superblock-version", raw(flip_at(8)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-size-of-offsets", raw(flip_at(13)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-eof-address", raw(flip_at(46, 0x10)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-root-header-address", raw(flip_at(70, 0x10)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-btree-signature", raw(flip_signature(b"TREE", 1)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-local-heap-signature", raw(flip_signature(b"HEAP", 2)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-symbol-node-signature", raw(flip_signature(b"SNOD", 3)), "NF-F001", "NF-F001", "flip-header"),
    HostileCase("flip-data-patch-features", flip_in_dataset("/patches/features", 5), "ok", "NF-I001", "flip-data"),
    HostileCase("flip-data-entity-types", flip_in_dataset("/entities/type", 3), "ok", "NF-I001", "flip-data"),
    HostileCase("flip-data-report-text", flip_in_dataset("/records/report/data", 7, 0x01), "ok", "NF-I001", "flip-data"),
    HostileCase("flip-data-offsets", flip_in_dataset("/patches/offsets", 8 * 3 + 7), "NF-O001", "NF-O001", "flip-data"),
    # offsets
    HostileCase("offsets-non-monotone", mutate(set_values("/patches/offsets", 3, 1)), "NF-O001", "NF-O001", "offsets"),
    HostileCase("offsets-negative", mutate(set_values("/entities/offsets", 2, -5)), "NF-O001", "NF-O001", "offsets"),
    HostileCase("offsets-past-end", mutate(set_values("/patch_edges/offsets", -1, 10 ** 6)), "NF-O001", "NF-O001", "offsets"),
    HostileCase("offsets-not-zero-based", mutate(set_values("/relations/offsets", 0, 1)), "NF-O001", "NF-O001", "offsets"),
    HostileCase("offsets-short", mutate(lambda f: replace(f, "/patches/offsets", data=f["/patches/offsets"][:-2])),
                "NF-O001", "NF-O001", "offsets"),
    HostileCase("offsets-wrap-int64", mutate(wrapping_offsets("/patches/offsets")), "NF-O001", "NF-O001", "offsets",
                "steps of 2^62 that wrap around int64: every difference looks non-negative"),
    HostileCase("offsets-string-past-end", mutate(set_values("/records/report/offsets", -1, BOMB)), "NF-O001", "NF-O001", "offsets"),
    # indices out of range (semantic: the writer is given them, so hashes agree)
    HostileCase("edge-index-out-of-range", lambda p, b: write_records(p, edit_record(
        1, patch_edges=lambda r: np.array([[0, r.num_patches]], np.int32))),
        "ok", "NF-R003", "indices"),
    HostileCase("edge-index-negative", lambda p, b: write_records(p, edit_record(2, patch_edges=np.array([[-1, 0]], np.int32))),
                "ok", "NF-R003", "indices"),
    HostileCase("relation-index-out-of-range", lambda p, b: write_records(p, edit_record(
        0, relations=lambda r: np.array([[0, r.num_entities + 7]], np.int32), relation_types=np.array([0], np.int16))),
        "ok", "NF-R004", "indices"),
    HostileCase("bridge-patch-out-of-range", lambda p, b: write_records(p, edit_record(3, bridge=lambda r: (r.num_patches, 0))),
                "ok", "NF-R005", "indices"),
    HostileCase("bridge-entity-negative", lambda p, b: write_records(p, edit_record(4, bridge=(0, -3))), "ok", "NF-R005", "indices"),
    HostileCase("position-outside-grid", lambda p, b: write_records(p, edit_record(
        0, patch_positions=lambda r: np.where(np.arange(r.num_patches)[:, None] == 0, 10 ** 6, r.patch_positions).astype(np.int32))),
        "ok", "NF-R007", "indices"),
    # shapes that disagree
    HostileCase("shape-feature-dim", mutate(lambda f: replace(
        f, "/patches/features", data=np.zeros((f["/patches/features"].shape[0], 5), "<f4"))),
        "NF-S003", "NF-S003", "shapes"),
    HostileCase("shape-scores-rows", mutate(lambda f: replace(f, "/patches/scores", data=f["/patches/scores"][:-1])),
                "NF-S003", "NF-S003", "shapes"),
    HostileCase("shape-labels-rows", mutate(lambda f: replace(f, "/records/labels", data=f["/records/labels"][:-1])),
                "NF-R001", "NF-R001", "shapes"),
    HostileCase("shape-sha256-width", mutate(lambda f: replace(f, "/records/sha256", data=np.zeros((6, 16), np.uint8))),
                "NF-S003", "NF-S003", "shapes"),
    HostileCase("shape-scalar-offsets", mutate(lambda f: replace(f, "/entities/offsets", data=np.int64(0))),
                "NF-S003", "NF-S003", "shapes"),
    # dimension and size bombs (declared, never stored)
    HostileCase("size-bomb-patch-rows", mutate(declared_only("/patches/features", (BOMB, 4), "<f4", (1024, 4))),
                "NF-H006", "NF-H006", "bombs", "rows declared 2^60, nothing stored"),
    HostileCase("size-bomb-record-count", mutate(declared_only("/records/id/offsets", (1 << 33,), "<i8", (4096,))),
                "NF-H006", "NF-H006", "bombs", "2^33 offsets of fill value 0: 8 records' worth of bytes, 64 GiB declared"),
    HostileCase("size-bomb-record-slice", mutate(lambda f: (
        declared_only("/patches/scores", (BOMB,), "<f4", (4096,))(f),
        declared_only("/patches/features", (BOMB, 4), "<f4", (1024, 4))(f),
        declared_only("/patches/positions", (BOMB, 2), "<i4", (1024, 2))(f),
        replace(f, "/patches/offsets", data=np.array([0, 1, 2, 3, 4, 5, BOMB], np.int64), maxshape=(None,), chunks=True))),
        "NF-H006", "NF-H006", "bombs", "one record owns 2^60 rows"),
    HostileCase("size-bomb-string", mutate(lambda f: (
        declared_only("/records/report/data", (BOMB,), "|u1", (4096,))(f),
        replace(f, "/records/report/offsets", data=np.array([0, 1, 2, 3, 4, 5, BOMB], np.int64), maxshape=(None,), chunks=True))),
        "NF-H006", "NF-H006", "bombs", "one report declared 2^60 bytes"),
    HostileCase("size-bomb-id-offsets", mutate(declared_only("/records/id/offsets", (BOMB,), "<i8", (4096,))),
                "NF-H006", "NF-H006", "bombs"),
    HostileCase("size-bomb-metadata", mutate(declared_only("/metadata", (BOMB,), "|u1", (4096,))), "NF-H006", "NF-H006", "bombs"),
    HostileCase("dimension-bomb-feature-dim", mutate(lambda f: (
        edit_metadata(lambda m: m.update(patch_feature_dim=BOMB))(f))), "NF-M001", "NF-M001", "bombs",
        "metadata declares a 2^60-wide feature vector"),
    HostileCase("dimension-bomb-trailing", mutate(declared_only("/patches/features", (30, BOMB), "<f4", (1, 1024))),
                "NF-S003", "NF-S003", "bombs"),
    # NaN and Inf
    HostileCase("nan-patch-features", lambda p, b: write_records(p, edit_record(
        1, patch_features=lambda r: np.where(np.arange(4) == 2, np.nan, r.patch_features).astype(np.float32))),
        "ok", "NF-R013", "non-finite"),
    HostileCase("inf-patch-scores", lambda p, b: write_records(p, edit_record(
        2, patch_scores=lambda r: np.full(r.num_patches, np.inf, np.float32))), "ok", "NF-R013", "non-finite"),
    HostileCase("report-source-out-of-range", mutate(set_values("/records/report_source", 1, 7)), "ok", "NF-R015", "indices"),
    HostileCase("inf-labels", lambda p, b: write_records(p, edit_record(0, labels=np.array([-np.inf], np.float32))),
                "ok", "NF-R016", "non-finite"),
    # wrong dtypes
    HostileCase("dtype-vlen-string-features", mutate(lambda f: replace(
        f, "/patches/features", data=np.array(["x"] * f["/patches/features"].shape[0], dtype=h5py.string_dtype()))),
        "NF-H002", "NF-H002", "dtypes"),
    HostileCase("dtype-vlen-int-offsets", mutate(lambda f: replace(
        f, "/patches/offsets", shape=(7,), dtype=h5py.vlen_dtype(np.int64))), "NF-H002", "NF-H002", "dtypes"),
    HostileCase("dtype-opaque-scores", mutate(lambda f: replace(
        f, "/patches/scores", data=np.zeros(f["/patches/scores"].shape[0], "V4"))), "NF-H002", "NF-H002", "dtypes"),
    HostileCase("dtype-compound-labels", mutate(lambda f: replace(
        f, "/records/labels", data=np.zeros((6, 1), [("a", "<f4")]))), "NF-H002", "NF-H002", "dtypes"),
    HostileCase("dtype-object-reference", mutate(lambda f: replace(
        f, "/entities/type", shape=(f["/entities/type"].shape[0],), dtype=h5py.ref_dtype)), "NF-H002", "NF-H002", "dtypes"),
    HostileCase("dtype-float64-features", mutate(lambda f: replace(
        f, "/patches/features", data=f["/patches/features"][()].astype("<f8"))), "NF-S002", "NF-S002", "dtypes"),
    HostileCase("dtype-big-endian-scores", mutate(lambda f: replace(
        f, "/patches/scores", data=f["/patches/scores"][()].astype(">f4"))), "NF-S002", "NF-S002", "dtypes"),
    HostileCase("dtype-float-offsets", mutate(lambda f: replace(
        f, "/patches/offsets", data=f["/patches/offsets"][()].astype("<f8"))), "NF-S002", "NF-S002", "dtypes"),
    HostileCase("dtype-fixed-string-metadata", mutate(lambda f: replace(
        f, "/metadata", data=np.array([b"{}"] * 4, "S2"))), "NF-S002", "NF-S002", "dtypes"),
    # filters
    HostileCase("filter-unknown-id", mutate(with_filter("/patches/scores", 32123, (1, 2))), "NF-H005", "NF-H005", "filters"),
    HostileCase("filter-scaleoffset-lossy", mutate(lambda f: replace(
        f, "/patches/scores", data=f["/patches/scores"][()], scaleoffset=2)), "NF-H005", "NF-H005", "filters"),
    HostileCase("filter-nbit", mutate(with_filter("/entities/type", h5py.h5z.FILTER_NBIT)), "NF-H005", "NF-H005", "filters"),
    # links and foreign storage
    HostileCase("external-link-dataset", mutate(lambda f: (f.__delitem__("/patches/features"),
                                                           f.__setitem__("/patches/features", h5py.ExternalLink("/etc/passwd", "/x")))),
                "NF-H003", "NF-H003", "links"),
    HostileCase("external-link-group", mutate(lambda f: (f.__delitem__("/relations"),
                                                         f.__setitem__("/relations", h5py.ExternalLink("other.h5", "/relations")))),
                "NF-H003", "NF-H003", "links"),
    HostileCase("soft-link-out-of-file", mutate(lambda f: (f.__delitem__("/patches/scores"),
                                                           f.__setitem__("/patches/scores", h5py.SoftLink("/../../etc/passwd")))),
                "NF-H003", "NF-H003", "links"),
    HostileCase("soft-link-internal", mutate(lambda f: (f.__delitem__("/entities/assertion"),
                                                        f.__setitem__("/entities/assertion", h5py.SoftLink("/records/report_source")))),
                "NF-H003", "NF-H003", "links"),
    HostileCase("virtual-dataset-other-file", mutate(lambda f: _virtual(f, "/patches/scores", "/tmp/neural-format-hostile-source.h5"),
                                                        libver=("earliest", "latest")),
                "NF-H004", "NF-H004", "links"),
    HostileCase("external-raw-storage", mutate(lambda f: replace(
        f, "/patches/scores", shape=(f["/patches/scores"].shape[0],), dtype="<f4",
        external=[("/etc/hostname", 0, h5py.h5f.UNLIMITED)])), "NF-H004", "NF-H004", "links",
        "raw data lives in another file, like a virtual dataset"),
    # versions
    HostileCase("version-missing", mutate(set_attr("/", "format_version", None)), "NF-V001", "NF-V001", "versions"),
    HostileCase("version-newer-major", mutate(set_attr("/", "format_version", "2.0.0")), "NF-V003", "NF-V003", "versions"),
    HostileCase("version-older-major", mutate(set_attr("/", "format_version", "0.9.0")), "NF-V004", "NF-V004", "versions"),
    HostileCase("version-garbage", mutate(set_attr("/", "format_version", "1.0.0; rm -rf /")), "NF-V001", "NF-V001", "versions"),
    HostileCase("version-not-a-string", mutate(set_attr("/", "format_version", np.arange(3))), "NF-V001", "NF-V001", "versions"),
    HostileCase("version-huge-string", mutate(set_attr("/", "format_version", "1." * 30000 + "0")), "NF-V001", "NF-V001", "versions"),
    HostileCase("format-name-wrong", mutate(set_attr("/", "format", "anndata")), "NF-V001", "NF-V001", "versions"),
    # attributes, metadata, nesting
    HostileCase("attr-huge-encoding", mutate(set_attr("/", "encoding-type", "x" * 60000)), "NF-E001", "NF-E001", "attributes"),
    HostileCase("attr-vlen-length-3gib", raw(vlen_attribute_length(b"format_version", 0xBFFFFFF0)), "NF-E001", "NF-E001",
                "attributes", "HDF5 alone touches 3 GiB before failing; heap_guard refuses it first"),
    HostileCase("global-heap-objects-zeroed", raw(zero_global_heap_tail), "NF-F001", "NF-F001", "attributes",
                "a zero-size free-space object: HDF5 2.0 loops forever parsing the heap; heap_guard refuses it"),
    HostileCase("global-heap-zeroed-base-address-garbage", raw(lambda d: zero_global_heap_tail(
        bytearray(flip_at(26, 0x50)(d)))), "NF-F001", "NF-F001", "attributes",
        "HDF5 ignores the superblock's base address; so must the heap check (atheris found this variant)"),
    HostileCase("chunk-never-written", mutate(unwritten_chunk("/patches/scores")), "NF-H006", "NF-H006", "bombs",
                "one chunk of the scores never written: HDF5 reads its rows as fill values (zeros)"),
    HostileCase("attr-compound-vlen-length-3gib", compound_vlen_format(0xBFFFFFF0), "NF-E001", "NF-E001", "attributes",
                "root 'format' as a compound whose string member declares 3 GiB: the guard follows compound members"),
    HostileCase("superblock3-global-heap-zeroed", latest_format(zero_every_heap), "NF-F001", "NF-F001", "attributes",
                "the zeroed heap in a libver-latest file (superblock 3, object header 2)"),
    HostileCase("superblock3-attr-vlen-length-3gib", latest_format(vlen_length_anywhere(
        b"format_version", b"1.0.0", 0xBFFFFFF0)), "NF-E001", "NF-E001", "attributes",
        "the 3 GiB vlen length in a libver-latest file (attribute message 3)"),
    HostileCase("group-attribute-heap-zeroed", group_attribute_heap_zeroed, "ok", "NF-E001", "attributes",
                "only the validator reads group attributes; heap_guard keeps HDF5 from looping on them"),
    HostileCase("attr-nested-compound-format", mutate(set_attr("/", "format", np.zeros(1, _nested_dtype(12)))),
                "NF-V001", "NF-V001", "attributes"),
    HostileCase("groups-nested-deep", mutate(nested_groups(300)), "ok", "NF-H006", "attributes",
                "300 nested groups under /extra: the reader never walks them; the validator stops at 32 levels"),
    HostileCase("groups-hard-link-cycle", mutate(lambda f: f.create_group("extra").__setitem__("loop", f["/"])),
                "ok", None, "attributes", "/extra/loop is a hard link back to the root: the walk must end"),
    HostileCase("metadata-deeply-nested-json", mutate(replace_metadata(b"[" * 200000 + b"]" * 200000)),
                "NF-M001", "NF-M001", "attributes"),
    HostileCase("metadata-not-json", mutate(replace_metadata(b"\xff\xfe{not json")), "NF-M001", "NF-M001", "attributes"),
    HostileCase("metadata-schema-violation", mutate(edit_metadata(lambda m: m.update(spatial_axes=7))), "NF-M001", "NF-M001", "attributes"),
    HostileCase("required-dataset-missing", mutate(lambda f: f.__delitem__("/patches/scores")), "NF-S001", "NF-S001", "structure"),
    HostileCase("group-replaced-by-dataset", mutate(lambda f: (f.__delitem__("/relations"),
                                                               f.create_dataset("/relations", data=np.zeros(3)))),
                "NF-S001", "NF-S001", "structure"),
    # record IDs
    HostileCase("ids-duplicate", mutate(ids(BASE_IDS[:5] + BASE_IDS[:1])), "ok", "NF-R002", "ids"),
    HostileCase("ids-empty", mutate(ids(BASE_IDS[:5] + [""])), "ok", "NF-R002", "ids"),
    HostileCase("ids-not-utf8", mutate(ids(BASE_IDS[:5] + ["rec-\udcff"])), "NF-R014", "NF-R014", "ids"),
]


def generate(out: Path, names: Optional[list[str]] = None, kinds: Optional[list[HostileCase]] = None) -> dict[str, dict]:
    """Write every kind (or those in ``names``) into ``out``; return the expectation table."""
    out.mkdir(parents=True, exist_ok=True)
    bases = make_bases(out / "_bases")
    table = {}
    for case in (KINDS if kinds is None else kinds):
        if names and case.name not in names:
            continue
        target = out / f"{case.name}.h5"
        if target.exists():
            target.unlink()
        case.build(target, bases)
        table[case.name] = {"file": target.name, "reader": case.reader, "validator": case.validator,
                            "family": case.family}
    (out / "expected.json").write_text(json.dumps(table, indent=1))
    return table


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", nargs="*", help="kind names to generate")
    args = parser.parse_args(argv)
    table = generate(args.out, args.only)
    print(f"{len(table)} hostile kinds written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
