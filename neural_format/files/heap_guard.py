"""Check the global heap behind attributes before HDF5 reads them (NF-F001, NF-E001).

Variable-length string (and sequence) attributes store ``(length, collection address, object
index)``; the values live in a *global heap collection* (``GCOL``). When HDF5 2.0 reads such an
attribute it loads the whole collection, and two kinds of damage defeat it before any Python code
can look:

* a free-space object of size 0 inside the collection makes its parser loop forever;
* a declared length larger than the heap object makes it allocate and fill that many bytes (up
  to 4 GiB) before it reports the mismatch.

Every reader reads the root attributes first, so this module walks the file's own bytes: the
superblock (versions 0 to 3, 8-byte offsets and lengths) to the root object header (version 1,
or version 2 with its ``OCHK`` continuation blocks), its attribute messages (versions 1 to 3) of
variable-length type, and each collection they point to, checking it the way HDF5 will parse it.

It works on any seekable binary source (a path's file, ``io.BytesIO``, an fsspec file). A shape
it cannot follow where an attribute could hide (other address sizes, shared attribute messages,
attributes in dense storage, a header it cannot walk) is refused with NF-F001 rather than left to
HDF5: a file the guard cannot check is a file HDF5 might hang on. Files written by the SDK
(``libver=("earliest", "v108")``: superblock 0, object header 1, attribute message 1) and by
h5py with ``libver="latest"`` are understood. See docs/safety.md.
"""
from __future__ import annotations

import os
import struct
import weakref
from typing import BinaryIO, Iterator

from ..errors import NotAFileError, SchemaError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
UNDEFINED = 0xFFFFFFFFFFFFFFFF
MAX_MESSAGES = 4096
MAX_BLOCKS = 64
MAX_BLOCK_BYTES = 1 << 24
MAX_COLLECTION_BYTES = 1 << 28
HEAP_OBJECT_HEADER = 16  # index u16, reference count u16, reserved u32, size u64
VLEN_REFERENCE = 16  # length u32, collection address u64, object index u32
ATTRIBUTE_MESSAGE = 0x000C
CONTINUATION_MESSAGE = 0x0010
ATTRIBUTE_INFO_MESSAGE = 0x0015
SHARED_MESSAGE_FLAG = 0x02
VLEN_CLASS = 9


class _Unguardable(Exception):
    """The bytes do not have a shape this check can follow; the caller refuses the file."""


def _refuse(what: str, where: str) -> NotAFileError:
    return NotAFileError("NF-F001", f"HDF5 structure the attribute-heap safety check cannot follow: {what}",
                         location=where, expected="superblock 0-3 with 8-byte addresses, object header 1 or 2, "
                                                  "compact unshared attribute messages", found=what)


def _read(handle: BinaryIO, at: int, count: int, size: int) -> bytes:
    if at < 0 or count < 0 or at + count > size:
        raise _Unguardable(f"{count} bytes at byte {at} lie outside the {size}-byte file")
    handle.seek(at)
    data = handle.read(count)
    if len(data) != count:
        raise _Unguardable(f"short read at byte {at}")
    return data


def _root_header_address(handle: BinaryIO, size: int) -> int:
    head = _read(handle, 0, min(size, 72), size)
    if head[:8] != SIGNATURE or len(head) < 48:
        raise _Unguardable("no HDF5 superblock at byte 0")
    version = head[8]
    if version in (0, 1):
        if head[13] != 8 or head[14] != 8:
            raise _Unguardable(f"{head[13]}-byte offsets / {head[14]}-byte lengths")
        # the stored base address is not used: HDF5 takes the superblock's own position (0) instead
        at = 64 if version == 0 else 68  # root symbol table entry: link name offset, then header address
        if len(head) < at + 8:
            raise _Unguardable("superblock truncated")
        return struct.unpack_from("<Q", head, at)[0]
    if version in (2, 3):
        if head[9] != 8 or head[10] != 8:
            raise _Unguardable(f"{head[9]}-byte offsets / {head[10]}-byte lengths")
        return struct.unpack_from("<Q", head, 36)[0]  # base, extension, EOF, then the root header
    raise _Unguardable(f"superblock version {version}")


