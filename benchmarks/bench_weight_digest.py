"""What the provenance weight digest costs per build: ``ReportGenerator.weights_sha256()``.

A build records the SHA-256 of each weight file (``encoder.safetensors``, ``decoder.safetensors``).
This times that call, the way the builder makes it, for three kinds of model:

* ``loaded``: read with ``from_pretrained`` and unchanged (the usual build): the first call of the
  process and the repeated calls after it (a second build in the same process);
* ``changed``: loaded, then a weight changed in place (``.data``, which no version counter sees):
  the digest must be that of the new weights;
* ``fresh``: never written (trained in process): serialised and hashed on each call.

    python benchmarks/bench_weight_digest.py --config tiny --repeats 5
    python benchmarks/bench_weight_digest.py --config base --repeats 3     # Swin-B 384 + T5-base, ~830 MB float32

Prints one JSON object: per kind, the seconds of each call and the median, plus the weight bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _timed(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        out.append(round(time.perf_counter() - began, 4))
    return out


def main(argv=None) -> int:
    import torch
    from bench_gpu_build import model_config
    from neural_builders.vlm.model import DECODER_FILE, ENCODER_FILE, ReportGenerator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where the weights are written (default: a temporary dir)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result: dict = {"config": args.config, "repeats": args.repeats, "threads": args.threads}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        model = ReportGenerator(model_config(args.config, 64)).eval()
        model.save_pretrained(tmp)
        files = {name: hashlib.sha256((Path(tmp) / name).read_bytes()).hexdigest() for name in (ENCODER_FILE, DECODER_FILE)}
        result["weight_bytes"] = sum((Path(tmp) / name).stat().st_size for name in files)
        del model
        time.sleep(2.5)  # the files are older than any "just written" margin when the loaded model hashes them
        loaded = ReportGenerator.from_pretrained(tmp)
        first = _timed(loaded.weights_sha256, 1)
        again = _timed(loaded.weights_sha256, args.repeats)
        assert loaded.weights_sha256() == files, "the loaded model's digest is not its files' bytes"
        result["loaded_first_s"] = first
        result["loaded_repeat_s"] = again
        result["loaded_repeat_median_s"] = statistics.median(again)
        with torch.no_grad():
            next(loaded.t5.parameters()).data.add_(1.0)
        changed = _timed(loaded.weights_sha256, args.repeats)
        assert loaded.weights_sha256()[DECODER_FILE] != files[DECODER_FILE], "an in-place change kept the old digest"
        result["changed_s"] = changed
        result["changed_median_s"] = statistics.median(changed)
        del loaded
        fresh = ReportGenerator(model_config(args.config, 64)).eval()
        result["fresh_s"] = _timed(fresh.weights_sha256, args.repeats)
        result["fresh_median_s"] = statistics.median(result["fresh_s"])
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
