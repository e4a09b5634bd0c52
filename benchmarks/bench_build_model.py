"""Build-pass throughput of a full-size report generator on this machine (images/s), for docs/scale.md.

Times the part of a build that dominates its cost: one Swin encoder pass and one teacher-forced
T5 decoder pass with cross-attentions (``neural_builders.scoring.score_batch``), on a randomly
initialised model with the published sizes of Swin-B (384 px, window 12) and T5-base (12
decoder layers, d_model 768), batch ``--batch`` of 384 x 384 images and ``--tokens`` report
tokens each. Weights are random (none can be downloaded here); the cost of a forward pass does
not depend on their values. Reports images/s from wall time and from this process's CPU time.
On a GPU (``--device auto`` finds one) the pass runs under bfloat16 autocast, as a build runs it,
and the clock stops after ``torch.cuda.synchronize()``.

    .venv/bin/python benchmarks/bench_build_model.py --batch 2 --repeats 3 --threads 2
    python benchmarks/bench_build_model.py --device cuda --batch 16 --repeats 5     # GPU throughput
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

SWIN_B_384 = dict(image_size=384, patch_size=4, num_channels=1, embed_dim=128, depths=[2, 2, 18, 2],
                  num_heads=[4, 8, 16, 32], window_size=12, mlp_ratio=4.0, drop_path_rate=0.0,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
T5_BASE = dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=1, num_decoder_layers=12, num_heads=12,
               dropout_rate=0.0, relative_attention_num_buckets=32, relative_attention_max_distance=128,
               feed_forward_proj="relu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
               tie_word_embeddings=False)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    import contextlib

    import torch

    from neural_builders.devices import resolve_device

    from neural_builders.scoring import score_batch
    from neural_builders.vlm.model import ReportGenerator, parameter_count
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = {"swin": SWIN_B_384, "t5": T5_BASE, "resolution": {"mode": "fixed", "max_side": None,
                                                                 "fixed_size": [384, 384]}}
    device = resolve_device(args.device)
    model = ReportGenerator(config).eval().to(device)
    plan = model.plan((2544, 3056))  # a typical MIMIC-CXR size
    rows, cols = plan.working_size
    pixels = torch.rand(args.batch, 1, rows, cols).to(device)
    labels = torch.randint(2, T5_BASE["vocab_size"], (args.batch, args.tokens)).to(device)
    on_gpu = device.type == "cuda"

    def timed_pass():
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else contextlib.nullcontext()
        with autocast:
            out = score_batch(model, pixels, [plan] * args.batch, labels)
        if on_gpu:
            torch.cuda.synchronize(device)
        return out

    timed_pass()  # warm-up
    wall, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        features, scores, _ = timed_pass()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    result = {
        "device": str(device), "gpu": torch.cuda.get_device_name(device) if on_gpu else None,
        "parameters": parameter_count(model), "batch": args.batch, "tokens": args.tokens, "threads": args.threads,
        "working_size": [rows, cols], "swin_tokens": int(features.shape[1]), "feature_dim": int(features.shape[2]),
        "wall_s_per_batch": [round(t, 2) for t in wall], "cpu_s_per_batch": [round(t, 2) for t in cpu],
        "images_per_s_wall": round(args.batch / float(np.median(wall)), 3),
        "images_per_s_per_core_cpu": round(args.batch / float(np.median(cpu)), 3),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
