"""The graphs inside a legacy PyG pickle, read lazily one at a time.

Two shapes of file are understood:

* ``pyg-data-list-pickle``: ``torch.save(data_list, path)``, a list (or tuple) of ``Data``;
* ``pyg-inmemory-pickle``: what ``InMemoryDataset.save`` writes in PyG >= 2.4,
  ``(data.to_dict(), slices, Data)``, and the older ``(data, slices)`` pair; graph ``i`` owns node
  rows ``slices['x'][i]:slices['x'][i+1]``, edge columns ``slices['edge_index'][i]:...`` (PyG's
  ``InMemoryDataset.collate`` does not increment indices, so they are already local) and so on.

:func:`open_source` returns a :class:`SourceGraphs` sequence of :class:`SourceGraph`; tensors stay
:class:`~.restricted_unpickler.LazyTensor` s until a field is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import SchemaError, UnsafeContentError
from ..format.metadata import SourceFormat
from . import torch_archive
from .restricted_unpickler import LazyTensor, PygData, PygGlobalStorage, describe, header_loader, restricted_load

Value = Union[LazyTensor, int, float, bool, None]


def _mapping(data) -> dict:
    """The attribute dict of a ``Data`` stand-in (``Data.__dict__['_store'].__dict__['_mapping']``)."""
    store = data.state.get("_store")
    if not isinstance(store, PygGlobalStorage) or not isinstance(store.state.get("_mapping"), dict):
        raise SchemaError("NF-U006", "Data object without a global storage mapping", location="data.pkl",
                          expected="PyG Data pickled by torch_geometric >= 2.0",
                          found=f"state with {len(data.state)} entries")
    return _named(store.state["_mapping"], "Data attributes")


def _named(mapping: dict, what: str) -> dict:
    if not all(type(key) is str for key in mapping):
        raise SchemaError("NF-U006", f"{what} are not all named by strings", location="data.pkl",
                          expected="str keys", found=sorted({type(k).__name__ for k in mapping}))
    return mapping


class ArrayTensor:
    """An in-memory array with the :class:`LazyTensor` interface (for graphs built elsewhere)."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = np.asarray(array)

    shape = property(lambda self: self.array.shape)
    ndim = property(lambda self: self.array.ndim)
    dtype = property(lambda self: self.array.dtype)
    source_dtype = property(lambda self: self.array.dtype.name)

    def numpy(self) -> np.ndarray:
        return self.array


@dataclass
class SourceGraph:
    """One graph: node features ``x`` (N, D), ``edge_index`` (2, E), ``y`` and other attributes."""
    index: int
    attributes: dict

    def _tensor(self, name: str) -> Optional[np.ndarray]:
        value = self.attributes.get(name)
        if value is None:
            return None
        if isinstance(value, (LazyTensor, ArrayTensor)):
            return value.numpy()
        if type(value) is int and not -(1 << 63) <= value < (1 << 63):
            raise SchemaError("NF-U006", f"attribute {name} is an integer outside int64",
                              location=f"graph {self.index}/{name}", found=describe(value))
        if isinstance(value, (bool, int, float)):
            return np.asarray(value)
        raise SchemaError("NF-U006", f"attribute {describe(name)} is neither a tensor nor a number",
                          location=f"graph {self.index}/{name}", found=type(value).__name__)

    def x(self) -> Optional[np.ndarray]:
        return self._tensor("x")

    def edge_index(self) -> Optional[np.ndarray]:
        return self._tensor("edge_index")

    def y(self) -> Optional[np.ndarray]:
        return self._tensor("y")

    def value(self, name: str) -> Optional[np.ndarray]:
        return self._tensor(name)

    def shape(self, name: str) -> Optional[tuple]:
        value = self.attributes.get(name)
        return value.shape if isinstance(value, (LazyTensor, ArrayTensor)) else None


def _slice_tensor(tensor: LazyTensor, axis: int, start: int, stop: int) -> LazyTensor:
    shape = list(tensor.shape)
    if not 0 <= start <= stop <= shape[axis]:
        raise SchemaError("NF-U006", "InMemoryDataset slices run outside the stored tensor",
                          location="slices", expected=f"within 0..{shape[axis]}", found=f"{start}:{stop}")
    shape[axis] = stop - start
    return LazyTensor(tensor.storage, tensor.offset + start * tensor.stride[axis], tuple(shape), tensor.stride)


