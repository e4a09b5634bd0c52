"""Version and encoding checks (spec section 3), from :func:`neural_format.files.guards.read_root`."""
from __future__ import annotations

from ..format import layout
from ..files.elements import encoding_fits, encoding_of, reader_for
from .findings import finding, from_error
from .registry import check


def _root_error(ctx, code: str):
    _, error, _ = ctx.root()
    return from_error(error) if error is not None and error.code == code else None


def legacy_reader(ctx):
    """The registered legacy reader when the file is an older major (NF-V004 satisfied), else None."""
    _, error, _ = ctx.root()
    if error is None or error.code != "NF-V004":
        return None
    try:
        major = int(str(error.found).split(".")[0])
    except ValueError:
        return None
    return reader_for(layout.ROOT_ENCODING[0], major)


@check("NF-V001", "error", stage="root")
def format_attributes_present(ctx):
    return _root_error(ctx, "NF-V001")


@check("NF-V002", "warning", stage="root")
def newer_minor_warns(ctx):
    _, _, warning_text = ctx.root()
    if warning_text is None:
        return None
    return finding("NF-V002", "/@format_version", warning_text, "this SDK's minor or older", "a newer minor")


@check("NF-V003", "error", stage="root")
def newer_major_refused(ctx):
    return _root_error(ctx, "NF-V003")


@check("NF-V004", "error", stage="root")
def older_major_needs_legacy_reader(ctx):
    if legacy_reader(ctx) is not None:
        return None
    return _root_error(ctx, "NF-V004")


@check("NF-E001", "error", stage="root")
def encoding_attributes(ctx):
    findings = []
    root_error = _root_error(ctx, "NF-E001")
    if root_error is not None:
        findings.append(root_error)
    expected = {group: (encoding, layout.TABLE_ENCODING_VERSION) for group, encoding in layout.TABLES.values()}
    expected.update({path: layout.STRING_ARRAY for path in layout.STRING_COLUMNS})
    expected[layout.METADATA_PATH] = layout.METADATA_ENCODING
    for path, (kind, version) in expected.items():
        obj = ctx.file.get(path, getlink=True)
        if obj is None or type(obj).__name__ != "HardLink":
            continue  # missing objects and links are reported by NF-S001 / NF-H003
        try:
            found = encoding_of(ctx.file[path])
        except Exception:
            found = (None, None)
        if not encoding_fits(found, (kind, version)):
            findings.append(finding("NF-E001", f"{path}@encoding-type", "encoding attributes missing or wrong",
                                    f"{kind} {version}", f"{found[0]} {found[1]}"))
    return findings or None
