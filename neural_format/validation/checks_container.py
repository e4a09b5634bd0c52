"""Container checks: the raw HDF5 file, walked link by link without following any link out.

The walk uses h5py's low-level link visitor (``visititems_links``): soft and external links are
seen as links and never resolved, hard links are inspected as objects. It stops after
:data:`MAX_LINKS` links so a hostile file cannot make validation hang.
"""
from __future__ import annotations

import h5py

from ..files import guards
from ..format import layout
from ..errors import NeuralFormatError
from .findings import finding, from_error
from .registry import check

MAX_LINKS = 100_000
MAX_DEPTH = 32  # the spec's deepest object is 3 levels down
MAX_ATTRIBUTES = 1_000
MAX_DATASET_BYTES = 1 << 40  # declared logical size; larger is refused before any read (NF-H006)


def known_paths() -> set[str]:
    """Every object path format 1.0 defines, whatever the metadata declares."""
    paths = {"/", layout.METADATA_PATH}
    for table, (group, _) in layout.TABLES.items():
        paths.add(group)
        if table in layout.RAGGED_TABLES:
            paths.add(f"{group}/offsets")
    paths.update(column.path for column in layout.COLUMNS)
    for path in layout.STRING_COLUMNS:
        paths.update({path, f"{path}/data", f"{path}/offsets"})
    return paths


def _bad_dataset_dtype(dtype) -> str | None:
    if h5py.check_dtype(ref=dtype) is not None:
        return "object reference"
    if h5py.check_dtype(vlen=dtype) is not None:
        return "variable-length"
    if h5py.check_dtype(enum=dtype) is not None:
        return "enum"
    if dtype.kind == "O":
        return "object"
    if dtype.fields is not None:
        return "compound"
    if dtype.subdtype is not None:
        return "array"
    if dtype.kind == "V":
        return "opaque"
    return None


def _bad_attribute_dtype(dtype) -> str | None:
    if h5py.check_dtype(ref=dtype) is not None:
        return "object reference"
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU":
        return None
    if dtype.kind in "biuf":
        return None
    return _bad_dataset_dtype(dtype) or f"dtype {dtype}"


def _inspect_attributes(obj, path: str, out: list) -> None:
    try:
        names = list(obj.attrs.keys())[:MAX_ATTRIBUTES + 1]
    except Exception as exc:
        out.append(finding("NF-F001", path, f"attributes unreadable: {type(exc).__name__}"))
        return
    if len(names) > MAX_ATTRIBUTES:
        out.append(finding("NF-H006", path, "too many attributes", f"<= {MAX_ATTRIBUTES}", "more"))
    for name in names[:MAX_ATTRIBUTES]:
        try:
            dtype = obj.attrs.get_id(name).dtype
        except Exception as exc:
            out.append(finding("NF-H002", f"{path}@{name}", f"attribute type unreadable: {type(exc).__name__}",
                               "a string or numeric attribute", "unreadable"))
            continue
        bad = _bad_attribute_dtype(dtype)
        if bad:
            out.append(finding("NF-H002", f"{path}@{name}", "forbidden attribute type",
                               "a string or numeric attribute", bad))


def _inspect_dataset(ds: h5py.Dataset, path: str, out: list) -> None:
    # NF-H004/H005: the reader's rule (neural_format.files.guards), every problem reported
    problems = guards.storage_layout_problems(ds, path)
    out.extend(from_error(e) for e in problems if e.code == "NF-H004")
    bad = _bad_dataset_dtype(ds.dtype)
    if bad:
        out.append(finding("NF-H002", path, "forbidden dataset type", "a numeric dataset", bad))
    out.extend(from_error(e) for e in problems if e.code == "NF-H005")
    shape = ds.shape or ()
    declared = ds.dtype.itemsize
    for extent in shape:
        declared *= int(extent)
    if declared > MAX_DATASET_BYTES:
        out.append(finding("NF-H006", path, "declared dataset size is not sane",
                           f"<= {MAX_DATASET_BYTES} bytes", f"{declared} bytes (shape {shape})"))
    else:
        try:
            guards.storage_guard(ds)
        except NeuralFormatError as exc:
            out.append(from_error(exc))