class SourceGraphs:
    """A lazily read sequence of :class:`SourceGraph` plus what was learnt about the file."""

    def __init__(self, archive, source_format: SourceFormat, graphs, slices: Optional[dict] = None):
        self.archive = archive
        self.source_format = source_format
        self._graphs = graphs          # data-list: list of attribute dicts; in-memory: the one dict
        self._slices = slices          # in-memory: attribute -> int64 numpy array (n + 1)
        if slices is None:
            self._n = len(graphs)
        else:
            lengths = {len(v) - 1 for v in slices.values()}
            if len(lengths) != 1:
                raise SchemaError("NF-U006", "InMemoryDataset slices disagree on the graph count",
                                  location="slices", expected="equal lengths", found=f"{len(lengths)} different lengths")
            self._n = lengths.pop()

    def __len__(self) -> int:
        return self._n

    def attribute_names(self) -> set[str]:
        if self._slices is not None:
            return set(self._graphs)
        names: set[str] = set()
        for attrs in self._graphs:
            names.update(attrs)
        return names

    def __getitem__(self, i: int) -> SourceGraph:
        if self._slices is None:
            return SourceGraph(i, self._graphs[i])
        attrs = {}
        for name, value in self._graphs.items():
            cut = self._slices.get(name)
            if cut is not None and type(value) is list:
                # a non-tensor attribute (e.g. the KG's `label`) is collated as one entry per graph
                if len(value) == self._n:
                    attrs[name] = value[i]
                continue
            if cut is None and name == "num_nodes":
                continue  # collate stores the collection's total, not graph i's count
            if cut is None or not isinstance(value, LazyTensor):
                attrs[name] = value
                continue
            a, b = int(cut[i]), int(cut[i + 1])
            axis = value.ndim - 1 if name == "edge_index" else 0
            if value.ndim == 0:
                attrs[name] = value
            else:
                attrs[name] = _slice_tensor(value, axis, a, b)
        return SourceGraph(i, attrs)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _attributes(obj, where: str) -> dict:
    if isinstance(obj, PygData):
        return _mapping(obj)
    if isinstance(obj, dict):
        return _named(obj, "InMemoryDataset attributes")
    raise SchemaError("NF-U006", "expected a PyG Data object", location=where,
                      expected="torch_geometric.data.Data", found=type(obj).__name__)


def _classify(archive, top) -> SourceGraphs:
    if isinstance(top, (list, tuple)) and all(isinstance(g, PygData) for g in top):
        return SourceGraphs(archive, "pyg-data-list-pickle", [_mapping(g) for g in top])
    if isinstance(top, tuple) and len(top) in (2, 3) and isinstance(top[1], dict):
        if len(top) == 3 and top[2] is not PygData:
            raise SchemaError("NF-U006", "InMemoryDataset file names a data class other than Data",
                              location="data.pkl", expected="torch_geometric.data.Data", found=describe(top[2]))
        data = _attributes(top[0], "data.pkl[0]")
        slices = {}
        for name, cut in _named(top[1], "InMemoryDataset slices").items():
            if not isinstance(cut, LazyTensor) or cut.ndim != 1 or cut.source_dtype != "int64":
                raise SchemaError("NF-U006", "InMemoryDataset slice is not an int64 vector", location=f"slices/{name}",
                                  found=describe(cut))
            values = cut.numpy()
            if values.size == 0 or values[0] != 0 or np.any(np.diff(values) < 0):
                raise SchemaError("NF-U006", "InMemoryDataset slices are not 0-based and non-decreasing",
                                  location=f"slices/{name}")
            slices[name] = values
        if not slices:
            raise SchemaError("NF-U006", "InMemoryDataset file without slices", location="data.pkl")
        return SourceGraphs(archive, "pyg-inmemory-pickle", data, slices)
    raise SchemaError("NF-U006", "the pickle holds neither a list of PyG Data nor an InMemoryDataset tuple",
                      location="data.pkl", expected="list[Data] or (dict, slices, Data)",
                      found=type(top).__name__)


def open_source(path) -> SourceGraphs:
    """Open a ``torch.save`` file of PyG graphs safely (see :mod:`.restricted_unpickler`)."""
    path = Path(path)
    kind = torch_archive.sniff(path)
    if kind == "tar":
        raise UnsafeContentError("NF-U005", "the pre-0.4 tar container of torch.save is not supported",
                                 location=str(path), expected="zip archive or legacy stream", found="tar")
    if kind == "zip":
        archive = torch_archive.ZipTorchArchive(path)
        try:
            top, _ = restricted_load(archive.pickle_bytes(), archive)
            return _classify(archive, top)
        except BaseException:
            archive.close()
            raise
    legacy = torch_archive.LegacyTorchArchive(path, header_loader)
    try:
        top, unpickler = restricted_load(legacy.pickle_stream(), legacy)
        legacy.index_storages({k: s.itemsize for k, s in unpickler.storages.items()})
        for storage in unpickler.storages.values():
            stored = legacy.storage_nbytes(storage.key)
            if stored != storage.numel * storage.itemsize:
                raise UnsafeContentError("NF-U003", "declared storage size does not match the stored bytes",
                                         location=f"storage {storage.key}", expected=f"{stored} bytes stored",
                                         found=f"{storage.numel * storage.itemsize} bytes declared")
        return _classify(legacy, top)
    except BaseException:
        legacy.close()
        raise