def _v1_messages(handle: BinaryIO, address: int, size: int) -> Iterator[tuple[int, int, bytes]]:
    prefix = _read(handle, address, 16, size)
    _version, _, count, _, header_size = struct.unpack_from("<BBHII", prefix)
    if count > MAX_MESSAGES:
        raise _Unguardable(f"{count} header messages")
    blocks = [(address + 16, header_size)]
    seen = 0
    while blocks and seen < count:
        start, length = blocks.pop(0)
        if length > MAX_BLOCK_BYTES:
            raise _Unguardable(f"a {length}-byte header block")
        block = _read(handle, start, length, size)
        at = 0
        while at + 8 <= len(block) and seen < count:
            kind, length_, flags = struct.unpack_from("<HHB", block, at)
            body = block[at + 8:at + 8 + length_]
            if len(body) != length_:
                raise _Unguardable("a header message runs past its block")
            seen += 1
            if kind == CONTINUATION_MESSAGE:
                _follow_continuation(body, blocks)
            else:
                yield kind, flags, body
            at += 8 + length_


def _follow_continuation(body: bytes, blocks: list) -> None:
    """Queue the (address, length) a header continuation message points to, bounded."""
    if len(body) < 16:
        raise _Unguardable("short continuation message")
    blocks.append(struct.unpack_from("<QQ", body))
    if len(blocks) > MAX_BLOCKS:
        raise _Unguardable("too many header continuation blocks")


def _v2_messages(handle: BinaryIO, address: int, size: int) -> Iterator[tuple[int, int, bytes]]:
    prefix = _read(handle, address, 6, size)
    flags = prefix[5]
    at = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    chunk0 = int.from_bytes(_read(handle, at, width, size), "little")
    tracked = bool(flags & 0x04)  # messages carry a 2-byte creation order
    blocks = [(at + width, chunk0)]
    first = True
    done = 0
    while blocks:
        start, length = blocks.pop(0)
        if length > MAX_BLOCK_BYTES:
            raise _Unguardable(f"a {length}-byte header block")
        if not first:
            head = _read(handle, start, length, size)
            if head[:4] != b"OCHK" or length < 8:
                raise _Unguardable("a header continuation block without its OCHK signature")
            block = head[4:-4]
        else:
            block = _read(handle, start, length, size)
        first = False
        step = 6 if tracked else 4
        pos = 0
        while pos + step <= len(block):
            kind, length_, mflags = struct.unpack_from("<BHB", block, pos)
            body = block[pos + step:pos + step + length_]
            if len(body) != length_:
                raise _Unguardable("a header message runs past its block")
            done += 1
            if done > MAX_MESSAGES:
                raise _Unguardable("too many header messages")
            if kind == CONTINUATION_MESSAGE:
                _follow_continuation(body, blocks)
            elif kind:
                yield kind, mflags, body
            pos += step + length_


def _messages(handle: BinaryIO, address: int, size: int) -> Iterator[tuple[int, int, bytes]]:
    """(type, flags, body) of every message in the object header at ``address``."""
    head = _read(handle, address, 5, size)
    if head[:4] == b"OHDR":
        if head[4] != 2:
            raise _Unguardable(f"object header version {head[4]}")
        return _v2_messages(handle, address, size)
    if head[0] == 1:
        return _v1_messages(handle, address, size)
    raise _Unguardable(f"object header version byte {head[0]}")


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _unpadded(n: int) -> int:
    return n


def _element_count(space: bytes) -> int:
    """Elements of a dataspace message (versions 1 and 2)."""
    if len(space) < 4:
        raise _Unguardable("dataspace message too short")
    version, rank = space[0], space[1]  # byte 2 holds flags: the layout does not depend on them
    if version == 1:
        dims_at = 8
        kind = 1 if rank else 0
    elif version == 2:
        dims_at = 4
        kind = space[3]
    else:
        raise _Unguardable(f"dataspace version {version}")
    if kind == 2:
        return 0
    if len(space) < dims_at + 8 * rank:
        raise _Unguardable("dataspace message too short")
    count = 1
    for extent in struct.unpack_from(f"<{rank}Q", space, dims_at):
        count *= extent
    return count