def visit_links(f: h5py.File, visit, out: list) -> None:
    """Call ``visit(name, link)`` for every link, breadth first, through parent group handles.

    Not ``visititems_links``: HDF5's walk costs grow with the square of the nesting depth (300
    nested groups took 7 s), so a hostile file could stall the validator. Each group is entered
    once (hard-link cycles are cut) and groups deeper than :data:`MAX_DEPTH` are reported
    (NF-H006) and not entered.
    """
    import collections
    seen = {f.id}
    queue = collections.deque([(f, "", 0)])
    while queue:
        group, prefix, depth = queue.popleft()
        for name in group:
            link = group.get(name, getlink=True)
            path = prefix + name
            visit(path, link)
            if not isinstance(link, h5py.HardLink):
                continue
            child = group.get(name)
            if not isinstance(child, h5py.Group) or child.id in seen:
                continue
            seen.add(child.id)
            if depth + 1 >= MAX_DEPTH:
                out.append(finding("NF-H006", "/" + path, "groups nested too deeply",
                                   f"<= {MAX_DEPTH} levels", "deeper"))
                continue
            queue.append((child, path + "/", depth + 1))


def walk(f: h5py.File) -> list:
    """Every container finding of the file (NF-H002..NF-H006, NF-S004), from one link walk."""
    out: list = []
    known = known_paths()
    count = 0
    inspected: set = {f.id}  # each object once, however many hard links name it

    class _Stop(Exception):
        pass

    def visit(name: str, link) -> None:
        nonlocal count
        count += 1
        if count > MAX_LINKS:
            out.append(finding("NF-H006", "/", "too many links to walk", f"<= {MAX_LINKS}", "more"))
            raise _Stop
        path = "/" + name
        problem = guards.link_problem(link, path)  # NF-H003: the reader's rule, for every link
        if problem is not None:
            out.append(from_error(problem))
            return
        if path not in known:
            out.append(finding("NF-S004", path, "object not defined by the spec; readers ignore it",
                               "only spec-defined objects", "an extra object"))
        try:
            obj = f[path]
            if obj.id in inspected:  # another hard link to an object already inspected
                return
            inspected.add(obj.id)
            _inspect_attributes(obj, path, out)
            if isinstance(obj, h5py.Dataset):
                _inspect_dataset(obj, path, out)
        except Exception as exc:
            out.append(finding("NF-F001", path, f"object unreadable: {type(exc).__name__}: {exc}"[:200]))

    _inspect_attributes(f, "/", out)
    try:
        visit_links(f, visit, out)
    except _Stop:
        pass
    except Exception as exc:
        out.append(finding("NF-F001", "/", f"link walk failed: {type(exc).__name__}: {exc}"[:200]))
    return out


def _walk(ctx) -> list:
    return ctx.memo(("walk",), lambda: walk(ctx.file))


def _of(ctx, code: str):
    return [f for f in _walk(ctx) if f.code == code] or None


@check("NF-F001", "error", stage="container")
def file_is_readable_hdf5(ctx):
    findings = [from_error(ctx.open_error)] if ctx.open_error is not None else []
    if ctx.file is not None:
        findings += _of(ctx, "NF-F001") or []
    return findings or None


@check("NF-H001", "error", stage="container")
def superblock_is_old_enough(ctx):
    version = ctx.superblock_version()
    if version is not None and version > 2:
        return finding("NF-H001", "/ (superblock)", "superblock too new for HDF5 1.8/1.10 tools",
                       "superblock version <= 2 (libver bounds earliest..v108)", f"version {version}")
    return None


@check("NF-H002", "error", stage="container")
def no_object_or_vlen_types(ctx):
    return _of(ctx, "NF-H002")


@check("NF-H003", "error", stage="container")
def no_external_or_soft_links(ctx):
    return _of(ctx, "NF-H003")


@check("NF-H004", "error", stage="container")
def no_virtual_datasets(ctx):
    return _of(ctx, "NF-H004")


@check("NF-H005", "error", stage="container")
def only_allowed_filters(ctx):
    return _of(ctx, "NF-H005")


@check("NF-H006", "error", stage="container")
def declared_sizes_sane(ctx):
    return _of(ctx, "NF-H006")


@check("NF-S004", "best-practice", stage="container")
def no_undefined_objects(ctx):
    return _of(ctx, "NF-S004")
