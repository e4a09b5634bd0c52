"""Writers killed with SIGKILL at random points never leave a broken file and never lose records.

Writer processes are forked (``multiprocessing`` "fork" context: no re-import, so a trial costs
milliseconds) and killed after a seeded random delay spread over the whole write, including the
flush/fsync/rename at close. After every kill:

* ``CollectionWriter``: under the final name stands either nothing, the previous complete file
  (when overwriting), or the complete new file: it validates with no error (hashes included)
  and holds exactly the expected record IDs and hashes. Temporary ``.partial`` files may remain
  beside it and are cleaned by :func:`neural_format.collections.resume.remove_stale_partials`.
* Resumable build (:mod:`neural_format.collections.resume`, one ``append_shard`` per input chunk): the
  collection left behind verifies (manifest, shard and record hashes); the build is resumed in a
  new process, killed again, ... and finally completes. Its record IDs and hashes equal those of
  an uninterrupted build: 0 records lost, 0 duplicated.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np

import neural_format as nf
from neural_format.cli.verify_cmd import verify_collection
from neural_format.collections.collection import open_collection
from neural_format.collections.resume import build_resumable, missing_chunks, remove_stale_partials
from neural_format.collections.synthetic import synthetic_meta, synthetic_record
from neural_format.validation import validate

WRITER_TRIALS = 20
RESUME_KILLS = 6
SEED = 6
META = synthetic_meta(feature_dim=32)
FORK = multiprocessing.get_context("fork")


def make_records(indices, salt: int = 0):
    """Record ``i`` depends only on ``i`` (and ``salt``), never on how the inputs were chunked."""
    return [synthetic_record(np.random.default_rng([SEED, salt, i]), i, META, patches=(4, 24), entities=(1, 6))
            for i in indices]


def write_job(path: str, n: int, salt: int, overwrite: bool) -> None:
    nf.write_collection(path, META, make_records(range(n), salt), overwrite=overwrite, batch_records=8)


def build_job(directory: str, n: int, chunk: int) -> None:
    build_resumable(directory, list(range(n)), make_records, META, chunk_size=chunk)


def run_and_kill(target, args, delay: float) -> int:
    """Fork ``target(*args)``, SIGKILL it after ``delay`` s; return its exit code (-9 if killed)."""
    proc = FORK.Process(target=target, args=args)
    proc.start()
    proc.join(delay)
    if proc.exitcode is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    return proc.exitcode


def fingerprint(path) -> list[tuple[str, bytes]]:
    with nf.open(path) as reader:
        return list(zip(reader.record_ids(), (h.tobytes() for h in reader.stored_hashes())))


def timed(target, args) -> float:
    started = time.perf_counter()
    assert run_and_kill(target, args, 120) == 0
    return time.perf_counter() - started


def test_killed_writer_leaves_nothing_or_a_valid_file(tmp_path):
    n = 64
    reference = tmp_path / "reference.h5"
    duration = timed(write_job, (str(reference), n, 0, False))
    new = fingerprint(reference)
    old_ref = tmp_path / "old.h5"
    write_job(str(old_ref), n // 2, 1, False)
    old = fingerprint(old_ref)
    rng = np.random.default_rng(SEED)
    outcomes = {"nothing": 0, "old file": 0, "new file": 0}
    for trial in range(WRITER_TRIALS):
        directory = tmp_path / f"trial-{trial:02d}"
        directory.mkdir()
        target = directory / "c.h5"
        overwrite = trial % 2 == 1
        if overwrite:  # a complete older version stands under the final name
            target.write_bytes(old_ref.read_bytes())
        delay = float(rng.uniform(0.0, 1.15 * duration))
        run_and_kill(write_job, (str(target), n, 0, overwrite), delay)
        if not target.exists():
            assert not overwrite, "overwriting lost the previous file"
            outcomes["nothing"] += 1
        else:
            report = validate(target)
            assert not report.errors, [str(f) for f in report.errors]
            found = fingerprint(target)
            assert found in (new, old) and (overwrite or found == new)
            outcomes["new file" if found == new else "old file"] += 1
        leftovers = [p for p in directory.iterdir() if p.name != "c.h5"]
        assert all(p.name.endswith(".partial") and p.name.startswith(".c.h5.") for p in leftovers), leftovers
        assert remove_stale_partials(directory) == sorted(leftovers)
        assert [p.name for p in directory.iterdir()] == (["c.h5"] if target.exists() else [])
    print(f"\n{WRITER_TRIALS} writer kill trials (full write {duration:.2f} s): {outcomes}")
    assert sum(outcomes.values()) == WRITER_TRIALS


def test_killed_build_resumes_without_loss_or_duplicates(tmp_path):
    n, chunk = 120, 8
    reference = tmp_path / "reference"
    duration = timed(build_job, (str(reference), n, chunk))
    with open_collection(reference) as coll:
        want = list(zip(coll.record_ids(), (h.tobytes() for h in coll.stored_hashes())))
    assert len(want) == n and len({rid for rid, _ in want}) == n
    work = tmp_path / "work"
    rng = np.random.default_rng(SEED + 1)
    kills = progressed = 0
    remaining = [len(missing_chunks(work, range(n), chunk)) if work.exists() else n // chunk]
    while kills < RESUME_KILLS:
        delay = float(rng.uniform(0.05, 0.3 * duration))
        code = run_and_kill(build_job, (str(work), n, chunk), delay)
        if code == 0:
            break  # finished before the kill
        kills += 1
        # the collection left behind by the kill is consistent: old or new manifest, all hashes match
        if (work / "manifest.json").exists():
            result = verify_collection(work)
            assert result["ok"], result["problems"]
        left = len(missing_chunks(work, range(n), chunk))
        progressed += left < remaining[-1]
        remaining.append(left)
    assert run_and_kill(build_job, (str(work), n, chunk), 300) == 0  # resume to the end
    assert missing_chunks(work, range(n), chunk) == []
    with open_collection(work) as coll:
        got = list(zip(coll.record_ids(), (h.tobytes() for h in coll.stored_hashes())))
    lost = {rid for rid, _ in want} - {rid for rid, _ in got}
    duplicated = len(got) - len({rid for rid, _ in got})
    print(f"\nbuild killed {kills} times (chunks left after each kill: {remaining}); "
          f"records lost {len(lost)}, duplicated {duplicated}")
    assert kills >= 3 and progressed >= 1  # the kills landed mid-build and resuming made progress
    assert not lost and duplicated == 0
    assert got == want  # same IDs, same order, same record hashes
    assert verify_collection(work)["ok"]
    assert not [p for p in work.iterdir() if p.name.endswith(".partial")]
