"""Full disks, read-only targets and concurrent writers to one final name (issue 14).

Disk-full runs happen in a subprocess (so a crash at interpreter exit, which is what HDF5 did
after ENOSPC, shows as a return code) on a small tmpfs mounted for the test (root only; skipped
when the mount is refused) and, everywhere, under ``RLIMIT_FSIZE`` (EFBIG). Each must end with a
coded ``NF-E-IO`` error, exit 0 from the interpreter, no HDF5 noise on stderr and nothing left in
the target directory; ``neural-format merge`` into a full disk exits 2 with one line.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import neural_format as nf
from neural_format.errors import ClosedError, NeuralFormatError, OutputExistsError, SchemaError, WriteFailedError
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

ROOT = Path(__file__).resolve().parents[1]
META = synthetic_meta(feature_dim=64)

FILL = """
import os, sys
{prelude}
import neural_format as nf
from neural_format.collections.synthetic import synthetic_meta, synthetic_records
meta = synthetic_meta(feature_dim=64)
writer = nf.CollectionWriter(sys.argv[1], meta, batch_records=32, fsync=False)
try:
    for record in synthetic_records(20000, meta, seed=0):
        writer.append(record)
    writer.close()
    print("no error")
except nf.NeuralFormatError as exc:
    print("coded", exc.code, exc.errno)
    writer.abort()
    print("close after abort:", writer.close())
# the process must stay usable: a later successful write elsewhere
nf.write_collection(sys.argv[2], meta, synthetic_records(3, meta, seed=1), fsync=False)
print("left", sorted(os.listdir(os.path.dirname(sys.argv[1]))))
"""


def _run_fill(target: Path, spare: Path, prelude: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", FILL.format(prelude=prelude), str(target), str(spare)],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs, or a skip where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot run mount here: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def readonly_mount(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot run mount here: {exc}")
    if proc.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _assert_clean_failure(proc, errno_name: str, target_dir: Path):
    import errno
    assert proc.returncode == 0, f"interpreter died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    assert f"coded NF-E-IO {getattr(errno, errno_name)}" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "close after abort: None" in proc.stdout
    assert "left []" in proc.stdout, proc.stdout  # no partial file, nothing under the final name
    assert "HDF5" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-2000:]
    assert not any(target_dir.iterdir())


def test_disk_full_is_a_coded_error_without_crash(small_tmpfs, tmp_path):
    proc = _run_fill(small_tmpfs / "out.h5", tmp_path / "later.h5")
    _assert_clean_failure(proc, "ENOSPC", small_tmpfs)
    assert nf.open(tmp_path / "later.h5").__len__() == 3


def test_file_size_limit_is_a_coded_error_without_crash(tmp_path):
    target = tmp_path / "limited"
    target.mkdir()
    prelude = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))"
    proc = _run_fill(target / "out.h5", tmp_path / "later.h5", prelude)
    _assert_clean_failure(proc, "EFBIG", target)


def test_merge_into_a_full_disk_exits_with_one_line(small_tmpfs, tmp_path):
    source = tmp_path / "source.h5"
    nf.write_collection(source, META, synthetic_records(1500, META, seed=0), fsync=False)
    proc = subprocess.run([sys.executable, "-m", "neural_format", "merge", str(small_tmpfs / "m.h5"), str(source)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "merging" not in line]
    assert len(lines) == 1 and "NF-E-IO" in lines[0] and "No space left on device" in lines[0], proc.stderr[-2000:]
    assert not any(small_tmpfs.iterdir())


def test_read_only_target(readonly_mount, tmp_path):
    with pytest.raises(WriteFailedError) as caught:
        nf.write_collection(readonly_mount / "x.h5", META, synthetic_records(2, META, seed=0))
    assert caught.value.code == "NF-E-IO" and "Read-only" in caught.value.message
    source = tmp_path / "s.h5"
    nf.write_collection(source, META, synthetic_records(2, META, seed=0), fsync=False)
    proc = subprocess.run([sys.executable, "-m", "neural_format", "merge", str(readonly_mount / "m.h5"), str(source)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2 and "NF-E-IO" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_second_writer_never_replaces_the_first(tmp_path):
    """Two writers with the default overwrite=False: the one that closes second is refused."""
    target = tmp_path / "one.h5"
    first = nf.CollectionWriter(target, META, fsync=False)
    second = nf.CollectionWriter(target, META, fsync=False)
    first.extend(synthetic_records(10, META, seed=0))
    second.extend(synthetic_records(3, META, seed=1))
    assert first.close() == target
    with pytest.raises(OutputExistsError) as caught:
        second.close()
    assert isinstance(caught.value, FileExistsError) and "overwrite=True" in str(caught.value)
    with nf.open(target) as reader:
        assert len(reader) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.h5"]  # the loser's temp file is gone


def test_file_from_another_process_is_never_replaced(tmp_path):
    target = tmp_path / "one.h5"
    writer = nf.CollectionWriter(target, META, fsync=False)
    writer.extend(synthetic_records(3, META, seed=1))
    subprocess.run([sys.executable, "-c", f"open({str(target)!r}, 'wb').write(b'theirs')"], check=True, timeout=60)
    with pytest.raises(OutputExistsError):
        writer.close()
    assert target.read_bytes() == b"theirs"


def test_overwrite_true_still_replaces(tmp_path):
    target = tmp_path / "one.h5"
    target.write_bytes(b"old")
    nf.write_collection(target, META, synthetic_records(2, META, seed=0), overwrite=True, fsync=False)
    assert len(nf.open(target)) == 2


def test_existing_output_is_a_coded_error(tmp_path):
    target = tmp_path / "one.h5"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError) as caught:
        nf.CollectionWriter(target, META)
    assert caught.value.code == "NF-E-EXISTS" and "--overwrite" in caught.value.message


def test_writer_revalidates_metadata(tmp_path):
    broken = META.model_copy(update={"spatial_axes": 7})
    with pytest.raises(SchemaError) as caught:
        nf.CollectionWriter(tmp_path / "x.h5", broken)
    assert caught.value.code == "NF-M001"
    assert not any(tmp_path.iterdir())


def test_closed_writer(tmp_path):
    writer = nf.CollectionWriter(tmp_path / "x.h5", META, fsync=False)
    writer.abort()
    assert writer.close() is None
    with pytest.raises(ClosedError) as caught:
        writer.append(next(iter(synthetic_records(1, META, seed=0))))
    assert isinstance(caught.value, NeuralFormatError) and caught.value.code == "NF-E-CLOSED"
    assert not any(tmp_path.iterdir())


SPLIT_KILLED = """
import os, sys
import neural_format.files.writer as writer
from neural_format.cli.split_cmd import split
point, calls = sys.argv[3], [0]
if point == "writing":
    real_close = writer.CollectionWriter.close
    def dying_close(self):
        calls[0] += 1
        if calls[0] == 2:
            os._exit(9)
        return real_close(self)
    writer.CollectionWriter.close = dying_close
