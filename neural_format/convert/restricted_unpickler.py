"""Load ``torch.save`` pickles of PyG graphs without executing code from the file.

A pickle can name any importable callable and call it. This unpickler resolves names only through
:data:`ALLOWED_GLOBALS`, an explicit table from ``(module, name)`` to an inert stand-in defined
here; no name in the file is ever imported, and anything not in the table raises
:class:`~neural_format.errors.UnsafeContentError` ``NF-U001`` before anything runs. There is no
fallback to ordinary unpickling.

Stand-ins only record what the pickle gives them:

* ``torch_geometric.data.data.Data`` and its storage become :class:`RecordedObject` s holding the
  pickled ``__dict__``;
* ``torch.<Type>Storage`` becomes a :class:`StorageType` that knows its numpy dtype; a persistent id
  ``('storage', type, key, location, numel)`` becomes a :class:`LazyStorage` whose declared byte
  size must equal the stored byte size (``NF-U003``, checked before any allocation);
* ``torch._utils._rebuild_tensor_v2`` becomes :func:`rebuild_tensor`, which checks offset, shape
  and strides against the storage and returns a :class:`LazyTensor`; bytes are read from the
  archive only when :meth:`LazyTensor.numpy` is called.

The pure-Python unpickler is used on purpose: its memo is a dict, so a forged ``LONG_BINPUT``
index cannot make it allocate a huge memo table as the C implementation would.

Objects from the file are never ``repr()``-ed, ``str()``-ed or hashed as a whole: memo sharing lets
a few hundred bytes describe nested lists of 10^14 leaves (``repr`` would run for hours), a
200,000-deep tuple crashes CPython's ``hash``, and ``str`` of an int over 4,300 digits raises.
Error messages use :func:`describe`; dict keys and set elements must be strings, numbers, bytes
or ``None`` (``NF-U002``), which is all that torch and PyG pickles use.
"""
from __future__ import annotations

import collections
import io
import pickle
from typing import Any, Callable, ClassVar, Optional, Protocol

import numpy as np

from ..errors import NeuralFormatError, UnsafeContentError

MAX_NDIM = 8
MAX_DIM = 1 << 40

# torch.<name>Storage -> numpy dtype string ("bfloat16" is widened to float32 on read)
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}


_ATOMIC = (str, int, float, bool, bytes, type(None))


def describe(value, limit: int = 60) -> str:
    """A short, bounded description of an object from a pickle (no repr of containers or huge ints)."""
    kind = type(value)
    if kind is int:
        bits = value.bit_length()
        return str(value) if bits <= 64 else f"an int of {bits} bits"
    if value is None or kind in (bool, float):
        return repr(value)
    if kind is str:
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if kind in (bytes, bytearray):
        return f"{kind.__name__} of {len(value)} bytes"
    if kind in (list, tuple, dict, set, frozenset, collections.OrderedDict):
        return f"{kind.__name__} of {len(value)} items"
    if isinstance(value, (StorageType, LazyTensor)):
        return repr(value)
    if isinstance(value, type) and issubclass(value, RecordedObject):
        return f"<class {value.qualname} stand-in>"
    if isinstance(value, RecordedObject):
        return f"<{value.qualname} stand-in>"
    return f"a {kind.__name__}"


def _atomic(key, where: str):
    if type(key) not in _ATOMIC:
        raise UnsafeContentError("NF-U002", f"{where} is not a string or number", location="pickle",
                                 expected="str, int, float, bool, bytes or None", found=type(key).__name__)
    return key


def _make_set(items=()):
    """Stand-in for ``builtins.set``: only atomic elements are hashed."""
    if type(items) not in (list, tuple, set, frozenset):
        raise UnsafeContentError("NF-U002", "set() of something other than a list", location="builtins.set",
                                 found=type(items).__name__)
    return {_atomic(item, "set element") for item in items}


def _make_frozenset(items=()):
    return frozenset(_make_set(items))


