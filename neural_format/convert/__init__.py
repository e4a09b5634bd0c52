"""Safe conversion of legacy ``torch.save`` pickles of PyG graphs (see docs/convert.md).

* :mod:`.torch_archive`: the zip and legacy containers, read without executing anything;
* :mod:`.restricted_unpickler`: the allow-listed unpickler and its inert stand-ins;
* :mod:`.source_graphs`: the graphs of a data-list or InMemoryDataset file, read lazily;
* :mod:`.layout_recovery`: which rows are patches, which are entities, where the fusion edge is;
* :mod:`.driver`: :func:`convert_pickle`, writing and verifying the collection file;
* :mod:`.pyg_objects`: :func:`record_from_pyg` and :func:`write_pyg` for PyG objects in memory.

Nothing here imports torch.
"""
from .driver import ConversionReport, SkippedRecord, convert_graphs, convert_pickle, tolerance

from .layout_recovery import Split, recover_split
from .pyg_objects import record_from_pyg, write_pyg
from .source_graphs import SourceGraph, SourceGraphs, open_source

__all__ = ["ConversionReport", "SkippedRecord", "Split", "SourceGraph", "SourceGraphs", "convert_graphs", "convert_pickle",
           "open_source", "record_from_pyg", "recover_split", "tolerance", "write_pyg"]