else:
    real = writer.rename_exclusive
    def dying_rename(src, dst):
        calls[0] += 1
        if calls[0] == 3 and str(dst).endswith(".h5"):
            os._exit(9)
        return real(src, dst)
    writer.rename_exclusive = dying_rename
split(sys.argv[1], sys.argv[2], shards=3)
"""


@pytest.mark.parametrize("point", ["writing", "publishing"])
def test_split_killed_midway_can_be_rerun(tmp_path, point):
    from neural_format.cli.split_cmd import split
    from neural_format.cli.verify_cmd import verify_collection
    source = tmp_path / "source.h5"
    nf.write_collection(source, META, synthetic_records(9, META, seed=0), fsync=False)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SPLIT_KILLED, str(source), str(out), point], env=env, timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert not (out / "manifest.json").exists()
    finals = sorted(p.name for p in out.glob("shard-*.h5"))
    if point == "writing":  # killed while writing: no shard under its final name yet
        assert finals == []
        from neural_format.collections.resume import remove_stale_partials
        assert remove_stale_partials(out)  # the staged shard(s) are ordinary writer leftovers
        assert not list(out.iterdir())
        split(source, out, shards=3)
    else:  # killed while renaming: two shards stand, no manifest; a rerun names --overwrite
        assert len(finals) == 2
        with pytest.raises(OutputExistsError) as caught:
            split(source, out, shards=3)
        assert "--overwrite" in caught.value.message
        split(source, out, shards=3, overwrite=True)
    result = verify_collection(out)
    assert result["ok"] and result["records"] == 9, result
    with nf.open_collection(out) as coll:
        assert len(coll) == 9


def test_overwrite_never_replaces_a_device_fifo_or_directory(tmp_path):
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    (tmp_path / "dir.h5").mkdir()
    for target in (fifo, tmp_path / "dir.h5", Path("/dev/null")):
        with pytest.raises(OutputExistsError) as caught:
            nf.CollectionWriter(target, META, overwrite=True)
        assert "not a regular file" in caught.value.message
    assert Path("/dev/null").is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.h5", "fifo.h5"]


def test_manifest_write_failure_is_coded_and_keeps_the_old_collection(tmp_path, monkeypatch):
    import errno

    import neural_format.collections.manifest as manifest
    from neural_format.collections.collection import append_shard
    directory = tmp_path / "coll"
    append_shard(directory, synthetic_records(3, META, seed=0), META, fsync=False)
    before = (directory / "manifest.json").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(manifest.os, "fsync", full)
    import dataclasses
    more = [dataclasses.replace(r, record_id="more-" + r.record_id) for r in synthetic_records(2, META, seed=5)]
    with pytest.raises(WriteFailedError) as caught:
        append_shard(directory, more, META, fsync=False)
    monkeypatch.undo()
    assert caught.value.code == "NF-E-IO" and caught.value.errno == errno.ENOSPC
    assert (directory / "manifest.json").read_bytes() == before  # the old collection stands
    assert len(list(directory.glob("*.h5"))) == 1  # the new shard was removed with the failed append
    assert not list(directory.glob("*.partial"))
    with nf.open_collection(directory) as coll:
        assert len(coll) == 3
