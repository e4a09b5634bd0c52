"""The spec, the check registry and the conformance fixtures agree clause by clause."""
import json
import re
from pathlib import Path

import pytest

import neural_format as nf
from neural_format.validation import CLAUSES, REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec" / "neural-format-1.0.md"
CONFORMANCE = ROOT / "spec" / "conformance"
EXPECTED = json.loads((CONFORMANCE / "expected.json").read_text())
# a clause is stated in the spec as a bold ID at the start of a list item: "- **NF-R003** (error) ..."
STATED = re.compile(r"^- \*\*(NF-[A-Z]\d{3})\*\* \((error|warning|best-practice)\)", re.M)


def _fixture(code: str, kind: str) -> Path:
    suffix = "" if CLAUSES[code].scope == "manifest" else ".h5"
    return CONFORMANCE / f"{code}.{kind}{suffix}"


def test_spec_states_exactly_the_clause_list_with_its_severities():
    stated = dict(STATED.findall(SPEC.read_text()))
    assert stated == {code: clause.severity for code, clause in CLAUSES.items()}


def test_every_clause_has_one_registered_check_of_its_severity():
    assert set(REGISTRY) == set(CLAUSES)
    assert all(REGISTRY[code].severity == CLAUSES[code].severity for code in CLAUSES)


def test_every_clause_has_fixtures_and_an_expected_code():
    assert EXPECTED == {_fixture(code, "invalid").name: code for code in CLAUSES}
    for code in CLAUSES:
        assert _fixture(code, "valid").exists() and _fixture(code, "invalid").exists(), code


def test_corpus_is_small():
    """Below 2 MB of distinct files (many valid fixtures are the same bytes; git stores them once)."""
    import hashlib
    sizes = {hashlib.sha256(p.read_bytes()).digest(): p.stat().st_size
             for p in CONFORMANCE.rglob("*") if p.is_file() and p.suffix != ".py" and p.name != "run"}
    assert sum(sizes.values()) < 2_000_000


@pytest.mark.parametrize("code", sorted(CLAUSES))
def test_valid_fixture_has_no_error(code):
    report = nf.validate(_fixture(code, "valid"))
    assert report.ok, report.to_text()
    assert report.exit_code == 0, report.to_text()  # the valid fixtures are clean, not just error-free


@pytest.mark.parametrize("code", sorted(CLAUSES))
def test_invalid_fixture_reports_its_clause(code):
    report = nf.validate(_fixture(code, "invalid"))
    assert code in report.codes, report.to_text()
    # --strict fails on every finding; without it best-practice findings alone exit 0
    assert report.exit_code_for(strict=True) == (2 if CLAUSES[code].severity == "error" else
                                                 max(1, report.exit_code))


def _generator():
    import importlib.util
    spec = importlib.util.spec_from_file_location("conformance_generate", CONFORMANCE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _value(read):
    """What reading gives, comparable with ==: arrays as (dtype, shape, bytes); a failure as its type."""
    import numpy as np
    try:
        value = read()
    except Exception as exc:  # noqa: BLE001 - a fixture may be bent so that reading fails; that is content too
        return ("unreadable", type(exc).__name__)
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.ndarray):
        return ("O", value.shape, repr(value.tolist()))
    return (type(value).__name__, repr(value))


def hdf5_contents(path: Path) -> dict:
    """An HDF5 file as the validator sees it, independent of the library release's byte layout:
    the superblock version, every link (hard, soft, external), and per object its attributes and,
    for a dataset, dtype, shape, maximum shape, storage (chunks, filters, virtual sources) and values."""
    import h5py
    raw = path.read_bytes()
    out: dict = {"/": ("superblock", raw[8] if raw[:8] == b"\x89HDF\r\n\x1a\n" else None)}
    if out["/"][1] is None:
        return {"/": ("not HDF5", raw)}

    def attrs(obj) -> dict:
        return {name: (_value(lambda n=name: obj.attrs[n]), obj.attrs.get_id(name).dtype.str) for name in obj.attrs}

    def walk(group, prefix: str) -> None:
        out[prefix or "/"] = ("group", attrs(group), out.get(prefix or "/"))
        for name in sorted(group.keys()):
            link = group.get(name, getlink=True)
            where = f"{prefix}/{name}"
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                out[where] = (type(link).__name__, getattr(link, "filename", None), link.path)
                continue
            obj = group[name]
            if isinstance(obj, h5py.Group):
                walk(obj, where)
                continue
            virtual = [(s.vspace.shape, s.file_name, s.dset_name) for s in obj.virtual_sources()] \
                if obj.is_virtual else None
            out[where] = ("dataset", obj.dtype.str, obj.shape, obj.maxshape, obj.chunks, obj.compression,
                          obj.compression_opts, obj.shuffle, obj.fletcher32, obj.scaleoffset, virtual,
                          attrs(obj), _value(lambda o=obj: o[()]))

    with h5py.File(path, "r") as f:
        walk(f, "")
    return out


@pytest.mark.parametrize("code", ["NF-R003", "NF-H004", "NF-I001"])
def test_fixtures_are_what_the_generator_makes(tmp_path, code):
    """Byte for byte under the h5py/HDF5 release that wrote the corpus (``generated-with.json``);
    under another release (the same objects, other bytes: object headers and heaps are laid out
    differently), the same contents: links, dtypes, shapes, storage, values and attributes."""
    generate = _generator()
    valid, invalid = generate.cases()[code]
    generate.build_case(tmp_path / "fixture.h5", invalid)
    made, committed = tmp_path / "fixture.h5", _fixture(code, "invalid")
    if generate.library_versions() == json.loads((CONFORMANCE / generate.GENERATED_WITH).read_text()):
        assert made.read_bytes() == committed.read_bytes()
    assert hdf5_contents(made) == hdf5_contents(committed)


def test_contents_comparison_sees_a_changed_value_attribute_and_storage(tmp_path):
    """The comparison used when the bytes may differ is not blind."""
    import h5py
    import numpy as np
    base = tmp_path / "base.h5"
    with h5py.File(base, "w") as f:
        f.create_dataset("g/x", data=np.arange(6, dtype="<i4"))
        f["g"].attrs["a"] = 1
    def variant(name, change):
        path = tmp_path / name
        path.write_bytes(base.read_bytes())
        with h5py.File(path, "r+") as f:
            change(f)
        return hdf5_contents(path)
    assert variant("same.h5", lambda f: None) == hdf5_contents(base)
    assert variant("value.h5", lambda f: f["g/x"].__setitem__(0, 7)) != hdf5_contents(base)
    assert variant("attr.h5", lambda f: f["g"].attrs.__setitem__("a", 2)) != hdf5_contents(base)
    assert variant("dtype.h5", lambda f: (f.__delitem__("g/x"), f.create_dataset("g/x", data=np.arange(6, dtype="<i8")))) \
        != hdf5_contents(base)
    assert variant("chunks.h5", lambda f: (f.__delitem__("g/x"), f.create_dataset("g/x", data=np.arange(6, dtype="<i4"),
                                                                                 chunks=(3,)))) != hdf5_contents(base)
    assert variant("link.h5", lambda f: f.__setitem__("g/y", h5py.SoftLink("/g/x"))) != hdf5_contents(base)
