#!/usr/bin/env python3
"""libFuzzer (atheris) harness for the reader and the validator. Not collected by pytest.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python tests/fuzz/atheris_reader.py --make-seeds tests/fuzz/seeds   # once
    .venv/bin/python tests/fuzz/atheris_reader.py -rss_limit_mb=4096 -timeout=20 \
        -max_total_time=600 -artifact_prefix=/tmp/nf-fuzz- /tmp/nf-fuzz-corpus tests/fuzz/seeds

Each input is taken as a whole collection file. The reader opens it and reads every record
(bulk, one by one, hash verification), then ``validate`` runs on it. A
:class:`~neural_format.errors.NeuralFormatError` is the expected answer to bad input; any other
exception is reported by atheris as a finding, a crash of the HDF5 C library as a crash,
``-timeout`` catches hangs and ``-rss_limit_mb`` size bombs. Python code of neural_format is
coverage-instrumented; the HDF5 C library is not (it would need a clang/libFuzzer build), so
coverage guidance comes from which Python guards the input reaches.
"""
from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SCRATCH = Path(os.environ.get("NF_FUZZ_SCRATCH", "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()))
TARGET = SCRATCH / f"nf-atheris-{os.getpid()}.h5"


def make_seeds(directory: Path) -> None:
    """A few small valid files: the mutation starting points."""
    import neural_format as nf
    from neural_format.collections.synthetic import synthetic_meta, synthetic_records
    directory.mkdir(parents=True, exist_ok=True)
    variants = {
        "gzip-3rec.h5": (synthetic_meta(feature_dim=4), "gzip", 3),
        "lzf-3d-tiles.h5": (synthetic_meta(feature_dim=2, axes=3, tiles=True, entity_feature_dim=2), "lzf", 2),
    }
    for name, (meta, compression, n) in variants.items():
        nf.write_collection(directory / name, meta, synthetic_records(n, meta, seed=1, patches=(1, 3), entities=(1, 2)),
                            compression=compression, fsync=False, overwrite=True)
        print(directory / name, (directory / name).stat().st_size, "bytes")


def limit_address_space() -> None:
    """Cap the address space (NF_FUZZ_AS_MIB, default 2560; 0 = off), as docs/safety.md advises
    for untrusted files: HDF5 allocates what a corrupted vlen-string attribute declares before it
    notices the damage (found by this harness: 3.2 GB), and fails cleanly when the cap refuses it."""
    import resource
    mib = int(os.environ.get("NF_FUZZ_AS_MIB", "2560"))
    if mib:
        resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))


def main() -> None:
    import atheris
    limit_address_space()

    with atheris.instrument_imports(include=["neural_format"]):
        import neural_format as nf
        from neural_format.files.integrity import verify_hashes
        from neural_format.validation import validate

    def test_one_input(data: bytes) -> None:
        TARGET.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with nf.open(TARGET) as reader:
                    reader.read_all()
                    for i in range(len(reader)):
                        reader[i]
                    verify_hashes(reader, workers=1)
            except nf.NeuralFormatError:
                pass
            validate(TARGET)  # must return a report, never raise

    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        TARGET.unlink(missing_ok=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        make_seeds(Path(sys.argv[2]))
    else:
        main()
