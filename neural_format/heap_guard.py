"""Check the global heap behind the root attributes before HDF5 reads them (NF-F001, NF-E001).

Variable-length string attributes store ``(length, collection address, object index)``; the
strings live in a *global heap collection* (``GCOL``). When HDF5 2.0 reads such an attribute it
loads the whole collection, and two kinds of damage defeat it before any Python code can look:

* a free-space object of size 0 inside the collection makes its parser loop forever;
* a declared length larger than the heap object makes it allocate and fill that many bytes (up
  to 4 GiB) before it reports the mismatch.

Every reader reads the root attributes first, so this module walks the file's own bytes: the
superblock (version 0 or 1, 8-byte offsets and lengths) to the root object header (version 1,
with continuation blocks), its attribute messages (version 1) of variable-length string type, and
each collection they point to, checking it the way HDF5 will parse it. Any structure outside
that simple, common shape is left to HDF5 (the check is skipped, never guessed), so a valid file
is never refused here. See docs/safety.md.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

from .errors import NotAFileError, SchemaError

MAX_MESSAGES = 4096
MAX_BLOCKS = 64
MAX_ELEMENTS = 64  # elements of one attribute checked (root attributes are scalars)
HEAP_OBJECT_HEADER = 16  # index u16, reference count u16, reserved u32, size u64
ATTRIBUTE_MESSAGE = 0x000C
CONTINUATION_MESSAGE = 0x0010
VLEN_CLASS = 9


class _Skip(Exception):
    """The file is not in the shape this check understands: leave it to HDF5."""


def _read(handle: BinaryIO, at: int, count: int, size: int) -> bytes:
    if at < 0 or count < 0 or at + count > size:
        raise _Skip
    handle.seek(at)
    data = handle.read(count)
    if len(data) != count:
        raise _Skip
    return data


def _root_header_address(handle: BinaryIO, size: int) -> int:
    head = _read(handle, 0, 72, size)
    if head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] != 0 or head[13] != 8 or head[14] != 8:
        raise _Skip  # superblock version 1..3 or other address sizes: not checked here
    # the stored base address is not used: HDF5 takes the superblock's own position (0) instead
    return struct.unpack_from("<Q", head, 64)[0]


def _messages(handle: BinaryIO, address: int, size: int) -> Iterator[tuple[int, bytes]]:
    prefix = _read(handle, address, 16, size)
    version, _, count, _, header_size = struct.unpack_from("<BBHII", prefix)
    if version != 1 or count > MAX_MESSAGES:
        raise _Skip
    blocks = [(address + 16, header_size)]
    seen = 0
    while blocks and seen < count:
        if len(blocks) > MAX_BLOCKS:
            raise _Skip
        start, length = blocks.pop(0)
        block = _read(handle, start, length, size)
        at = 0
        while at + 8 <= len(block) and seen < count:
            kind, length_, _flags = struct.unpack_from("<HHB", block, at)
            body = block[at + 8:at + 8 + length_]
            if len(body) != length_:
                raise _Skip
            seen += 1
            if kind == CONTINUATION_MESSAGE:
                if length_ < 16:
                    raise _Skip
                blocks.append(struct.unpack_from("<QQ", body))
            else:
                yield kind, body
            at += 8 + length_


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _vlen_string_references(body: bytes) -> Iterator[tuple[str, int, int, int]]:
    """(name, length, collection address, object index) of each element of a vlen-string attribute."""
    if len(body) < 8 or body[0] != 1:
        return  # attribute message versions 2 and 3 are not produced with libver "earliest"
    name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
    at = 8
    name = body[at:at + name_size].split(b"\x00", 1)[0].decode("utf-8", "replace")
    at += _pad8(name_size)
    dtype = body[at:at + type_size]
    at += _pad8(type_size)
    space = body[at:at + space_size]
    at += _pad8(space_size)
    if len(dtype) < 8 or dtype[0] & 0x0F != VLEN_CLASS or dtype[1] & 0x0F != 1:
        return  # not a variable-length string
    if len(space) < 8 or space[0] != 1:
        return
    rank = space[1]
    dims = struct.unpack_from(f"<{rank}Q", space, 8) if len(space) >= 8 + 8 * rank else None
    if dims is None:
        return
    elements = 1
    for extent in dims:
        elements *= extent
    for k in range(min(elements, MAX_ELEMENTS)):
        at_k = at + 16 * k
        if at_k + 16 > len(body):
            return
        length, address, index = struct.unpack_from("<IQI", body, at_k)
        yield name, length, address, index


def _check_collection(handle: BinaryIO, address: int, size: int, cache: dict) -> dict[int, int]:
    """Parse a collection as HDF5 does; return {object index: object size}; raise on damage."""
    if address in cache:
        return cache[address]
    where = f"global heap collection at byte {address}"
    head = _read(handle, address, 16, size)
    if head[:4] != b"GCOL":
        raise NotAFileError("NF-F001", "a root attribute points to no global heap collection", location=where,
                            expected="GCOL signature", found=head[:4].hex(" "))
    collection_size = struct.unpack_from("<Q", head, 8)[0]
    if collection_size < 16 or address + collection_size > size:
        raise NotAFileError("NF-F001", "global heap collection size is not sane", location=where,
                            expected=f"16 .. {size - address} bytes", found=collection_size)
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


def check_root_attribute_heap(handle: BinaryIO, size: int) -> None:
    """Raise NF-F001 / NF-E001 when the root attributes' heap would hang or flood HDF5."""
    try:
        address = _root_header_address(handle, size)
    except _Skip:
        return
    check_attribute_heap(handle, size, address)


def check_object_attribute_heap(obj) -> None:
    """The same check for any open h5py object, through its object header address.

    Called before an attribute value of ``obj`` is read; skipped for file-like sources and for
    files this module does not understand.
    """
    import os

    import h5py
    try:
        filename = obj.file.filename
        address = h5py.h5o.get_info(obj.id).addr
    except Exception:
        return
    if not filename or not os.path.isfile(filename):
        return
    with open(filename, "rb") as handle:
        try:
            _root_header_address(handle, os.path.getsize(filename))  # only the superblock shape we parse
        except _Skip:
            return
        check_attribute_heap(handle, os.path.getsize(filename), address)


def check_attribute_heap(handle: BinaryIO, size: int, address: int) -> None:
    """Check the vlen-string attributes in the object header at ``address`` and their heap."""
    cache: dict = {}
    try:
        for kind, body in _messages(handle, address, size):
            if kind != ATTRIBUTE_MESSAGE:
                continue
            for name, length, heap_address, index in _vlen_string_references(body):
                if length == 0 and heap_address == 0:
                    continue
                objects = _check_collection(handle, heap_address, size, cache)
                stored = objects.get(index)
                if stored is None or length > stored:
                    raise SchemaError("NF-E001", f"attribute {name!r} declares more bytes than its heap object "
                                                 "holds", location=f"@{name} (object header at byte {address})",
                                      expected=f"<= {stored} bytes", found=f"{length} bytes")
    except _Skip:
        return