def _make_ordered_dict(items=()):
    """Stand-in for ``collections.OrderedDict``: torch calls it without arguments; pairs need atomic keys."""
    if type(items) not in (list, tuple):
        raise UnsafeContentError("NF-U002", "OrderedDict() of something other than a list of pairs",
                                 location="collections.OrderedDict", found=type(items).__name__)
    result = collections.OrderedDict()
    for pair in items:
        if type(pair) not in (list, tuple) or len(pair) != 2:
            raise UnsafeContentError("NF-U002", "OrderedDict() item is not a pair", location="collections.OrderedDict",
                                     found=describe(pair))
        result[_atomic(pair[0], "dict key")] = pair[1]
    return result


class _Frozen:
    """Objects the pickle may not modify after creation (BUILD would otherwise set attributes)."""
    __slots__ = ()

    def __setattr__(self, name, value):
        raise UnsafeContentError("NF-U002", "pickle tried to modify an inert object",
                                 location=type(self).__name__, found=name)


class StorageType(_Frozen):
    """Stand-in for ``torch.FloatStorage`` and friends: a dtype, not callable."""
    __slots__ = ("name", "dtype", "itemsize")
    name: str
    dtype: str
    itemsize: int

    def __init__(self, name: str, dtype: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "itemsize", 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize)

    def __call__(self, *args, **kwargs):
        raise UnsafeContentError("NF-U002", "a storage class was called inside the pickle",
                                 location=f"torch.{self.name}", expected="storages via persistent ids only")

    def __repr__(self) -> str:
        return f"<torch.{self.name} stand-in>"


class StorageArchive(Protocol):
    """What a storage reads its bytes from: :mod:`.torch_archive`'s zip and legacy containers."""

    def read(self, key: str, start: int, count: int) -> bytes: ...


class LazyStorage(_Frozen):
    """A storage in the archive: its key, dtype and element count, checked against the stored bytes."""
    __slots__ = ("archive", "key", "dtype", "itemsize", "numel", "big_endian")
    archive: StorageArchive
    key: str
    dtype: str
    itemsize: int
    numel: int
    big_endian: bool

    def __init__(self, archive: StorageArchive, key: str, storage_type: StorageType, numel: int):
        for name, value in (("archive", archive), ("key", key), ("dtype", storage_type.dtype),
                            ("itemsize", storage_type.itemsize), ("numel", numel),
                            ("big_endian", bool(getattr(archive, "big_endian", False)))):
            object.__setattr__(self, name, value)

    def read(self, start: int, count: int) -> np.ndarray:
        """Elements ``start:start+count`` as a read-only numpy array in native byte order."""
        raw = self.archive.read(self.key, start * self.itemsize, count * self.itemsize)
        if self.dtype == "bfloat16":  # bfloat16 is the top half of a float32: widen exactly
            half = np.frombuffer(raw, ">u2" if self.big_endian else "<u2").astype(np.uint32)
            return (half << 16).view(np.float32)
        dtype = np.dtype(self.dtype)
        if dtype.itemsize > 1:
            dtype = dtype.newbyteorder(">" if self.big_endian else "<")
        array = np.frombuffer(raw, dtype)
        return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


