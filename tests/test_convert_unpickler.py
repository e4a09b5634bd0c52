"""The restricted unpickler never executes anything from the file and refuses hostile input with codes."""
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from neural_format.convert import open_source
from neural_format.errors import NeuralFormatError, NotAFileError, UnsafeContentError

torch = pytest.importorskip("torch")
pyg_data = pytest.importorskip("torch_geometric.data")


def _torch_zip(path, pkl: bytes, storages: dict = None, *, prefix="archive", compress=zipfile.ZIP_STORED,
               extra=()):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo(f"{prefix}/data.pkl"), pkl, compress_type=compress)
        z.writestr(f"{prefix}/byteorder", b"little")
        z.writestr(f"{prefix}/version", b"3\n")
        for key, raw in (storages or {}).items():
            z.writestr(f"{prefix}/data/{key}", raw)
        for name, raw in extra:
            z.writestr(name, raw)
    return path


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').system('true')",)


def _marker_command(marker):
    return f"touch {marker}"


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_os_system_pickle_is_refused_and_runs_nothing(tmp_path, container):
    marker = tmp_path / "pwned"
    payload = pickle.dumps([_System(_marker_command(marker))], protocol=2)
    path = tmp_path / "evil.pt"
    if container == "zip":
        _torch_zip(path, payload)
    else:
        path.write_bytes(payload)  # a bare pickle stream is read as the legacy container
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U001"
    assert "system" in str(err.value)
    assert not marker.exists()


def test_marker_payload_really_would_run(tmp_path):
    # guard against a test that cannot fail: the same payload, unpickled normally, creates the marker
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(_System(_marker_command(marker))))
    assert marker.exists()


@pytest.mark.parametrize("payload", [
    pytest.param(lambda: pickle.dumps(_Eval(), protocol=2), id="builtins.eval"),
    pytest.param(lambda: pickle.dumps({"f": pickle.loads}, protocol=2), id="nested-pickle.loads"),
    pytest.param(lambda: pickle.dumps(torch.load, protocol=2), id="torch.load"),
    pytest.param(lambda: b"\x80\x02csubprocess\nPopen\n(X\x04\x00\x00\x00trueq\x00tR.", id="subprocess.Popen"),
    pytest.param(lambda: b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.",
                 id="stack-global"),
])
def test_disallowed_globals_have_code_u001(tmp_path, payload):
    path = _torch_zip(tmp_path / "x.pt", payload())
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U001"


def _saved(tmp_path, obj, name="ok.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _rewrite(path, edit):
    """Re-zip a torch archive with ``edit(name, bytes) -> bytes``."""
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, raw in items:
            z.writestr(name, edit(name, raw))
    return path


def _graph():
    return pyg_data.Data(x=torch.arange(10, dtype=torch.float32).reshape(5, 2),
                         edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([1]))


def test_declared_storage_larger_than_stored_bytes(tmp_path):
    path = _saved(tmp_path, [_graph()])
    # the x storage is declared with 10 elements: claim 2^31 - 1 instead (no allocation may follow)
    huge = b"J" + struct.pack("<i", 2 ** 31 - 1)
    path = _rewrite(path, lambda n, raw: raw.replace(b"X\x03\x00\x00\x00cpuq\x13K\n", b"X\x03\x00\x00\x00cpuq\x13" + huge)
                    if n.endswith("data.pkl") else raw)
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U003"
    assert "declared" in str(err.value)


def test_tensor_size_beyond_its_storage(tmp_path):
    path = _saved(tmp_path, [_graph()])
    # x is rebuilt with size (5, 2): claim (5000000, 2) over the same 10-element storage
    path = _rewrite(path, lambda n, raw: raw.replace(b"K\x00K\x05K\x02\x86", b"K\x00J\x40\x4b\x4c\x00K\x02\x86")
                    if n.endswith("data.pkl") else raw)
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U003"


def test_storage_member_shorter_than_declared(tmp_path):
    path = _saved(tmp_path, [_graph()])
    path = _rewrite(path, lambda n, raw: raw[:8] if n.endswith("data/0") else raw)
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U003"


def test_compressed_member_refused(tmp_path):
    path = _torch_zip(tmp_path / "c.pt", pickle.dumps([], protocol=2), compress=zipfile.ZIP_DEFLATED)
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U004"


def test_two_data_pkl_refused(tmp_path):
    path = _torch_zip(tmp_path / "two.pt", pickle.dumps([], protocol=2), extra=[("other/data.pkl", b"\x80\x02].")])
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U004"


def test_nested_archive_is_data_not_code(tmp_path):
    # a hostile torch archive hidden inside as a storage member is only ever read as bytes
    marker = tmp_path / "nested-pwned"
    inner = _torch_zip(tmp_path / "inner.pt", pickle.dumps([_System(_marker_command(marker))], protocol=2))
    path = _torch_zip(tmp_path / "nested.pt", pickle.dumps([], protocol=2), {"0": inner.read_bytes()})
    graphs = open_source(path)
    assert len(graphs) == 0
    graphs.close()
    assert not marker.exists()


def test_storage_class_cannot_be_called(tmp_path):
    path = _torch_zip(tmp_path / "call.pt", b"\x80\x02ctorch\nFloatStorage\nK\x05\x85R.")
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U002"


def test_huge_memo_index_is_harmless(tmp_path):
    # LONG_BINPUT 0xFFFFFFF0: the C unpickler would size its memo table to this index
    path = _torch_zip(tmp_path / "memo.pt", b"\x80\x02]r\xf0\xff\xff\xff.")
    graphs = open_source(path)
    assert len(graphs) == 0


@pytest.mark.parametrize("raw, code", [
    (b"", "NF-F001"),
    (b"\x80\x02K\x05.", "NF-U005"),                         # a pickle, but not the legacy magic number
    (b"hello world, not torch", "NF-U005"),
    (b"\x80\x02]q\x00(K\x01", "NF-U002"),                   # truncated
    (b"PK\x03\x04garbage", "NF-U004"),
])
def test_not_torch_files(tmp_path, raw, code):
    path = tmp_path / "bad.pt"
    path.write_bytes(raw)
    with pytest.raises(NeuralFormatError) as err:
        open_source(path)
    assert err.value.code == code


def test_tar_container_refused(tmp_path):
    import tarfile
    path = tmp_path / "old.pt"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("pickle")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"N."))
    with pytest.raises(UnsafeContentError) as err:
        open_source(path)
    assert err.value.code == "NF-U005"


def test_reads_zip_legacy_and_views(tmp_path):
    g = _graph()
    view = pyg_data.Data(x=torch.arange(40, dtype=torch.float32).reshape(10, 4)[2:7, 1:3],  # a strided view
                         edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([0]))
    for kwargs in ({}, {"_use_new_zipfile_serialization": False}):
        path = tmp_path / f"g{len(kwargs)}.pt"
        torch.save([g, view], path, **kwargs)
        graphs = open_source(path)
        assert graphs.source_format == "pyg-data-list-pickle"
        np.testing.assert_array_equal(graphs[0].x(), g.x.numpy())
        np.testing.assert_array_equal(graphs[1].x(), view.x.numpy())
        np.testing.assert_array_equal(graphs[0].edge_index(), g.edge_index.numpy())
        graphs.close()


def test_missing_file(tmp_path):
    with pytest.raises(NotAFileError):
        open_source(tmp_path / "absent.pt")
