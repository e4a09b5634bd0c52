"""The clause list of format 1.0: the ONE place where clause IDs, their severity and a summary live.

``spec/neural-format-1.0.md`` states each clause in prose under its ID, the validator registers
exactly one check per ID (:mod:`neural_format.validation.registry`), and
``spec/conformance/`` holds ``<ID>.valid.*`` and ``<ID>.invalid.*`` fixtures. A test
(``tests/test_spec_conformance.py``) fails when the three drift apart.

Severity follows the RFC 2119 keyword: MUST -> ``error``; SHOULD -> ``warning``; a
recommendation that does not affect reading (SHOULD, best practice) -> ``best-practice``.
``scope`` says what the clause applies to: ``file`` (one collection file) or ``manifest``
(a multi-file collection). ``since`` is the format version that added the clause: a file is checked
only against the clauses of the version it declares and older (spec section 3, version rules), so
a valid 1.0.0 file stays valid, and clean, under every later 1.x validator.
"""
from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("error", "warning", "best-practice")


@dataclass(frozen=True)
class Clause:
    id: str
    severity: str
    summary: str
    scope: str = "file"
    since: str = "1.0.0"

    def applies_to(self, version) -> bool:
        """Whether a file declaring ``version`` (a ``Version`` or ``MAJOR.MINOR.PATCH``) is checked against this clause."""
        if version is None:
            return True
        parts = tuple(int(p) for p in str(version).split("."))
        return parts >= tuple(int(p) for p in self.since.split("."))


_TABLE = [
    # container: the HDF5 file itself (spec section 2)
    ("NF-F001", "error", "the file is a readable HDF5 file with the signature at offset 0"),
    ("NF-H001", "error", "superblock version <= 2 (written with libver bounds earliest..v108)"),
    ("NF-H002", "error", "no object, variable-length, opaque, reference, compound or enum dtypes in datasets; "
                         "attributes are strings or numbers"),
    ("NF-H003", "error", "no external links and no soft links"),
    ("NF-H004", "error", "no virtual datasets"),
    ("NF-H005", "error", "no filters other than gzip, lzf, shuffle and fletcher32"),
    ("NF-H006", "error", "declared sizes are sane before anything is allocated"),
    # versions and encodings (spec section 3)
    ("NF-V001", "error", "root attributes format == 'neural-graph' and format_version is MAJOR.MINOR.PATCH"),
    ("NF-V002", "warning", "a newer minor version is read with a warning"),
    ("NF-V003", "error", "a newer major version is refused, naming both versions"),
    ("NF-V004", "error", "an older major version is read only through a registered legacy reader"),
    ("NF-E001", "error", "every group and the metadata carry the expected encoding-type and encoding-version"),
    # metadata (spec section 5)
    ("NF-M001", "error", "/metadata is UTF-8 JSON valid against collection-metadata.schema.json"),
    ("NF-M002", "error", "the declared adjacency rule fits the number of spatial axes"),
    ("NF-P001", "best-practice", "provenance names the encoder (with weights SHA-256) and the pruning policy"),
    # structure (spec section 4)
    ("NF-S001", "error", "every required group and dataset is present, as a hard link of the right kind"),
    ("NF-S002", "error", "every dataset has its specified dtype"),
    ("NF-S003", "error", "every dataset has its specified shape; columns of one table agree on rows"),
    ("NF-S004", "best-practice", "no objects other than those the spec defines"),
    ("NF-O001", "error", "offsets are N + 1 int64 values, 0-based, non-decreasing, covering the rows exactly"),
    # records (spec section 4)
    ("NF-R001", "error", "per-record columns have exactly N rows"),
    ("NF-R002", "error", "record IDs are non-empty, at most 1024 UTF-8 bytes, and unique"),
    ("NF-R003", "error", "patch edge indices are local and in range [0, P)"),
    ("NF-R004", "error", "relation indices are local and in range [0, M)"),
    ("NF-R005", "error", "the bridge is (-1, -1) or a patch index in [0, P) and an entity index in [0, M); "
                         "it is absent when either side is empty"),
    ("NF-R006", "warning", "a record with patches and entities has a bridge"),
    ("NF-R007", "error", "grid positions lie inside the record's grid"),
    ("NF-R008", "error", "grid positions are unique within a record"),
    ("NF-R009", "error", "geometry: sizes >= 1, grid_shape == ceil(image_size / patch_size), spacing > 0 or NaN"),
    ("NF-R010", "error", "entity types are -1 or an index into the entity_types vocabulary"),
    ("NF-R011", "error", "relation types are -1 or an index into the relation_types vocabulary"),
    ("NF-R012", "error", "entity assertions are -1, 0 (present), 1 (absent) or 2 (uncertain)"),
    ("NF-R013", "error", "patch features, patch scores and entity features are finite (no NaN or Inf)"),
    ("NF-R014", "error", "every string is valid UTF-8"),
    ("NF-R015", "error", "report_source is 0 (none, empty report), 1 (ground truth) or 2 (generated)"),
    ("NF-R016", "error", "labels are finite or NaN (unknown), never infinite"),
    ("NF-R017", "error", "patch edges join grid neighbours under the declared adjacency rule"),
    # format 1.1.0 (spec section 4.4): edge conventions, checked in files that declare 1.1.0 or later
    ("NF-R018", "warning", "patch edges are undirected: each stored as (a, b) and (b, a), once each, no self-loops",
     "file", "1.1.0"),
    ("NF-R019", "warning", "relations are directed: no (source, target, type) repeated, no entity related to itself",
     "file", "1.1.0"),
    ("NF-R020", "warning", "tiles are full-resolution: tile_shape equals every record's patch_size", "file", "1.1.0"),
    # format 1.1.0 (spec section 4.5): per-record entity text, the one object 1.1.0 added
    ("NF-R021", "error", "entity_text_known is 1 (known) or 0 (unknown), and a record marked unknown stores only "
                         "empty entity strings", "file", "1.1.0"),
    # integrity (spec section 6)
    ("NF-I001", "error", "each record's stored SHA-256 equals its canonical digest"),
    # multi-file collections (spec section 7)
    ("NF-C001", "error", "the manifest is UTF-8 JSON valid against manifest.schema.json", "manifest"),
    ("NF-C002", "error", "shard paths are relative, stay inside the manifest's directory and exist", "manifest"),
    ("NF-C003", "error", "each shard is a valid collection file and its file_sha256, if given, matches", "manifest"),
    ("NF-C004", "error", "each shard's metadata.shard names the manifest's collection_id, its index and the count",
     "manifest"),
    ("NF-C005", "error", "records, first_id, last_id and ids_sha256 of each entry match its shard", "manifest"),
    ("NF-C006", "error", "record IDs are unique across all shards", "manifest"),
    ("NF-C007", "error", "collection_sha256 is the SHA-256 of the canonical JSON of the manifest without it",
     "manifest"),
    ("NF-C008", "error", "the manifest and all shards share one readable major format version, and each entry's "
                         "format_version equals its shard's", "manifest"),
    ("NF-C009", "error", "all shards declare compatible metadata: equal fields except provenance and shard",
     "manifest"),
    ("NF-C010", "warning", "the directory holds no shard files or partial files that the manifest does not list",
     "manifest"),
]

CLAUSES: dict[str, Clause] = {row[0]: Clause(*row) for row in _TABLE}
assert all(c.severity in SEVERITIES for c in CLAUSES.values())
