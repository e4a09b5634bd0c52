"""neural_format: a safe, versioned HDF5 format for semantics-pruned multimodal clinical graphs.

The core depends on numpy, h5py and pydantic only; torch, torch_geometric and networkx are
imported by the adapters when they are called.
"""
from .internals import moved_modules
from .errors import (FormatVersionError, FormatVersionWarning, IntegrityError, NeuralFormatError,
                     NotAFileError, SchemaError, UnsafeContentError)
from .format.metadata import (CollectionMeta, ConversionInfo, FusionRule, KGExtractorRef, KeepAll, Manifest,
                              ModelRef, Nucleus, Provenance, PruningPolicy, ScoreAggregation, SliceAnchorFilter,
                              SoftwareRef, Threshold, TopKPercent, sdk_ref)
from .files.reader import CollectionReader
from .format.record import Geometry, Record
from .version import FORMAT_NAME, FORMAT_VERSION, SDK_VERSION
from .files.writer import CollectionWriter, write_collection
from .validation import Report, validate

__version__ = SDK_VERSION

# the pre-0.2 flat module paths (neural_format.reader ...) stay importable until 0.3.0
moved_modules.install()


def open(source, **kwargs) -> CollectionReader:  # noqa: A001 - mirrors h5py.File / io.open
    """Open one collection file lazily. See :class:`CollectionReader`.

    Files of an older major version go to their registered legacy reader (clause NF-V004).
    """
    from .files.reader import open_collection_file
    return open_collection_file(source, **kwargs)


def open_collection(source):
    """Open a sharded collection (directory, manifest, file list, URL) lazily. See :mod:`neural_format.collections.collection`."""
    from .collections.collection import open_collection as _open_collection
    return _open_collection(source)




def __getattr__(name: str):
    # the converter is loaded on first use so that `import neural_format` stays small
    if name == "convert_pickle":
        from .convert import convert_pickle
        return convert_pickle
    # `import neural_format; neural_format.reader` worked while the modules were flat
    return moved_modules.old_attribute(__name__, name)


__all__ = [
    "CollectionMeta", "CollectionReader", "CollectionWriter", "ConversionInfo", "FORMAT_NAME", "convert_pickle",
    "FORMAT_VERSION", "FormatVersionError", "FormatVersionWarning", "FusionRule", "Geometry",
    "IntegrityError", "KGExtractorRef", "KeepAll", "Manifest", "ModelRef", "NeuralFormatError",
    "NotAFileError", "Nucleus", "Provenance", "PruningPolicy", "Record", "SchemaError",
    "ScoreAggregation", "SliceAnchorFilter", "SoftwareRef", "Threshold", "TopKPercent",
    "Report", "UnsafeContentError", "open", "open_collection", "sdk_ref", "validate", "write_collection",
]
