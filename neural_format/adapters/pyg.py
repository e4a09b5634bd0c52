"""Records <-> PyTorch Geometric graphs, in one place for users (imports torch and
torch_geometric when called).

Records -> PyG is :mod:`neural_format.adapters.pyg_graphs` (what :meth:`Record.to_pyg` calls);
PyG -> records and files is :mod:`neural_format.convert.pyg_objects` (the converter of
:func:`convert_pickle`). This module only re-exports both, so it sits above the record and the
converter and neither imports it (no import circle; docs/architecture.md).
"""
from __future__ import annotations

from ..convert.pyg_objects import graphs_from_pyg, record_from_pyg, write_pyg
from .pyg_graphs import (BlockGraphs, LabelSelector, build_block, build_data, data_from_fields, label_columns,
                         record_to_pyg, record_to_pyg_hetero, select_labels)

__all__ = ["BlockGraphs", "LabelSelector", "build_block", "build_data", "data_from_fields", "graphs_from_pyg",
           "label_columns", "record_from_pyg", "record_to_pyg", "record_to_pyg_hetero", "select_labels", "write_pyg"]