FIXED_PROPERTY_BYTES = {0: 4, 1: 12, 2: 2, 3: 0, 4: 4, 7: 0}  # fixed-point, float, time, string, bitfield, reference
MAX_ARRAY_ELEMENTS = 4096
MAX_TYPE_DEPTH = 32


def _type_size(dtype: bytes, at: int) -> int:
    if at + 8 > len(dtype):
        raise _Unguardable("datatype message too short")
    return struct.unpack_from("<I", dtype, at + 4)[0]


def _name_end(dtype: bytes, at: int, padded: bool) -> int:
    end = dtype.find(b"\x00", at)
    if end < 0:
        raise _Unguardable("unterminated name in a datatype")
    return at + _pad8(end + 1 - at) if padded else end + 1


def _vlen_slots(dtype: bytes, at: int = 0, depth: int = 0) -> tuple[int, list[tuple[int, int]]]:
    """``(end, slots)`` of the datatype message starting at ``at``: where it ends, and the
    ``(byte offset in one element, bytes per declared unit)`` of every variable-length value an
    element holds, through compound members and array elements."""
    if depth > MAX_TYPE_DEPTH:
        raise _Unguardable("datatype nested too deeply")
    if at + 8 > len(dtype):
        raise _Unguardable("datatype message too short")
    kind, version = dtype[at] & 0x0F, dtype[at] >> 4
    bits = dtype[at + 1] | dtype[at + 2] << 8 | dtype[at + 3] << 16
    size = _type_size(dtype, at)
    body = at + 8
    if kind in FIXED_PROPERTY_BYTES:
        return body + FIXED_PROPERTY_BYTES[kind], []
    if kind == 5:  # opaque: a NUL-padded tag whose length is in the bit field
        return body + (bits & 0xFF), []
    if kind == 9:  # variable length: its base type follows
        end, inner = _vlen_slots(dtype, body, depth + 1)
        if inner:
            raise _Unguardable("a variable-length type inside a variable-length type")
        unit = 1 if bits & 0x0F == 1 else max(1, _type_size(dtype, body))
        return end, [(0, unit)]
    if kind == 8:  # enumeration: base type, names, values; never variable-length
        members = bits & 0xFFFF
        end, _ = _vlen_slots(dtype, body, depth + 1)
        base_size = _type_size(dtype, body)
        for _ in range(members):
            end = _name_end(dtype, end, padded=version < 3)
        return end + members * base_size, []
    if kind == 6:  # compound
        members = bits & 0xFFFF
        slots: list[tuple[int, int]] = []
        end = body
        offset_bytes = 1 if size < 1 << 8 else 2 if size < 1 << 16 else 3 if size < 1 << 24 else 4
        for _ in range(members):
            end = _name_end(dtype, end, padded=version < 3)
            if version < 3:
                if end + 4 > len(dtype):
                    raise _Unguardable("datatype message too short")
                offset = struct.unpack_from("<I", dtype, end)[0]
                end += 4
                if version == 1:
                    dims = dtype[end] if end < len(dtype) else 0
                    end += 28  # dimensionality, reserved, permutation, reserved, four dimension sizes
                    if dims:
                        member_end, inner = _vlen_slots(dtype, end, depth + 1)
                        if inner:
                            raise _Unguardable("a version-1 array member holding variable-length data")
                        end = member_end
                        continue
            else:
                offset = int.from_bytes(dtype[end:end + offset_bytes], "little")
                end += offset_bytes
            end, inner = _vlen_slots(dtype, end, depth + 1)
            slots += [(offset + o, unit) for o, unit in inner]
        return end, slots
    if kind == 10:  # array
        if body >= len(dtype):
            raise _Unguardable("datatype message too short")
        rank = dtype[body]
        dims_at = body + (4 if version == 2 else 1)
        if dims_at + 4 * rank > len(dtype):
            raise _Unguardable("datatype message too short")
        count = 1
        for extent in struct.unpack_from(f"<{rank}I", dtype, dims_at):
            count *= extent
        base_at = dims_at + 4 * rank * (2 if version == 2 else 1)  # version 2 keeps a permutation too
        end, inner = _vlen_slots(dtype, base_at, depth + 1)
        if inner and count > MAX_ARRAY_ELEMENTS:
            raise _Unguardable(f"an array of {count} variable-length values")
        base_size = _type_size(dtype, base_at)
        return end, [(k * base_size + o, unit) for k in range(count if inner else 0) for o, unit in inner]
    raise _Unguardable(f"datatype class {kind}")


