"""Generate the hostile pickle corpus for ``neural_format.convert_pickle``.

    python tests/hostile/pickles.py OUT_DIR MARKER_DIR

Files are assembled byte by byte, without torch: pickle opcodes (protocol 2, as ``torch.save``
writes them) and zip archives laid out like ``torch.save``'s (``<prefix>/data.pkl``,
``<prefix>/data/<key>`` raw storage bytes, ``byteorder``, ``version``). Every payload that would
run code, if it ever ran, creates a file in MARKER_DIR: the test asserts that none appears.
:data:`PICKLE_KINDS` lists each kind with the code ``convert_pickle`` must raise (``"ok"`` for the
controls that must convert).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


# -- a tiny pickle assembler (protocol 2 opcodes) -------------------------------------------------
def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(value: int) -> bytes:
    if -(1 << 31) <= value < (1 << 31):
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def op_long(value: int) -> bytes:
    """LONG4: an integer of any size (torch never writes one; a hostile file may)."""
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8b" + struct.pack("<I", len(data)) + data


def op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def op_tensor(key: str, storage: str, numel: int, size, stride, offset: int = 0) -> bytes:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""
    pid = op_tuple(op_str("storage"), op_global("torch", storage), op_str(key), op_str("cpu"), op_int(numel))
    return (op_global("torch._utils", "_rebuild_tensor_v2")
            + b"(" + pid + b"Q" + op_int(offset) + op_tuple(*map(op_int, size)) + op_tuple(*map(op_int, stride))
            + b"\x89" + op_global("collections", "OrderedDict") + b")R" + b"tR")


def op_data(attributes: dict[str, bytes]) -> bytes:
    """A ``torch_geometric.data.Data`` as PyG 2.x pickles it (state dict with a GlobalStorage)."""
    mapping = b"}(" + b"".join(op_str(k) + v for k, v in attributes.items()) + b"u"
    store = (op_global("torch_geometric.data.storage", "GlobalStorage") + b")\x81}("
             + op_str("_mapping") + mapping + b"ub")
    return (op_global("torch_geometric.data.data", "Data") + b")\x81}("
            + op_str("_edge_attr_cls") + op_global("torch_geometric.data.data", "DataEdgeAttr")
            + op_str("_tensor_attr_cls") + op_global("torch_geometric.data.data", "DataTensorAttr")
            + op_str("_store") + store + b"ub")


def op_list(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"


def program(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


# -- the benign graph ---------------------------------------------------------------------------
X = np.arange(20, dtype=np.float32).reshape(5, 4) / 7
EDGES = np.array([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]], np.int64)
Y = np.array([1.0], np.float32)


def benign_parts(x_numel: int = 20, x_size=(5, 4), x_key: str = "0", x_storage: str = "FloatStorage",
                 extra: dict[str, bytes] | None = None) -> tuple[bytes, dict[str, bytes]]:
    attributes = {
        "x": op_tensor(x_key, x_storage, x_numel, x_size, (x_size[1], 1) if len(x_size) == 2 else (1,)),
        "edge_index": op_tensor("1", "LongStorage", EDGES.size, EDGES.shape, (EDGES.shape[1], 1)),
        "y": op_tensor("2", "FloatStorage", 1, (1,), (1,)),
        **(extra or {}),
    }
    storages = {"0": X.tobytes(), "1": EDGES.tobytes(), "2": Y.tobytes()}
    return program(op_list(op_data(attributes))), storages


def torch_zip(path: Path, pkl: bytes, storages: dict[str, bytes], *, prefix: str = "archive",
              extra: dict[str, bytes] | None = None, compress: tuple[str, ...] = ()) -> None:
    members = {f"{prefix}/data.pkl": pkl, f"{prefix}/byteorder": b"little", f"{prefix}/version": b"3\n"}
    members.update({f"{prefix}/data/{k}": v for k, v in storages.items()})
    members.update(extra or {})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            method = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, compress_type=method)


# -- payloads that would run code -----------------------------------------------------------------
class _Reduce:
    """Pickles as ``func(*args)``; pickling it runs nothing."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def marker_command(marker: Path) -> str:
    return f"touch {marker}"


def evil_os_system(marker: Path) -> bytes:
    return pickle.dumps(_Reduce(os.system, (marker_command(marker),)), protocol=2)


def evil_eval(marker: Path) -> bytes:
    import builtins
    return pickle.dumps(_Reduce(builtins.eval, (f"open({str(marker)!r}, 'w').close()",)), protocol=2)


