"""Record hashes detect single-byte flips anywhere in the stored record data (clause NF-I001).

A small uncompressed file is written; the byte ranges that hold each dataset's logical rows are
found with h5py's low-level storage queries (``get_offset`` for contiguous layout,
``get_chunk_info`` for chunks, trimmed to the rows actually in use). A deterministic sweep flips
one byte at a time (XOR 0xFF) across those ranges and checks, in memory, that the flip is caught:
the reader refuses the file with a coded error (offsets, UTF-8...), or the recomputed record hash
differs from the stored one. A sample of the flipped files also goes through ``validate`` and
``neural-format verify``.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

import neural_format as nf
import neural_format.validation
from neural_format.files.integrity import verify_hashes
from neural_format.collections.synthetic import synthetic_meta, synthetic_records

FLIPS = 220
SEED = 20261125


def logical_byte_ranges(ds: h5py.Dataset) -> list[tuple[int, int]]:
    """(start, stop) file offsets of the bytes holding the dataset's rows (not chunk padding)."""
    rows = ds.shape[0] if ds.shape else 1
    row_bytes = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
    if rows == 0:
        return []
    offset = ds.id.get_offset()
    if offset is not None:
        return [(offset, offset + rows * row_bytes)]
    ranges = []
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        assert info.filter_mask == 0 and ds.compression is None, "the sweep needs unfiltered chunks"
        first = info.chunk_offset[0]
        used = min(ds.chunks[0], rows - first)
        ranges.append((info.byte_offset, info.byte_offset + used * row_bytes))
    return ranges


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    meta = synthetic_meta(feature_dim=4, entity_feature_dim=3, tiles=True)
    records = list(synthetic_records(8, meta, seed=3, patches=(2, 5), entities=(1, 4)))
    path = tmp_path_factory.mktemp("flips") / "c.h5"
    nf.write_collection(path, meta, records, fsync=False)
    ranges = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name != "metadata":
                ranges["/" + name] = logical_byte_ranges(obj)
        f.visititems(visit)
    return path, path.read_bytes(), ranges


def sweep_positions(ranges: dict[str, list[tuple[int, int]]]) -> list[tuple[str, int]]:
    """FLIPS positions: every dataset gets some, the rest spread at random over all data bytes."""
    every = [(name, pos) for name, spans in sorted(ranges.items()) for a, b in spans for pos in range(a, b)]
    rng = np.random.default_rng(SEED)
    chosen = {}
    for name, spans in sorted(ranges.items()):  # at least one flip per dataset (first byte)
        if spans:
            chosen[spans[0][0]] = name
    for k in rng.choice(len(every), size=FLIPS - len(chosen), replace=False):
        name, pos = every[k]
        chosen.setdefault(pos, name)
    while len(chosen) < FLIPS:
        name, pos = every[int(rng.integers(len(every)))]
        chosen.setdefault(pos, name)
    return sorted((name, pos) for pos, name in chosen.items())


def flipped(data: bytes, position: int) -> bytes:
    buffer = bytearray(data)
    buffer[position] ^= 0xFF
    return bytes(buffer)


def value_changed(before: h5py.Dataset, after_file: bytes, name: str) -> bool:
    with h5py.File(io.BytesIO(after_file), "r") as f:
        a, b = before[()], f[name][()]
    return not np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def outcome(data: bytes) -> str:
    """'ok' if every hash still matches, else the code that caught the change."""
    try:
        with nf.open(io.BytesIO(data)) as reader:
            report = verify_hashes(reader, workers=1)
    except nf.NeuralFormatError as exc:
        return exc.code
    return "ok" if report.ok else "NF-I001"


def test_every_data_byte_flip_is_detected(stored):
    path, data, ranges = stored
    assert outcome(data) == "ok"
    positions = sweep_positions(ranges)
    assert len(positions) >= 200 and {name for name, _ in positions} == {n for n, s in ranges.items() if s}
    missed, caught_by, nan_payload = [], {}, 0
    with h5py.File(io.BytesIO(data), "r") as original:
        for name, pos in positions:
            bad = flipped(data, pos)
            if not value_changed(original[name], bad, name):
                nan_payload += 1  # NaN -> another NaN: the value (and its canonical hash) is unchanged
                continue
            code = outcome(bad)
            if code == "ok":
                missed.append((name, pos))
            caught_by[code] = caught_by.get(code, 0) + 1
    made = len(positions) - nan_payload
    print(f"\nflips detected {made - len(missed)}/{made} that change a value "
          f"(+{nan_payload} NaN-payload flips that change no value); by code {caught_by}")
    assert not missed, f"undetected flips: {missed[:10]}"
    assert made >= 200
    assert caught_by.get("NF-I001", 0) > made // 2  # most flips reach the hash check