def _vlen_references(body: bytes, where: str) -> Iterator[tuple[str, int, int, int]]:
    """(name, declared bytes, collection address, object index) of each element of a vlen attribute."""
    if len(body) < 8:
        raise _Unguardable("attribute message too short")
    version = body[0]
    name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
    if version == 1:
        at = 8
        pad = _pad8
    elif version in (2, 3):
        if body[1] & 0x03:
            raise _Unguardable("an attribute with a shared datatype or dataspace")
        at = 8 if version == 2 else 9
        pad = _unpadded
    else:
        raise _Unguardable(f"attribute message version {version}")
    name = body[at:at + name_size].split(b"\x00", 1)[0].decode("utf-8", "replace")
    at += pad(name_size)
    dtype = body[at:at + type_size]
    at += pad(type_size)
    space = body[at:at + space_size]
    at += pad(space_size)
    _, slots = _vlen_slots(dtype)
    if not slots:
        return
    element_size = _type_size(dtype, 0)
    elements = _element_count(space)
    if at + element_size * elements > len(body):
        raise _Unguardable(f"attribute {name!r} declares more elements than its message holds")
    for k in range(elements):
        for offset, unit in slots:
            where_ = at + element_size * k + offset
            if where_ + VLEN_REFERENCE > len(body):
                raise _Unguardable(f"attribute {name!r}: a variable-length value lies outside its element")
            length, address, index = struct.unpack_from("<IQI", body, where_)
            yield name, length * unit, address, index


def _check_collection(handle: BinaryIO, address: int, size: int, cache: dict) -> dict[int, int]:
    """Parse a collection as HDF5 does; return {object index: object size}; raise on damage."""
    if address in cache:
        return cache[address]
    where = f"global heap collection at byte {address}"
    head = _read(handle, address, 16, size)
    if head[:4] != b"GCOL":
        raise NotAFileError("NF-F001", "an attribute points to no global heap collection", location=where,
                            expected="GCOL signature", found=head[:4].hex(" "))
    collection_size = struct.unpack_from("<Q", head, 8)[0]
    if collection_size < 16 or address + collection_size > size or collection_size > MAX_COLLECTION_BYTES:
        raise NotAFileError("NF-F001", "global heap collection size is not sane", location=where,
                            expected=f"16 .. {min(size - address, MAX_COLLECTION_BYTES)} bytes",
                            found=collection_size)
    data = _read(handle, address, collection_size, size)
    objects: dict[int, int] = {}
    at = 16
    while at < collection_size:
        if at + HEAP_OBJECT_HEADER > collection_size:
            break  # HDF5 treats a tail too small for a header as free space
        index, _refs, _reserved, object_size = struct.unpack_from("<HHIQ", data, at)
        if index == 0:
            if object_size < HEAP_OBJECT_HEADER:
                # HDF5 advances by the free-space size itself: 0 would never advance
                raise NotAFileError("NF-F001", "global heap free-space object has a size the HDF5 library "
                                               "loops on", location=where, expected=">= 16 bytes", found=object_size)
            at += object_size
        else:
            step = HEAP_OBJECT_HEADER + _pad8(object_size)
            if at + step > collection_size:
                raise NotAFileError("NF-F001", "global heap object runs past its collection", location=where,
                                    expected=f"<= {collection_size - at} bytes", found=step)
            objects[index] = object_size
            at += step
    cache[address] = objects
    return objects