def evil_stack_global(marker: Path) -> bytes:
    """Protocol 4 STACK_GLOBAL spelling of ``posix.system`` (no textual 'os system' in the bytes)."""
    body = (b"\x8c\x05posix\x94\x8c\x06system\x94\x93\x94"
            + b"\x8c" + bytes([len(marker_command(marker))]) + marker_command(marker).encode() + b"\x85R.")
    return b"\x80\x04" + body


def evil_popen_in_data(marker: Path) -> bytes:
    popen = (op_global("subprocess", "Popen") + op_tuple(op_tuple(op_str("touch"), op_str(str(marker)))) + b"R")
    pkl, _ = benign_parts(extra={"note": popen})
    return pkl


# -- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PickleCase:
    name: str
    build: Callable[[Path, Path], None]  # (target file, marker dir)
    expect: str  # the code convert_pickle raises, or "ok"


def zip_with(pkl_fn, **kwargs):
    def build(path: Path, markers: Path) -> None:
        _, storages = benign_parts()
        torch_zip(path, pkl_fn(markers / f"{path.stem}.marker"), storages, **kwargs)
    return build


def benign_zip(**parts_kwargs):
    def build(path: Path, markers: Path) -> None:
        pkl, storages = benign_parts(**{k: v for k, v in parts_kwargs.items() if k != "storages"})
        storages.update(parts_kwargs.get("storages", {}))
        torch_zip(path, pkl, storages)
    return build


def raw_file(content_fn):
    def build(path: Path, markers: Path) -> None:
        path.write_bytes(content_fn(markers / f"{path.stem}.marker"))
    return build


