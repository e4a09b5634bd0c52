"""PyTorch Geometric ``Data`` objects -> records and collection files, through the converter of
:func:`convert_pickle` (the reverse direction, records -> PyG, is :mod:`neural_format.adapters.pyg_graphs`).
Nothing here imports torch: tensors are read through ``.detach().cpu().numpy()``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..format.metadata import FeatureDtype
from ..format.record import Record
from .driver import GraphConverter, convert_graphs
from .source_graphs import ArrayTensor, SourceGraphs


def graphs_from_pyg(data_list, patch_nodes):
    """The tensors of PyG objects as the converter's :class:`SourceGraphs`, and the patch count
    rule (``num_patches`` when every graph carries it, as :func:`record_to_pyg` writes)."""
    attrs = []
    for data in data_list:
        entry = {}
        for key in data.keys():
            value = data[key]
            if hasattr(value, "detach"):
                value = ArrayTensor(value.detach().cpu().numpy())
            elif isinstance(value, (bool, int, float)):
                pass
            elif key == "label" and isinstance(value, list):
                pass  # the KG's entity text (from_networkx): evidence and text for the converter
            else:
                continue  # strings and other Python objects are not graph tensors
            entry[key] = value
        attrs.append(entry)
    graphs = SourceGraphs(None, "pyg-objects", attrs)
    if patch_nodes is None and attrs and all("num_patches" in a for a in attrs):
        patch_nodes = "num_patches"  # written by record_to_pyg: an explicit count, not a guess
    return graphs, patch_nodes


def record_from_pyg(data, *, record_id: str, patch_nodes: Optional[int] = None, unfused: Optional[str] = None,
                    dtype: str = "float32", label_count: Optional[int] = None) -> Record:
    """A :class:`Record` from a homogeneous ``Data`` in the reference layout.

    The split between patch and entity rows is ``patch_nodes`` when given, else ``data.num_patches``
    when present (as :func:`record_to_pyg` writes it), else the rule of
    :mod:`neural_format.convert.layout_recovery` (``unfused`` for graphs without fusion edge).
    Fields the layout does not hold are absent (scores NaN, types -1, no text or positions).
    """
    graphs, declared = graphs_from_pyg([data], patch_nodes)
    y = graphs[0].y()
    count = label_count if label_count is not None else (0 if y is None else int(np.asarray(y).size))
    converter = GraphConverter(graphs, patch_nodes=declared, unfused=unfused,
                               label_names=[f"label_{k}" for k in range(count)], dtype=dtype)
    converter.scan_width()
    record, _, _ = converter.record(graphs[0])
    record.record_id = record_id
    return record


def write_pyg(path, data_list, *, label_names: Sequence[str] = ("label",), patch_nodes=None,
              unfused: Optional[str] = None, dtype: FeatureDtype = "float32", source_name: str = "pyg-objects",
              overwrite: bool = False, skip_invalid: bool = False, compression: Optional[str] = None,
              progress: Optional[bool] = None, check_bridge: bool = False):
    """Write PyG graphs built elsewhere to a collection file, verified like :func:`convert_pickle`.

    ``patch_nodes``, ``unfused`` and ``check_bridge`` work as in :func:`~neural_format.convert.convert_pickle`;
    graphs that all carry ``num_patches`` use it. Returns the :class:`ConversionReport`.
    """
    graphs, patch_nodes = graphs_from_pyg(list(data_list), patch_nodes)
    return convert_graphs(graphs, path, source_name=source_name, patch_nodes=patch_nodes, unfused=unfused,
                          label_names=label_names, dtype=dtype, overwrite=overwrite, skip_invalid=skip_invalid,
                          compression=compression, progress=progress, check_bridge=check_bridge)