def test_validator_and_verify_cli_report_flips(stored, tmp_path):
    _, data, ranges = stored
    targets = ["/patches/features", "/patches/tiles", "/entities/features", "/relations/index",
               "/records/labels", "/records/report/data"]
    for k, name in enumerate(targets):
        start, stop = ranges[name][0]
        bad = tmp_path / f"flip-{k}.h5"
        bad.write_bytes(flipped(data, start + (stop - start) // 2))
        codes = {f.code for f in nf.validation.validate(bad).errors}
        # a flip that breaks UTF-8 is reported as NF-R014 (the string cannot be hashed as text)
        assert codes & {"NF-I001", "NF-R014"}, (name, codes)
    good = tmp_path / "good.h5"
    good.write_bytes(data)
    for target, expected_rc in ((good, 0), (tmp_path / "flip-0.h5", 2)):
        proc = subprocess.run([sys.executable, "-m", "neural_format", "verify", "--json", str(target)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == expected_rc, proc.stderr[-1000:]
        result = json.loads(proc.stdout)
        assert result["ok"] is (expected_rc == 0)
        if expected_rc:
            assert [p["code"] for p in result["problems"]] == ["NF-I001"]


def test_collection_hash_covers_every_manifest_byte(tmp_path):
    """Flip bit 0 of every manifest byte (a subtle change: '0' -> '1', 'a' -> '`'): every flip that
    changes the parsed manifest -- shard entries and the top-level ``format``, ``format_version``,
    ``collection_id``, ``created`` alike -- is caught, by the manifest schema (NF-C001) or by
    ``collection_sha256`` (NF-C007), which covers the whole manifest but itself."""
    from neural_format.collections.collection import append_shard
    from neural_format.errors import NeuralFormatError
    from neural_format.collections.manifest import collection_sha256, parse_manifest
    meta = synthetic_meta(feature_dim=4)
    records = list(synthetic_records(6, meta, seed=2, patches=(1, 3), entities=(0, 2)))
    append_shard(tmp_path, records[:3], meta)
    append_shard(tmp_path, records[3:], meta)
    blob = (tmp_path / "manifest.json").read_bytes()
    original = parse_manifest(blob)
    counts = {"made": 0, "schema": 0, "hash": 0, "unchanged": 0}
    by_field: dict[str, int] = {}  # hash-caught flips by the manifest field they changed
    missed = []
    for position in range(len(blob)):
        changed = bytearray(blob)
        changed[position] ^= 0x01
        counts["made"] += 1
        try:
            manifest = parse_manifest(bytes(changed))
        except NeuralFormatError:
            counts["schema"] += 1
            continue
        if manifest == original:  # e.g. a flip that the JSON parser normalises away
            counts["unchanged"] += 1
            continue
        if collection_sha256(manifest) != manifest.collection_sha256:
            counts["hash"] += 1
            for name in type(manifest).model_fields:
                if getattr(manifest, name) != getattr(original, name):
                    by_field[name] = by_field.get(name, 0) + 1
        else:
            missed.append((position, blob[max(0, position - 12):position + 12]))
    print(f"\nmanifest flips: {counts['made']} made, {counts['schema']} caught by schema (NF-C001), "
          f"{counts['hash']} by collection_sha256 (NF-C007; by field changed: {by_field}), "
          f"{counts['unchanged']} left the parsed manifest unchanged, {len(missed)} missed")
    assert not missed, missed[:5]
    assert counts["schema"] + counts["hash"] + counts["unchanged"] == counts["made"]
    # the top-level fields the old entries-only hash left out were really hit, and caught by the hash
    assert all(by_field.get(name, 0) > 0 for name in ("format_version", "collection_id", "created")), by_field
