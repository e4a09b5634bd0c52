"""Record checks (spec sections 4 and 6), vectorised over one batch of records at a time.

A :class:`Batch` holds the bulk columns of records ``start:stop`` as read by
:meth:`neural_format.files.reader.CollectionReader.read_columns`; each check works on whole columns
with numpy (no per-row Python loops) and names the first offending records.

Each check is a function of the inputs it names (:data:`.registry.STAGE_INPUTS`: ``batch``,
``earlier_ids``, ``hashes``) and of derived inputs registered here with ``@derived``, such as
``finite_columns``, which NF-R013 and the record hash (NF-I001) both use and which the runner
computes once per block. No check writes anything another check reads.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from ..format import layout
from ..files.integrity import block_digests
from .findings import Finding, finding
from .registry import check, derived

MAX_PER_BATCH = 10  # offending records named per check and batch
ASSERTION_VALUES = np.array([-1, 0, 1, 2])
REPORT_SOURCE_VALUES = np.array([0, 1, 2])


class Batch:
    def __init__(self, reader, start: int, stop: int, columns: dict):
        self.reader, self.meta = reader, reader.meta
        self.start, self.stop, self.n = start, stop, stop - start
        self.c = columns

    def counts(self, table: str) -> np.ndarray:
        return np.diff(self.c[f"/{table}/offsets"])

    def owner(self, table: str) -> np.ndarray:
        """For each row of ``table`` in this batch, the batch-local index of its record."""
        return np.repeat(np.arange(self.n), self.counts(table))

    def where(self, local: int) -> str:
        return f"record {self.start + local} ({self.c['/records/id'][local]!r})"

    @cached_property
    def records(self):
        return self.reader.records_from_columns(self.c)


def _per_record(batch: Batch, code: str, bad_records, path: str, message: str, expected, found_of):
    """One finding per offending record (at most MAX_PER_BATCH), or None."""
    bad = np.unique(np.asarray(bad_records, np.int64))
    if bad.size == 0:
        return None
    out = [finding(code, f"{path} [{batch.where(int(i))}]", message,
                   expected(int(i)) if callable(expected) else expected, found_of(int(i)))
           for i in bad[:MAX_PER_BATCH]]
    if bad.size > MAX_PER_BATCH:
        out.append(finding(code, f"{path} [records {batch.start}..{batch.stop - 1}]",
                           f"{bad.size - MAX_PER_BATCH} more records break this clause in this batch"))
    return out


def _local_indices_in_range(batch: Batch, code: str, table: str, column: str, bound_table: str, what: str):
    index = batch.c[f"/{table}/{column}"]
    if index.shape[0] == 0:
        return None
    owner = batch.owner(table)
    bound = batch.counts(bound_table)[owner]
    bad_rows = ((index < 0) | (index >= bound[:, None])).any(axis=1)
    if not bad_rows.any():
        return None
    rows = np.flatnonzero(bad_rows)
    first_row = {}
    for r in rows[::-1]:
        first_row[int(owner[r])] = int(r)
    return _per_record(batch, code, owner[rows], f"/{table}/{column}", f"{what} index out of range",
                       lambda i: f"[0, {int(batch.counts(bound_table)[i])})",
                       lambda i: f"pair {index[first_row[i]].tolist()}")


@check("NF-R002", "error", stage="records")
def record_ids_unique(batch: Batch, earlier_ids):
    out = []
    seen: set[str] = set()  # this block's IDs so far; the runner adds them to earlier_ids afterwards
    for local, rid in enumerate(batch.c["/records/id"]):
        size = len(rid.encode("utf-8", "surrogateescape"))
        if size == 0 or size > layout.MAX_RECORD_ID_BYTES:
            out.append(finding("NF-R002", f"/records/id [{batch.where(local)}]", "record ID length",
                               f"1..{layout.MAX_RECORD_ID_BYTES} UTF-8 bytes", f"{size} bytes"))
        elif rid in seen or rid in earlier_ids:
            out.append(finding("NF-R002", f"/records/id [{batch.where(local)}]", "duplicate record ID",
                               "unique IDs", rid))
        seen.add(rid)
        if len(out) > MAX_PER_BATCH:
            break
    return out or None


@check("NF-R003", "error", stage="records")
def patch_edges_in_range(batch: Batch):
    return _local_indices_in_range(batch, "NF-R003", "patch_edges", "index", "patches", "patch")


@check("NF-R004", "error", stage="records")
def relations_in_range(batch: Batch):
    return _local_indices_in_range(batch, "NF-R004", "relations", "index", "entities", "entity")


def _bridge_state(batch: Batch):
    bridge = batch.c["/records/bridge"]
    P, M = batch.counts("patches"), batch.counts("entities")
    absent = (bridge[:, 0] == -1) & (bridge[:, 1] == -1)
    valid = (bridge[:, 0] >= 0) & (bridge[:, 0] < P) & (bridge[:, 1] >= 0) & (bridge[:, 1] < M)
    return bridge, P, M, absent, valid


@check("NF-R005", "error", stage="records")
def bridge_in_range(batch: Batch):
    bridge, P, M, absent, valid = _bridge_state(batch)
    bad = np.flatnonzero(~absent & ~valid)
    return _per_record(batch, "NF-R005", bad, "/records/bridge", "bridge is neither absent nor in range",
                       lambda i: f"(-1, -1) or ([0, {P[i]}), [0, {M[i]}))", lambda i: tuple(bridge[i].tolist()))


@check("NF-R006", "warning", stage="records")
def bridge_present_when_possible(batch: Batch):
    bridge, P, M, absent, valid = _bridge_state(batch)
    bad = np.flatnonzero(absent & (P > 0) & (M > 0))
    return _per_record(batch, "NF-R006", bad, "/records/bridge", "record has patches and entities but no bridge",
                       "a bridge edge", lambda i: "(-1, -1)")


def _positions(batch: Batch):
    if not batch.meta.has_positions:
        return None
    positions = batch.c["/patches/positions"].astype(np.int64)
    owner = batch.owner("patches")
    grid = batch.c["/records/grid_shape"][owner]
    inside = ((positions >= 0) & (positions < grid)).all(axis=1)
    return positions, owner, inside


@check("NF-R007", "error", stage="records")
def positions_inside_grid(batch: Batch):
    state = _positions(batch)
    if state is None:
        return None
    positions, owner, inside = state
    rows = np.flatnonzero(~inside)
    if rows.size == 0:
        return None
    first = {int(owner[r]): int(r) for r in rows[::-1]}
    grid = batch.c["/records/grid_shape"]
    return _per_record(batch, "NF-R007", owner[rows], "/patches/positions", "grid position outside the grid",
                       lambda i: f"0 <= position < {tuple(grid[i].tolist())}", lambda i: positions[first[i]].tolist())


@check("NF-R008", "error", stage="records")
def positions_unique(batch: Batch):
    state = _positions(batch)
    if state is None:
        return None
    positions, owner, _ = state
    if positions.shape[0] < 2:
        return None
    keys = np.column_stack([owner, positions])
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    repeated = (ordered[1:] == ordered[:-1]).all(axis=1)
    if not repeated.any():
        return None
    rows = np.flatnonzero(repeated) + 1
    dup = {int(ordered[r, 0]): ordered[r, 1:].tolist() for r in rows[::-1]}
    return _per_record(batch, "NF-R008", ordered[rows, 0], "/patches/positions", "grid position repeated",
                       "unique positions", lambda i: dup[i])


@check("NF-R009", "error", stage="records")
def geometry_consistent(batch: Batch):
    if not batch.meta.has_positions:
        return None
    image, patch = batch.c["/records/image_size"], batch.c["/records/patch_size"]
    grid, spacing = batch.c["/records/grid_shape"], batch.c["/records/pixel_spacing"]
    sizes_ok = (image >= 1).all(axis=1) & (patch >= 1).all(axis=1) & (image <= 1 << 31).all(axis=1)
    with np.errstate(all="ignore"):
        ceil = -(-image // np.maximum(patch, 1))
    grid_ok = (grid == ceil).all(axis=1)
    unknown = np.isnan(spacing).all(axis=1)
    with np.errstate(invalid="ignore"):
        known = (np.isfinite(spacing) & (spacing > 0)).all(axis=1)
    bad = np.flatnonzero(~(sizes_ok & grid_ok & (unknown | known)))
    return _per_record(batch, "NF-R009", bad, "/records/grid_shape", "geometry is inconsistent",
                       "sizes >= 1, grid_shape == ceil(image_size / patch_size), spacing > 0 or all NaN",
                       lambda i: f"image {image[i].tolist()}, patch {patch[i].tolist()}, grid {grid[i].tolist()}, "
                                 f"spacing {spacing[i].tolist()}")


def _codes_in(batch: Batch, code: str, table: str, column: str, allowed_low: int, allowed_high: int, what: str):
    values = batch.c[f"/{table}/{column}"]
    if values.shape[0] == 0:
        return None
    bad_rows = np.flatnonzero((values < allowed_low) | (values >= allowed_high))
    if bad_rows.size == 0:
        return None
    owner = batch.owner(table)
    first = {int(owner[r]): int(r) for r in bad_rows[::-1]}
    return _per_record(batch, code, owner[bad_rows], f"/{table}/{column}", f"{what} not in the vocabulary",
                       f"-1 .. {allowed_high - 1}", lambda i: int(values[first[i]]))


@check("NF-R010", "error", stage="records")
def entity_types_in_vocabulary(batch: Batch):
    return _codes_in(batch, "NF-R010", "entities", "type", -1, len(batch.meta.entity_types), "entity type")


@check("NF-R011", "error", stage="records")
def relation_types_in_vocabulary(batch: Batch):
    return _codes_in(batch, "NF-R011", "relations", "type", -1, len(batch.meta.relation_types), "relation type")


@check("NF-R012", "error", stage="records")
def assertions_known(batch: Batch):
    values = batch.c["/entities/assertion"]
    bad_rows = np.flatnonzero(~np.isin(values, ASSERTION_VALUES))
    if bad_rows.size == 0:
        return None
    owner = batch.owner("entities")
    first = {int(owner[r]): int(r) for r in bad_rows[::-1]}
    return _per_record(batch, "NF-R012", owner[bad_rows], "/entities/assertion", "unknown assertion code",
                       "-1, 0, 1 or 2", lambda i: int(values[first[i]]))


def _all_finite(values: np.ndarray) -> bool:
    """True when every value is finite; may be False for huge finite values (callers then look closer).

    NaN and Inf propagate through a sum, so one reduction answers the common case without a
    mask; for float32/float64 a dot product with itself (BLAS) is that reduction at about twice
    the speed of ``sum``.
    """
    flat = values.reshape(-1)
    if values.dtype in (np.float32, np.float64) and flat.flags.c_contiguous:
        return bool(np.isfinite(np.dot(flat, flat)))
    return bool(np.isfinite(values.sum()))


def _feature_columns(meta) -> list[tuple[str, str]]:
    """(path, table) of the float columns that must hold finite values (NF-R013)."""
    columns = [("/patches/features", "patches"), ("/patches/scores", "patches")]
    if meta.entity_feature_dim:
        columns.append(("/entities/features", "entities"))
    return columns


@derived("finite_columns", stage="records")
def finite_columns(batch: Batch) -> frozenset:
    """The feature columns of the block found free of NaN and Inf by one reduction each.

    NF-R013 looks row by row only at the others; the record hash (NF-I001) need not scan these
    for NaN again. A column of huge finite values may be missing here (its sum overflows).
    """
    return frozenset(path for path, _ in _feature_columns(batch.meta)
                     if batch.c[path].size == 0 or _all_finite(batch.c[path]))


@check("NF-R013", "error", stage="records")
def features_finite(batch: Batch, finite_columns: frozenset):
    out: list[Finding] = []
    for path, table in _feature_columns(batch.meta):
        if path in finite_columns:
            continue  # NaN and Inf propagate through a sum: the common case is one pass, no mask
        values = batch.c[path]
        # a non-finite sum may also be an overflow of finite values: look row by row
        finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
        rows = np.flatnonzero(~finite)
        if rows.size == 0:
            continue
        out += _per_record(batch, "NF-R013", batch.owner(table)[rows], path, "NaN or Inf in values",
                           "finite values", lambda i: "NaN or Inf") or []
    return out or None


@check("NF-R014", "error", stage="records")
def strings_are_utf8(batch: Batch):
    out = []
    for column in layout.STRING_COLUMN_TABLE:  # every string array of the format
        path = column.path
        values = batch.c.get(path)
        if values is None:
            continue
        joined = "".join(values)
        if joined.isascii():
            continue
        try:  # undecodable bytes were read back as lone surrogates, which cannot be encoded
            joined.encode("utf-8")
            continue
        except UnicodeEncodeError:
            pass  # find which strings
        for k, text in enumerate(values):
            if text.isascii():
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                where = f"string {k}" if column.table != "records" else batch.where(k)
                out.append(finding("NF-R014", f"{path} [{where}]", "string is not valid UTF-8",
                                   "UTF-8", text.encode("utf-8", "surrogateescape")[:40]))
                if len(out) >= MAX_PER_BATCH:
                    return out
    return out or None


@check("NF-R015", "error", stage="records")
def report_source_known(batch: Batch):
    source = batch.c["/records/report_source"]
    reports = batch.c["/records/report"]
    unknown = ~np.isin(source, REPORT_SOURCE_VALUES)
    orphan = np.array([s == 0 and bool(r) for s, r in zip(source.tolist(), reports)], bool)
    bad = np.flatnonzero(unknown | orphan)
    return _per_record(batch, "NF-R015", bad, "/records/report_source", "report source unknown or report without source",
                       "0 with an empty report, 1 or 2", lambda i: f"source {int(source[i])}, report {len(reports[i])} chars")


@check("NF-R016", "error", stage="records")
def labels_not_infinite(batch: Batch):
    labels = batch.c["/records/labels"]
    bad = np.flatnonzero(np.isinf(labels).any(axis=1)) if labels.size else np.zeros(0, np.int64)
    return _per_record(batch, "NF-R016", bad, "/records/labels", "infinite label", "finite or NaN",
                       lambda i: labels[i].tolist())


NEIGHBOUR_DISTANCE = {"4-neighbour": "manhattan", "6-neighbour": "manhattan",
                      "8-neighbour": "chebyshev", "26-neighbour": "chebyshev"}


@check("NF-R017", "error", stage="records")
def edges_follow_adjacency(batch: Batch):
    metric = NEIGHBOUR_DISTANCE.get(batch.meta.adjacency)
    if metric is None or not batch.meta.has_positions:
        return None  # "custom" and "unknown" rules declare nothing to check
    index = batch.c["/patch_edges/index"].astype(np.int64)
    if index.shape[0] == 0:
        return None
    owner = batch.owner("patch_edges")
    P = batch.counts("patches")[owner]
    ok = ((index >= 0) & (index < P[:, None])).all(axis=1)  # out-of-range edges are NF-R003's
    base = batch.c["/patches/offsets"][:-1][owner]
    positions = batch.c["/patches/positions"].astype(np.int64)
    rows = np.flatnonzero(ok)
    delta = np.abs(positions[base[rows] + index[rows, 0]] - positions[base[rows] + index[rows, 1]])
    distance = delta.sum(axis=1) if metric == "manhattan" else delta.max(axis=1)
    bad_rows = rows[distance != 1]
    if bad_rows.size == 0:
        return None
    first = {int(owner[r]): int(r) for r in bad_rows[::-1]}
    return _per_record(batch, "NF-R017", owner[bad_rows], "/patch_edges/index",
                       f"edge does not join {batch.meta.adjacency} grid neighbours",
                       f"{metric} distance 1", lambda i: f"edge {index[first[i]].tolist()}")


@check("NF-I001", "error", stage="records", background=True)
def record_hashes_match(batch: Batch, hashes: bool, finite_columns: frozenset):
    """Recompute each record's digest from the block's columns and compare it with the stored one.

    ``background``: the runner hashes a block in its pool while it reads and checks the next one
    (one task per block: splitting a block between two threads measured slower).
    """
    if not hashes:
        return None
    stored = batch.c["/records/sha256"]
    digests = block_digests(batch.c, lambda: batch.records, finite_columns)
    bad = [i for i, d in enumerate(digests) if d is not None and d != stored[i].tobytes()]
    return _per_record(batch, "NF-I001", bad, "/records/sha256", "stored hash does not match the record",
                       lambda i: stored[i].tobytes().hex(),
                       lambda i: digests[i].hex())


# -- format 1.1.0: edge conventions (clauses that apply to files declaring 1.1.0 or later) ----------
def _row_keys(owner: np.ndarray, columns: list[np.ndarray]) -> np.ndarray:
    """One sortable key per row of ``(owner, *columns)``: rows are equal exactly when their keys are."""
    rows = np.ascontiguousarray(np.stack([owner.astype(np.int64), *(c.astype(np.int64) for c in columns)], axis=1))
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)


def _duplicated(keys: np.ndarray) -> np.ndarray:
    """Rows whose key occurs earlier too (the second and later copies)."""
    order = np.argsort(keys, kind="stable")
    repeat = np.zeros(keys.size, bool)
    repeat[order[1:]] = keys[order[1:]] == keys[order[:-1]]
    return repeat


def _edge_convention_findings(batch: Batch, code: str, path: str, what: str, bad: dict[int, str]):
    if not bad:
        return None
    return _per_record(batch, code, list(bad), path, f"{what} break the edge convention",
                       "see the clause", lambda i: bad[i])


@check("NF-R018", "warning", stage="records")
def patch_edges_undirected(batch: Batch):
    """Patch edges: each undirected edge stored as (a, b) and (b, a), once each; no self-loops."""
    index = batch.c["/patch_edges/index"]
    if index.shape[0] == 0:
        return None
    owner = batch.owner("patch_edges")
    a, b = index[:, 0], index[:, 1]
    bad: dict[int, str] = {}
    for rows, why in ((np.flatnonzero(a == b), "self-loop"),
                      (np.flatnonzero(_duplicated(_row_keys(owner, [a, b]))), "repeated edge")):
        for r in rows[::-1]:
            bad[int(owner[r])] = f"{why} {index[r].tolist()}"
    provenance = batch.meta.provenance
    if provenance is not None and provenance.conversion is not None:
        # a converted collection keeps its source's edges as stored (the NEURAL reference stores
        # each patch adjacency once), so only repeats and self-loops apply to it
        return _edge_convention_findings(batch, "NF-R018", "/patch_edges/index", "patch edges", bad)
    keys = _row_keys(owner, [a, b])
    missing = np.flatnonzero(~np.isin(_row_keys(owner, [b, a]), keys) & (a != b))
    for r in missing[::-1]:
        bad.setdefault(int(owner[r]), f"edge {index[r].tolist()} without its reverse {index[r][::-1].tolist()}")
    return _edge_convention_findings(batch, "NF-R018", "/patch_edges/index", "patch edges", bad)


@check("NF-R019", "warning", stage="records")
def relations_not_repeated(batch: Batch):
    """Relations are directed: no (source, target, type) stored twice, no entity related to itself."""
    index = batch.c["/relations/index"]
    if index.shape[0] == 0:
        return None
    owner = batch.owner("relations")
    kinds = batch.c["/relations/type"]
    bad: dict[int, str] = {}
    for rows, why in ((np.flatnonzero(index[:, 0] == index[:, 1]), "self-loop"),
                      (np.flatnonzero(_duplicated(_row_keys(owner, [index[:, 0], index[:, 1], kinds]))),
                       "repeated relation")):
        for r in rows[::-1]:
            bad[int(owner[r])] = f"{why} {index[r].tolist()} of type {int(kinds[r])}"
    return _edge_convention_findings(batch, "NF-R019", "/relations/index", "relations", bad)


@check("NF-R020", "warning", stage="records")
def tiles_are_full_resolution(batch: Batch):
    """Tiles hold a patch's full-resolution pixels: ``tile_shape`` equals each record's ``patch_size``."""
    tile_shape = batch.meta.tile_shape
    if tile_shape is None or "/records/patch_size" not in batch.c:
        return None
    patch_size = batch.c["/records/patch_size"]
    bad = np.flatnonzero((patch_size != np.asarray(tile_shape, np.int64)[None, :]).any(axis=1))
    return _per_record(batch, "NF-R020", bad, "/records/patch_size", "tile_shape differs from the patch size",
                       f"patch_size == tile_shape {list(tile_shape)}", lambda i: patch_size[i].tolist())


# -- format 1.1.0: per-record entity text (spec section 4.5) -------------------------------------
@check("NF-R021", "error", stage="records")
def entity_text_known_flags(batch: Batch):
    """``/records/entity_text_known`` is 0 or 1, and a record marked unknown (0) stores empty strings.

    Its strings are not read and its digest hashes the text as absent, so stored text would be
    data that no digest covers, and that a reader which does not know the column would show.
    """
    known = batch.c.get("/records/entity_text_known")
    if known is None:
        return None
    known = np.asarray(known)
    out = _per_record(batch, "NF-R021", np.flatnonzero(known > 1), "/records/entity_text_known",
                      "flag is neither 0 nor 1", "0 (unknown) or 1 (known)", lambda i: int(known[i])) or []
    texts = batch.c.get("/entities/text")
    if texts is not None and len(texts):
        owner = batch.owner("entities")
        stored = np.fromiter((len(t) > 0 for t in texts), bool, len(texts)) & (known[owner] == 0)
        per_record = np.bincount(owner[stored], minlength=batch.n)
        out += _per_record(batch, "NF-R021", owner[stored], "/entities/text",
                           "a record whose entity text is unknown stores entity strings", "only empty strings",
                           lambda i: f"{int(per_record[i])} non-empty string(s)") or []
    return out or None
