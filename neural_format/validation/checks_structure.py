"""Structure checks (spec section 4): objects, dtypes, shapes, offsets, per-record columns.

Each check asks the context for objects; the context runs the reader's guards
(``link_guard``, ``dataset_guard``, ``load_offsets``) once per object and keeps the coded error.
A check reports the errors of its own clause; container codes (NF-H00x) come from the walk.
"""
from __future__ import annotations

from ..format import layout
from .findings import finding, from_error
from .registry import check


def _guard_errors(ctx, code: str) -> list:
    out = []
    for path in ctx.expected_groups():
        _, error = ctx.link(path)
        if error is not None and error.code == code:
            out.append(from_error(error))
    for path in ctx.expected_datasets():
        _, error = ctx.dataset(path)
        if error is not None and error.code == code:
            out.append(from_error(error))
    return out


@check("NF-S001", "error", stage="structure")
def required_objects_present(ctx):
    out = _guard_errors(ctx, "NF-S001") + _guard_errors(ctx, "NF-F001")  # damaged objects under a present name
    for path in ctx.expected_groups():
        obj, error = ctx.link(path)
        if error is None and not hasattr(ctx.file[path], "keys"):
            out.append(finding("NF-S001", path, "expected a group", "group", type(ctx.file[path]).__name__))
    return out or None


@check("NF-S002", "error", stage="structure")
def dataset_dtypes(ctx):
    return _guard_errors(ctx, "NF-S002") or None


@check("NF-S003", "error", stage="structure")
def dataset_shapes(ctx):
    out = _guard_errors(ctx, "NF-S003")
    for table in ("patches", "entities", "relations", "patch_edges"):
        rows = {}
        for path, (_, _, owner) in ctx.expected_datasets().items():
            if owner == table:
                ds, error = ctx.dataset(path)
                if error is None:
                    rows[path] = ds.shape[0]
        if len(set(rows.values())) > 1:
            out.append(finding("NF-S003", layout.TABLES[table][0], "columns of one table disagree on their row count",
                               "equal lengths", ", ".join(f"{p}: {r}" for p, r in rows.items())))
    return out or None


def _offset_targets(ctx):
    """(offsets path, expected count, rows covered) for every offsets dataset."""
    n = ctx.record_count()
    targets = []
    for table in layout.RAGGED_TABLES:
        group = layout.TABLES[table][0]
        targets.append((f"{group}/offsets", n, ctx.table_rows(table)))
    for path, owner in layout.present_string_columns(ctx.meta).items():
        data, error = ctx.dataset(f"{path}/data")
        rows = None if error is not None else data.shape[0]
        if owner == "records":
            count = n
        else:
            offsets, _ = ctx.offsets(f"{layout.TABLES[owner][0]}/offsets", n, ctx.table_rows(owner))
            count = None if offsets is None else int(offsets[-1])
        targets.append((f"{path}/offsets", None if path == "/records/id" else count, rows))
    return targets


@check("NF-O001", "error", stage="structure")
def offsets_cover_rows(ctx):
    out = []
    for path, count, rows in _offset_targets(ctx):
        _, shape_error = ctx.dataset(path)
        if shape_error is not None:
            continue  # reported by NF-S00x
        _, error = ctx.offsets(path, count, rows)
        if error is not None:
            out.append(from_error(error))
    return out or None


@check("NF-R001", "error", stage="structure")
def per_record_columns_have_n_rows(ctx):
    n = ctx.record_count()
    if n is None:
        return None
    out = []
    for path, (_, _, owner) in ctx.expected_datasets().items():
        if owner != "records":
            continue
        ds, error = ctx.dataset(path)
        if error is None and ds.shape[0] != n:
            out.append(finding("NF-R001", path, "per-record column length differs from the record count", n,
                               ds.shape[0]))
    return out or None
