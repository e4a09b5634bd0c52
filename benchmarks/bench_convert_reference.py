"""Convert pickles laid out as the NEURAL reference's stage 2 writes them; report how many graphs
convert with no option, against the truth, and how long it takes.

    python benchmarks/bench_convert_reference.py --graphs 24 1000 [--dim 1024] [--baseline /path/to/old/checkout]

The pickles come from tests/reference_stage2.py (real torch.save of PyG Data, see its docstring).
With ``--baseline`` the same files are also converted, with ``--skip-invalid``, by the converter of
another checkout (e.g. the commit before the evidence-based split) in a subprocess, side by side.
Needs torch, torch_geometric and networkx.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

BASELINE = """
import json, sys, time
import neural_format as nf
print(nf.__file__, file=sys.stderr)
started = time.perf_counter()
report = nf.convert_pickle(sys.argv[1], sys.argv[2], skip_invalid=True, overwrite=True, progress=False)
print(json.dumps({"converted": report.converted, "seconds": time.perf_counter() - started}))
"""


def run(count: int, dim: int, workdir: Path, baseline: str | None) -> dict:
    import neural_format as nf
    from reference_stage2 import random_reference_pickle
    source = workdir / f"fused_graphs_{count}.pt"
    started = time.perf_counter()
    truths = random_reference_pickle(source, count, dim=dim, seed=count)
    generated = time.perf_counter() - started
    row = {"graphs": count, "dim": dim, "pickle_mib": round(source.stat().st_size / 2 ** 20, 1),
           "generate_s": round(generated, 1)}
    for dtype in ("float32", "float16"):
        started = time.perf_counter()
        report = nf.convert_pickle(source, workdir / f"out_{count}_{dtype}.h5", dtype=dtype, overwrite=True,
                                   skip_invalid=True, progress=False)
        seconds = time.perf_counter() - started
        with nf.open(workdir / f"out_{count}_{dtype}.h5") as reader:
            kept = [i for i in range(count) if i not in {s.index for s in report.skipped}]
            exact = sum((r.num_patches, r.num_entities, r.bridge) == (truths[i].patches, truths[i].entities,
                                                                       truths[i].bridge)
                        for r, i in zip(reader, kept))
        row[dtype] = {"converted": report.converted, "matches_truth": exact, "verified": report.verified,
                      "seconds": round(seconds, 2), "rules": dict(report.rules),
                      "bridges_off_reference": len(report.bridges_off_betweenness), "fusion": report.fusion}
    if baseline:
        env = dict(os.environ, PYTHONPATH=baseline)
        out = subprocess.run([sys.executable, "-c", BASELINE, str(source), str(workdir / "baseline.h5")],
                             capture_output=True, text=True, env=env, check=True, cwd=workdir)
        row["baseline"] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", type=int, nargs="+", default=[24, 1000])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--baseline", help="a checkout whose converter to compare with (PYTHONPATH)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.graphs:
            row = run(count, args.dim, Path(tmp), args.baseline)
            print(json.dumps(row))
            new, old = row["float32"], row.get("baseline")
            print(f"{count:>6} graphs ({row['pickle_mib']} MiB): converted {new['converted']}/{count} "
                  f"(truth: {new['matches_truth']}) in {new['seconds']} s"
                  + (f"; baseline {old['converted']}/{count} in {old['seconds']:.2f} s" if old else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