class LazyTensor(_Frozen):
    """A tensor described by the pickle; :meth:`numpy` reads its bytes from the archive."""
    __slots__ = ("storage", "offset", "shape", "stride")
    storage: LazyStorage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def __init__(self, storage: LazyStorage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]):
        object.__setattr__(self, "storage", storage)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "stride", stride)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("float32" if self.storage.dtype == "bfloat16" else self.storage.dtype)

    @property
    def source_dtype(self) -> str:
        return self.storage.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def _contiguous(self) -> bool:
        expected = 1
        for dim, step in zip(reversed(self.shape), reversed(self.stride)):
            if dim != 1 and step != expected:
                return False
            expected *= dim
        return True

    def numpy(self) -> np.ndarray:
        """The tensor as a C-contiguous numpy array (a copy only for non-contiguous views)."""
        n = self.size
        if n == 0:
            return np.zeros(self.shape, self.dtype)
        if self._contiguous():
            return self.storage.read(self.offset, n).reshape(self.shape)
        rows = n // self.shape[-1]
        if self.stride[-1] == 1 and rows <= 1024:
            # e.g. edge columns a:b of a collated (2, E) edge_index: read each row's run, not the span
            index = np.stack(np.unravel_index(np.arange(rows), self.shape[:-1]), 1) if self.ndim > 1 else [()]
            parts = [self.storage.read(self.offset + int(np.dot(i, self.stride[:-1])), self.shape[-1]) for i in index]
            return np.concatenate(parts).reshape(self.shape)
        extent = 1 + sum((d - 1) * s for d, s in zip(self.shape, self.stride))
        flat = self.storage.read(self.offset, extent)
        strides = tuple(s * flat.itemsize for s in self.stride)
        return np.ascontiguousarray(np.lib.stride_tricks.as_strided(flat, self.shape, strides, writeable=False))

    def __repr__(self) -> str:
        return f"<tensor {self.source_dtype}{list(self.shape)}>"


def _int(value, what: str) -> int:
    if type(value) is not int:
        raise UnsafeContentError("NF-U002", f"tensor {what} is not an integer", location="_rebuild_tensor_v2",
                                 expected="int", found=type(value).__name__)
    return value


def rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                   metadata=None) -> LazyTensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: validate, then describe the tensor lazily."""
    if not isinstance(storage, LazyStorage):
        raise UnsafeContentError("NF-U002", "tensor storage is not a storage from the archive",
                                 location="_rebuild_tensor_v2", expected="persistent storage id",
                                 found=type(storage).__name__)
    offset = _int(storage_offset, "storage offset")
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
        raise UnsafeContentError("NF-U002", "tensor size/stride malformed", location="_rebuild_tensor_v2",
                                 expected="two tuples of equal length", found=f"{type(size).__name__}/{type(stride).__name__}")
    if len(size) > MAX_NDIM:
        raise UnsafeContentError("NF-U003", "tensor has too many dimensions", location="_rebuild_tensor_v2",
                                 expected=f"<= {MAX_NDIM}", found=len(size))
    size = tuple(_int(v, "size") for v in size)
    stride = tuple(_int(v, "stride") for v in stride)
    if offset < 0 or any(not 0 <= d <= MAX_DIM for d in size) or any(s < 0 for s in stride):
        raise UnsafeContentError("NF-U003", "negative or huge tensor offset/size/stride",
                                 location="_rebuild_tensor_v2", found=f"offset {offset}, size {size}, stride {stride}")
    count = 1
    for d in size:
        count *= d
    if count:
        reach = 0  # the furthest element the dimensions of smaller stride reach
        for step, dim in sorted((step, dim) for dim, step in zip(size, stride) if dim > 1):
            if step <= reach:
                # zero (broadcast) or overlapping strides: one stored element would appear several times
                raise UnsafeContentError(
                    "NF-U003", "tensor has zero (broadcast) or overlapping strides", location=f"storage {storage.key}",
                    expected="each element stored once", found=f"size {size}, stride {stride}")
            reach += (dim - 1) * step
        extent = offset + 1 + sum((d - 1) * s for d, s in zip(size, stride))
        if extent > storage.numel or count > storage.numel:
            # views larger than their storage (overlapping or broadcast strides) would allocate
            # more than the file holds; torch.save never writes them for ordinary tensors
            raise UnsafeContentError(
                "NF-U003", "tensor extends beyond its storage", location=f"storage {storage.key}",
                expected=f"<= {storage.numel} elements", found=f"offset {offset}, size {size}, stride {stride}")
    if requires_grad not in (False, True):
        raise UnsafeContentError("NF-U002", "requires_grad is not a bool", location="_rebuild_tensor_v2")
    if backward_hooks not in (None,) and (not isinstance(backward_hooks, dict) or backward_hooks):
        raise UnsafeContentError("NF-U002", "tensor carries backward hooks", location="_rebuild_tensor_v2",
                                 expected="no hooks", found=type(backward_hooks).__name__)
    return LazyTensor(storage, offset, size, stride)


class RecordedObject:
    """Inert stand-in for an allowed class: remembers constructor arguments and pickled state."""
    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.__dict__["_args"] = args
        self.__dict__["_kwargs"] = kwargs
        self.__dict__["_state"] = {}

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise UnsafeContentError("NF-U002", "object state is not a dict", location=self.qualname,
                                     expected="dict", found=type(state).__name__)
        self.__dict__.setdefault("_args", ())
        self.__dict__.setdefault("_kwargs", {})
        self.__dict__["_state"] = dict(state)

    @property
    def state(self) -> dict:
        return self.__dict__.get("_state", {})

    def __repr__(self) -> str:
        return f"<{self.qualname} stand-in {sorted(self.state)}>"


def _standin(qualname: str) -> type[RecordedObject]:
    return type(qualname.rsplit(".", 1)[1], (RecordedObject,), {"qualname": qualname, "__module__": __name__})


PygData = _standin("torch_geometric.data.data.Data")
PygGlobalStorage = _standin("torch_geometric.data.storage.GlobalStorage")
PygDataEdgeAttr = _standin("torch_geometric.data.data.DataEdgeAttr")
PygDataTensorAttr = _standin("torch_geometric.data.data.DataTensorAttr")


def _reconstructor(cls, base, state):
    """Stand-in for ``copyreg._reconstructor`` (protocol 0/1 pickles): only for stand-in classes."""
    if not (isinstance(cls, type) and issubclass(cls, RecordedObject)) or base is not object:
        raise UnsafeContentError("NF-U002", "copyreg._reconstructor on a non-allowed class",
                                 location="copyreg._reconstructor", found=describe(cls))
    return cls.__new__(cls)


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_geometric.data.data", "Data"): PygData,
    ("torch_geometric.data.data", "DataEdgeAttr"): PygDataEdgeAttr,
    ("torch_geometric.data.data", "DataTensorAttr"): PygDataTensorAttr,
    ("torch_geometric.data.storage", "GlobalStorage"): PygGlobalStorage,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("collections", "OrderedDict"): _make_ordered_dict,
    ("builtins", "set"): _make_set,
    ("builtins", "frozenset"): _make_frozenset,
    ("copyreg", "_reconstructor"): _reconstructor,
    **{("torch", name): StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class RestrictedUnpickler(pickle._Unpickler):  # noqa: SLF001 - the pure-Python implementation, see module doc
    """Resolves globals through :data:`ALLOWED_GLOBALS` only; storages through ``archive``."""

    def __init__(self, stream, archive=None, *, allow_storages: bool = True):
        super().__init__(stream, fix_imports=False, encoding="utf-8", errors="strict")
        self.archive = archive
        self.allow_storages = allow_storages
        self.declared: dict[str, tuple[str, int]] = {}   # storage key -> (dtype, numel)
        self.storages: dict[str, LazyStorage] = {}

    # dict and set opcodes: hash only atomic keys (see the module docstring)
    # (typeshed types the table by the base class; these handlers take this subclass)
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)  # noqa: SLF001
    # the pure-Python unpickler's working state, which typeshed does not declare (annotations only)
    stack: list[Any]
    append: Callable[[Any], None]
    pop_mark: Callable[[], list[Any]]

    def load_dict(self) -> None:
        items = self.pop_mark()
        self.append({_atomic(items[i], "dict key"): items[i + 1] for i in range(0, len(items), 2)})
    dispatch[pickle.DICT[0]] = load_dict

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self.stack[-1][_atomic(key, "dict key")] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        for i in range(0, len(items), 2):
            target[_atomic(items[i], "dict key")] = items[i + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if not isinstance(target, set):
            raise UnsafeContentError("NF-U002", "ADDITEMS on something other than a set", location="pickle",
                                     found=type(target).__name__)
        target.update(_atomic(item, "set element") for item in items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_frozenset(self) -> None:
        self.append(frozenset(_atomic(item, "set element") for item in self.pop_mark()))
    dispatch[pickle.FROZENSET[0]] = load_frozenset

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeContentError(
                "NF-U001", "pickle references a global that is not on the allow-list; nothing was executed",
                location="data.pkl", expected="torch tensors/storages, PyG Data, builtin containers",
                found=f"{module}.{name}"[:200]) from None

    def persistent_load(self, pid):
        if not self.allow_storages or self.archive is None:
            raise UnsafeContentError("NF-U002", "persistent id where none is allowed", location="pickle",
                                     found=describe(pid))
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise UnsafeContentError("NF-U002", "unknown persistent id", location="data.pkl",
                                     expected="('storage', type, key, location, numel)", found=describe(pid))
        _, storage_type, key, location, numel = pid[:5]
        if len(pid) == 6 and pid[5] is not None:
            raise UnsafeContentError("NF-U002", "storage views (legacy view_metadata) are not supported",
                                     location=f"storage {describe(key)}", expected="None", found=describe(pid[5]))
        if not isinstance(storage_type, StorageType):
            raise UnsafeContentError("NF-U002", "storage type is not a torch storage class", location="data.pkl",
                                     found=describe(storage_type))
        if not isinstance(key, str) or not isinstance(location, str) or type(numel) is not int or numel < 0:
            raise UnsafeContentError("NF-U002", "malformed storage id", location="data.pkl",
                                     found=", ".join(describe(part) for part in pid))
        if key in self.storages:
            known = self.storages[key]
            if (known.dtype, known.numel) != (storage_type.dtype, numel):
                raise UnsafeContentError("NF-U003", "one storage declared with two different types or sizes",
                                         location=f"storage {key}", expected=(known.dtype, known.numel),
                                         found=(storage_type.dtype, numel))
            return known
        declared = numel * storage_type.itemsize
        if self.archive.kind == "zip":
            stored = self.archive.storage_nbytes(key)
            if declared != stored:  # checked here, before anything is allocated for it
                raise UnsafeContentError("NF-U003", "declared storage size does not match the stored bytes",
                                         location=f"{self.archive.prefix}data/{key}",
                                         expected=f"{stored} bytes stored", found=f"{declared} bytes declared")
        storage = LazyStorage(self.archive, key, storage_type, numel)
        self.storages[key] = storage
        return storage


def restricted_load(stream, archive=None, *, allow_storages: bool = True):
    """Unpickle one object from ``stream`` (bytes or a binary file); returns (object, unpickler)."""
    if isinstance(stream, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(stream)
    unpickler = RestrictedUnpickler(stream, archive, allow_storages=allow_storages)
    try:
        return unpickler.load(), unpickler
    except NeuralFormatError:
        raise
    except RecursionError:
        raise UnsafeContentError("NF-U002", "pickle nests too deeply", location="pickle") from None
    except MemoryError:
        raise UnsafeContentError("NF-U003", "pickle needs more memory than allowed", location="pickle") from None
    except Exception as exc:  # malformed opcodes, wrong argument types to an allowed callable, truncation
        # a KeyError's text is the repr of its key, which may be an object from the file
        text = describe(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)[:200]
        raise UnsafeContentError("NF-U002", f"malformed or disallowed pickle: {type(exc).__name__}: {text}"[:300],
                                 location="pickle") from None


def header_loader(stream) -> Optional[object]:
    """Load one of the small plain pickles of the legacy header (no globals, no storages)."""
    return restricted_load(stream, None, allow_storages=False)[0]