def _source_size(handle: BinaryIO) -> int:
    handle.seek(0, os.SEEK_END)
    return handle.tell()


def check_root_attribute_heap(handle: BinaryIO, size: int | None = None) -> None:
    """Raise NF-F001 / NF-E001 when the root attributes' heap would hang or flood HDF5.

    ``handle`` is any seekable binary file object; its position is restored.
    """
    try:
        position = handle.tell()
    except Exception:
        position = 0
    try:
        if size is None:
            size = _source_size(handle)
        try:
            address = _root_header_address(handle, size)
        except _Unguardable as exc:
            raise _refuse(str(exc), "/ (superblock)") from None
        check_attribute_heap(handle, size, address)
    finally:
        try:
            handle.seek(position)
        except Exception:
            pass


# file-like sources opened by the reader, by the name h5py gives their file (their repr)
_FILELIKE: "weakref.WeakValueDictionary[str, BinaryIO]" = weakref.WeakValueDictionary()


def remember_filelike(f, handle: BinaryIO) -> None:
    """Let :func:`check_object_attribute_heap` find the bytes of a file opened from ``handle``."""
    try:
        _FILELIKE[f.filename] = handle
    except TypeError:  # an object that takes no weak reference: its group attributes stay unchecked
        pass


def check_object_attribute_heap(obj) -> None:
    """The same check for any open h5py object, through its object header address.

    Called before an attribute value of ``obj`` is read. Raises NF-F001 / NF-E001.
    """
    import h5py
    try:
        filename = obj.file.filename
        address = h5py.h5o.get_info(obj.id).addr
    except Exception as exc:
        raise NotAFileError("NF-F001", f"object header unreadable: {type(exc).__name__}",
                            location=getattr(obj, "name", "/")) from None
    handle = _FILELIKE.get(filename)
    if handle is not None:
        position = handle.tell()
        try:
            _check_object(handle, _source_size(handle), address)
        finally:
            handle.seek(position)
        return
    if not filename or not os.path.isfile(filename):
        raise _refuse("a source whose bytes cannot be read back", getattr(obj, "name", "/"))
    with open(filename, "rb") as handle:
        _check_object(handle, os.fstat(handle.fileno()).st_size, address)


def _check_object(handle: BinaryIO, size: int, address: int) -> None:
    try:
        _root_header_address(handle, size)  # only superblock shapes we parse
    except _Unguardable as exc:
        raise _refuse(str(exc), "/ (superblock)") from None
    check_attribute_heap(handle, size, address)


def check_attribute_heap(handle: BinaryIO, size: int, address: int) -> None:
    """Check the vlen attributes in the object header at ``address`` and their heap."""
    cache: dict = {}
    where = f"object header at byte {address}"
    try:
        for kind, flags, body in _messages(handle, address, size):
            if kind == ATTRIBUTE_INFO_MESSAGE:
                if len(body) < 10:
                    raise _Unguardable("attribute info message too short")
                heap_at = 4 if body[1] & 0x01 else 2
                if struct.unpack_from("<Q", body, heap_at)[0] != UNDEFINED:
                    raise _Unguardable("attributes kept in dense storage (a fractal heap)")
                continue
            if kind != ATTRIBUTE_MESSAGE:
                continue
            if flags & SHARED_MESSAGE_FLAG:
                raise _Unguardable("a shared attribute message")
            for name, length, heap_address, index in _vlen_references(body, where):
                if length == 0 and heap_address == 0:
                    continue
                objects = _check_collection(handle, heap_address, size, cache)
                stored = objects.get(index)
                if stored is None or length > stored:
                    raise SchemaError("NF-E001", f"attribute {name!r} declares more bytes than its heap object "
                                                 "holds", location=f"@{name} ({where})",
                                      expected=f"<= {stored} bytes", found=f"{length} bytes")
    except _Unguardable as exc:
        raise _refuse(str(exc), where) from None
