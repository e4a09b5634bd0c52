"""Every error code of the project, in one table that :class:`~neural_format.errors.NeuralFormatError`
checks when an error is made: an unknown code is a programming error, caught here and by
``tests/test_error_codes.py`` (which also finds every code written in the source).

* file clauses (``NF-F``, ``NF-H``, ``NF-E001``, ``NF-V``, ``NF-M``, ``NF-S``, ``NF-O``, ``NF-R``,
  ``NF-I``, ``NF-P``, ``NF-C``): :data:`neural_format.clauses.CLAUSES`, with the spec's prose;
* SDK codes that are not properties of a file (spec Appendix A): below;
* builder (``NB-``) and model (``NM-``) codes: below too (the core names them as strings only;
  ``neural_builders.errors`` and ``neural_models.errors`` hold the named constants).
"""
from __future__ import annotations

from .clauses import CLAUSES

SDK_CODES = {
    "NF-E-EXISTS": "the output path exists and overwriting was not asked for",
    "NF-E-IO": "writing failed in the operating system (disk full, file too large, read-only or missing "
               "directory, I/O error); nothing was left under the final name",
    "NF-E-LOCK": "a lock file is not a plain file this process may create or use",
    "NF-E-CLOSED": "the reader or writer is closed",
    "NF-E-INDEX": "an index of the wrong type (e.g. a bool used as a record index)",
    "NF-E-EXTRA": "a command or feature needs an optional extra that is not installed",
    "NF-W001": "a record given to the writer does not fit the collection metadata",
}

# the safe pickle converter (docs/convert.md, "Errors")
CONVERSION_CODES = {
    "NF-U001": "the pickle references a global that is not on the allow-list (nothing executed)",
    "NF-U002": "malformed or disallowed pickle construct",
    "NF-U003": "tensor and storage sizes: declared size differs from stored bytes, a tensor outside its "
               "storage, zero or overlapping strides, a storage missing",
    "NF-U004": "archive structure: not exactly one <prefix>/data.pkl, duplicate or compressed members, "
               "members outside the prefix, an unreadable zip",
    "NF-U005": "not a torch.save file, an unsupported legacy protocol, a tar container",
    "NF-U006": "the pickle holds neither a list of Data nor an InMemoryDataset tuple, or an attribute "
               "of another kind",
    "NF-X001": "several patch/entity splits fit all the evidence and none was declared",
    "NF-X002": "the evidence about the layout disagrees, or the edges do not fit it",
    "NF-X003": "node features missing, of another width, too wide or not floating point",
    "NF-X004": "labels: not one value per label name, not numeric, or an integer above 2^24",
    "NF-X005": "verification: a re-read record differs from the source",
    "NF-X006": "features overflow the target dtype (float16)",
}

BUILDER_CODES = {
    "NB-I001": "image file missing, empty or unreadable by its decoder",
    "NB-I002": "image content is of no supported kind (not DICOM, PNG or JPEG)",
    "NB-I003": "image cannot be used (no pixel data, multi-frame, constant image, unsupported photometric "
               "interpretation, over 64 Mpixel)",
    "NB-R001": "report source missing or unreadable (file, CSV, archive)",
    "NB-R002": "report source holds a forbidden construct (XML DTD or entity)",
    "NB-R003": "report source has the wrong columns or structure",
    "NB-P001": "an image and a report could not be paired",
    "NB-K001": "knowledge-graph extractor unknown or its package is missing",
    "NB-E001": "sentence-embedding model directory missing or incomplete",
    "NB-D001": "the requested device or process-group backend cannot be had",
    "NB-G001": "no report generator in the directory given (no config.json, another kind of model, or "
               "weights that do not match its config)",
}

MODEL_CODES = {
    "NM-M001": "no saved model in the directory given",
    "NM-F001": "a collection's node features do not fit the model's layout",
}

CODES: dict[str, str] = {
    **{code: clause.summary for code, clause in CLAUSES.items()},
    **SDK_CODES, **CONVERSION_CODES, **BUILDER_CODES, **MODEL_CODES,
}


def check_code(code: object) -> str:
    """``code`` when it is in :data:`CODES`; a ``ValueError`` naming this table otherwise."""
    if not isinstance(code, str) or code not in CODES:
        raise ValueError(f"unknown error code {code!r}: every code is listed in neural_format.error_codes")
    return code