def nested_pickle_storage(path: Path, markers: Path) -> None:
    """The x storage's bytes are themselves a malicious pickle (padded to the declared size)."""
    evil = evil_os_system(markers / f"{path.stem}.marker")
    numel = -(-len(evil) // 4)
    pkl, storages = benign_parts(x_numel=numel, x_size=(numel // 4, 4) if numel % 4 == 0 else (numel, 1))
    storages["0"] = evil.ljust(numel * 4, b"\x00")
    torch_zip(path, pkl, storages)


def second_pickle_member(path: Path, markers: Path) -> None:
    pkl, storages = benign_parts()
    torch_zip(path, pkl, storages, extra={"archive/data/evil.pkl": evil_os_system(markers / f"{path.stem}.marker"),
                                          "archive/extra.pkl": evil_eval(markers / f"{path.stem}.marker")})


def two_archives(path: Path, markers: Path) -> None:
    pkl, storages = benign_parts()
    torch_zip(path, pkl, storages, extra={"other/data.pkl": evil_os_system(markers / f"{path.stem}.marker")})


def build_on_inert(path: Path, markers: Path) -> None:
    """BUILD a state onto the FloatStorage stand-in (tries to set attributes on it)."""
    pkl = program(op_global("torch", "FloatStorage") + b"}(" + op_str("dtype") + op_str("evil") + b"ub")
    torch_zip(path, pkl, {})


def deep_nesting(path: Path, markers: Path) -> None:
    """A list nested 200,000 deep (the pure-Python unpickler builds it without recursing)."""
    torch_zip(path, b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".", {})


def tar_container(path: Path, markers: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = evil_os_system(markers / f"{path.stem}.marker")
        info = tarfile.TarInfo("pickle")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())


def two_storage_types(path: Path, markers: Path) -> None:
    """Storage "0" declared as FloatStorage for x and as LongStorage for y."""
    attributes = {
        "x": op_tensor("0", "FloatStorage", 20, (5, 4), (4, 1)),
        "edge_index": op_tensor("1", "LongStorage", EDGES.size, EDGES.shape, (EDGES.shape[1], 1)),
        "y": op_tensor("0", "LongStorage", 10, (1,), (1,)),
    }
    torch_zip(path, program(op_list(op_data(attributes))), {"0": X.tobytes(), "1": EDGES.tobytes()})


# -- issue 14: objects whose repr, hash or str blow up -------------------------------------------
def billion_laughs(levels: int = 14, fan: int = 10, kind: bytes = b"l") -> bytes:
    """Nested lists (``l``) or tuples (``t``) of ``fan ** levels`` leaves in a few hundred bytes,
    by memo sharing: level k is ``fan`` references (BINGET) to level k - 1, kept only in the memo
    (BINPUT, POP) until the last level, which is left on the stack."""
    def level(items: bytes, k: int) -> bytes:
        body = b"](" + items + b"e" if kind == b"l" else b"(" + items + b"t"
        return body + b"q" + bytes([k]) + (b"0" if k < levels - 1 else b"")
    out = level(b"K\x00" * fan, 0)
    for k in range(1, levels):
        out += level((b"h" + bytes([k - 1])) * fan, k)
    return out


def deep_tuple(depth: int = 200_000) -> bytes:
    return b")" + b"\x85" * depth


def deep_list(depth: int = 200_000) -> bytes:
    return b"]" * depth + b"a" * (depth - 1)


def inmemory_with_class(item: bytes) -> bytes:
    """``(data dict, slices dict, <item>)``: the InMemoryDataset tuple with a hostile class slot."""
    return program(b"}" + b"}" + item + b"\x87")


def laughs_in_persistent_id(path: Path, markers: Path) -> None:
    torch_zip(path, program(billion_laughs() + b"Q"), {})


def laughs_as_legacy_magic(path: Path, markers: Path) -> None:
    path.write_bytes(program(billion_laughs()))


def deep_list_as_legacy_magic(path: Path, markers: Path) -> None:
    path.write_bytes(program(deep_list()))


def as_dict_key(key: bytes):
    def build(path: Path, markers: Path) -> None:
        torch_zip(path, program(b"}" + key + b"K\x01s"), {})
    return build


def attribute(name: str, value: bytes):
    """The benign graph with attribute ``name`` replaced by ``value``."""
    def build(path: Path, markers: Path) -> None:
        pkl, storages = benign_parts(extra={name: value})
        torch_zip(path, pkl, storages)
    return build


def zero_stride_x(path: Path, markers: Path) -> None:
    """x of shape (5, 4) with stride (0, 1) over a 20-element storage: its first row broadcast five times
    (no larger than its storage, so only the stride rule refuses it)."""
    attributes = {
        "x": op_tensor("0", "FloatStorage", 20, (5, 4), (0, 1)),
        "edge_index": op_tensor("1", "LongStorage", EDGES.size, EDGES.shape, (EDGES.shape[1], 1)),
        "y": op_tensor("2", "FloatStorage", 1, (1,), (1,)),
    }
    torch_zip(path, program(op_list(op_data(attributes))), {"0": X.tobytes(), "1": EDGES.tobytes(),
                                                             "2": Y.tobytes()})


def empty_x_of_huge_width(path: Path, markers: Path) -> None:
    """x of shape (0, 2^40): no element, but a width no collection can declare."""
    attributes = {
        "x": op_tensor("0", "FloatStorage", 0, (0, 1 << 40), (1 << 40, 1)),
        "edge_index": op_tensor("1", "LongStorage", 0, (2, 0), (0, 1)),
        "y": op_tensor("2", "FloatStorage", 1, (1,), (1,)),
    }
    torch_zip(path, program(op_list(op_data(attributes))), {"0": b"", "1": b"", "2": Y.tobytes()})


PICKLE_KINDS: list[PickleCase] = [
    PickleCase("control-benign", benign_zip(), "ok"),
    PickleCase("control-extra-pickle-member-never-loaded", second_pickle_member, "ok"),
    PickleCase("reduce-os-system", zip_with(evil_os_system), "NF-U001"),
    PickleCase("reduce-builtins-eval", zip_with(evil_eval), "NF-U001"),
    PickleCase("reduce-posix-system-stack-global", zip_with(evil_stack_global), "NF-U001"),
    PickleCase("popen-inside-data-attribute", zip_with(evil_popen_in_data), "NF-U001"),
    PickleCase("legacy-stream-os-system", raw_file(evil_os_system), "NF-U001"),
    PickleCase("legacy-stream-eval", raw_file(evil_eval), "NF-U001"),
    PickleCase("nested-pickle-as-storage-bytes", nested_pickle_storage, "ok"),
    PickleCase("second-data-pkl-in-archive", two_archives, "NF-U004"),
    PickleCase("storage-numel-2-pow-60", benign_zip(x_numel=1 << 60, x_size=(1 << 58, 4)), "NF-U003"),
    PickleCase("storage-numel-larger-than-stored", benign_zip(x_numel=21, x_size=(5, 4)), "NF-U003"),
    PickleCase("tensor-size-beyond-storage", benign_zip(x_size=(1 << 40, 4)), "NF-U003"),
    PickleCase("storage-declared-twice-differently", two_storage_types, "NF-U003"),
    PickleCase("storage-key-path-traversal", benign_zip(x_key="../../etc/passwd"), "NF-U003"),
    PickleCase("storage-key-missing", benign_zip(x_key="9"), "NF-U003"),
    PickleCase("storage-class-not-torch", benign_zip(x_storage="UntypedStorage"), "NF-U001"),
    PickleCase("compressed-member", lambda p, m: torch_zip(p, *benign_parts(), compress=("archive/data/0",)), "NF-U004"),
    PickleCase("member-outside-prefix", lambda p, m: torch_zip(p, *benign_parts(), extra={"../evil": b"x"}), "NF-U004"),
    PickleCase("build-state-on-inert-storage", build_on_inert, "NF-U002"),
    PickleCase("nesting-200k-deep-list", deep_nesting, "NF-U006"),
    PickleCase("memo-index-2-pow-32", lambda p, m: torch_zip(p, b"\x80\x02]r\xff\xff\xff\xffj\xfe\xff\xff\xff.", {}),
               "NF-U002"),
    PickleCase("truncated-data-pkl", lambda p, m: torch_zip(p, benign_parts()[0][:-40], benign_parts()[1]), "NF-U002"),
    PickleCase("not-a-zip-or-pickle", raw_file(lambda m: b"hello, this is a report\n" * 10), "NF-U005"),
    PickleCase("tar-container", tar_container, "NF-U005"),
    PickleCase("zero-bytes", raw_file(lambda m: b""), "NF-F001"),
    # issue 14 item 2: error paths that would repr() 10^14 leaves
    PickleCase("billion-laughs-legacy-magic", laughs_as_legacy_magic, "NF-U005"),
    PickleCase("billion-laughs-persistent-id", laughs_in_persistent_id, "NF-U002"),
    PickleCase("billion-laughs-inmemory-class", lambda p, m: torch_zip(p, inmemory_with_class(billion_laughs()), {}),
               "NF-U006"),
    PickleCase("billion-laughs-tuple-as-dict-key", as_dict_key(billion_laughs(kind=b"t")), "NF-U002"),
    # item 7: zero-stride (broadcast) tensors are refused, as docs/convert.md says
    PickleCase("zero-stride-broadcast-x", zero_stride_x, "NF-U003"),
    # item 8: raw tracebacks (and a CPython crash: hash of a deep tuple) instead of codes
    PickleCase("nesting-200k-deep-legacy-magic", deep_list_as_legacy_magic, "NF-U005"),
    PickleCase("nesting-200k-deep-inmemory-class", lambda p, m: torch_zip(p, inmemory_with_class(deep_list()), {}),
               "NF-U006"),
    PickleCase("nesting-200k-deep-tuple-as-dict-key", as_dict_key(deep_tuple()), "NF-U002"),
    PickleCase("nesting-200k-deep-list-as-y", attribute("y", deep_list()), "NF-U006"),
    PickleCase("long-4000-digits-as-y", attribute("y", op_long(10 ** 4000)), "NF-U006"),
    PickleCase("long-5000-digits-as-y", attribute("y", op_long(-(10 ** 5000))), "NF-U006"),
    PickleCase("long-4000-digits-as-inmemory-class", lambda p, m: torch_zip(p, inmemory_with_class(op_long(10 ** 4000)), {}),
               "NF-U006"),
    PickleCase("long-5000-digits-as-inmemory-class", lambda p, m: torch_zip(p, inmemory_with_class(op_long(10 ** 5000)), {}),
               "NF-U006"),
    PickleCase("long-5000-digits-as-num-nodes", attribute("num_nodes", op_long(10 ** 5000)), "ok"),
    PickleCase("x-shape-0-by-2-pow-40", empty_x_of_huge_width, "NF-X003"),
    # the KG's `label` is evidence and entity text only as a list of strings; anything else is dropped
    PickleCase("long-4000-digits-in-label", attribute("label", op_list(op_long(10 ** 4000))), "ok"),
    PickleCase("billion-laughs-as-label", attribute("label", billion_laughs()), "ok"),
]


def generate(out: Path, markers: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    markers.mkdir(parents=True, exist_ok=True)
    table = {}
    for case in PICKLE_KINDS:
        target = out / f"{case.name}.pt"
        case.build(target, markers)
        table[case.name] = case.expect
    (out / "expected.json").write_text(json.dumps(table, indent=1))
    return table


if __name__ == "__main__":
    print(len(generate(Path(sys.argv[1]), Path(sys.argv[2]))), "pickle kinds written")
