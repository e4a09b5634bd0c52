"""Keep the accelerator busy: forward, scoring and builder rates, old and new paths, side by side in one run.

    # the issue's GPU set-up (swin-base-384 + T5-base, bf16 autocast, batch 64, 256 phantoms of 512 px)
    .venv/bin/python benchmarks/bench_gpu_build.py --config base --images 256 --size 512 --batch 64
    # a tiny model on the CPU (the figures in docs/benchmarks-gpu.md)
    .venv/bin/python benchmarks/bench_gpu_build.py --config tiny --images 48 --size 256 --batch 8 --threads 2

Measured, each after a warm-up, on the same model, images and batch size:

* **forward only**: Swin + projection + teacher-forced T5 on fused attention (SDPA), no attention
  weights, nothing else: the rate the model allows. FLOPs per image are counted once with
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions, SDPA), giving TFLOP/s and,
  with a peak (``--peak-tflops``; default 790, the H200's dense bf16, on CUDA, none on the CPU),
  the share of it;
* **scoring**: :func:`neural_builders.scoring.score_batch`, old (``attention="eager"``: every
  layer's weights, float64 host aggregation, logits and loss, as it always ran) and new
  (``"fused", loss=False`` as the builder calls it: SDPA, weights of the scored layer only,
  aggregated on the device, no vocabulary projection), with the largest score difference;
* **builder**: :func:`neural_builders.build.build_collection` end to end from PNG files, old
  (``pipelined=False, attention="eager"``: the serial build as it was) and new (pipelined, fused),
  with each stage's busy seconds (``--variants`` adds others, e.g. ``new_default``: overlapped on
  CUDA, serial on the CPU).

Timed runs alternate old and new (``--repeats`` rounds, the order flipped each round), so drifting
load from other processes hits both alike; medians are reported, every run in the JSON. On CUDA
the model runs under bf16 autocast (as the builder does) and timings synchronise the device.
Weights are random (nothing can be downloaded); a forward's cost does not depend on their values.
The model is saved and loaded before it is timed, as a build gets it (``--model DIR``), so the
builder's provenance digest is the weight files' (hashed once per file: ``--unsaved`` keeps the
model as constructed, whose weights each build serialises and hashes).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# the published Swin-B 384 / T5-base sizes, as issue 13's build-pass benchmark uses them (run as a
# script, this folder is on sys.path)
from bench_build_model import SWIN_B_384, T5_BASE

H200_BF16_DENSE_TFLOPS = 790.0


def model_config(name: str, vocab: int) -> dict:
    from neural_builders.vlm.model import tiny_config
    if name == "base":
        return {"swin": dict(SWIN_B_384), "t5": dict(T5_BASE),
                "resolution": {"mode": "fixed", "max_side": None, "fixed_size": [384, 384]}}
    config = tiny_config(vocab)
    config["swin"].update(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4])
    return config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=256, help="phantom side in pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of each old/new pair")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--prepare-workers", type=int, default=None, help="builder decode threads (None: auto)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak for the %% figure (default: 790 on CUDA, none on the CPU)")
    parser.add_argument("--compile", action="store_true", help="also time forward/scoring with torch.compile(swin)")
    parser.add_argument("--skip-builder", action="store_true")
    parser.add_argument("--builder-only", action="store_true",
                        help="only the builder comparison (more rounds in the same time on a busy machine)")
    parser.add_argument("--variants", default="old_serial_eager,new_pipelined_fused",
                        help="builder variants to compare, the first and last in the summary line (also: "
                             "new_pipelined_eager, old_serial_fused, new_pipelined_fused_1worker, "
                             "new_pipelined_fused_inline (decoding in the calling thread), new_default)")
    parser.add_argument("--unsaved", action="store_true",
                        help="build with the model as constructed, never written: each build then serialises and "
                             "hashes the weights for its provenance (without this, the model is saved and loaded)")
    parser.add_argument("--json", default=None, help="write every figure here")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from neural_builders.build import BuildConfig, build_collection, inputs_from_pairs
    from neural_builders.devices import resolve_device
    from neural_builders.inputs import load_image, load_reports, pair_inputs
    from neural_builders.phantom import generate_cases, write_cases
    from neural_builders.scoring import score_batch
    from neural_builders.vlm.model import ReportGenerator, fused_attention, parameter_count
    from neural_builders.vlm.patch_grid import to_working
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    from neural_builders.vlm.train import encode_labels
    from neural_format.format.metadata import PruningPolicy, ScoreAggregation, TopKPercent

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    peak = args.peak_tflops if args.peak_tflops is not None else (H200_BF16_DENSE_TFLOPS if cuda else None)
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_build_"))
    cases = generate_cases(args.images, seed=11, size=(args.size, args.size))
    files = write_cases(cases, work / "phantoms")
    pairs, _ = pair_inputs(files["images"], load_reports(files["reports"]), load_images=False)
    tokenizer = train_report_tokenizer([p.report.text_for_model for p in pairs])
    torch.manual_seed(0)
    model = ReportGenerator(model_config(args.config, len(tokenizer))).eval().to(device)
    model.tokenizer = tokenizer
    if not args.unsaved:  # as a build gets it (--model DIR): its provenance digest is then the files'
        model = ReportGenerator.from_pretrained(model.save_pretrained(work / "model", tokenizer), device=device).eval()
    aggregation = ScoreAggregation()
    max_tokens = 128

    images = [np.asarray(load_image(p.image_path).pixels, np.float32) for p in pairs]
    plans = [model.plan(img.shape) for img in images]
    working = [to_working(img, plan) for img, plan in zip(images, plans)]
    reports = [p.report.text_for_model for p in pairs]
    batches = []
    for start in range(0, len(working), args.batch):
        idx = range(start, min(len(working), start + args.batch))
        pixels = torch.from_numpy(np.stack([working[i] for i in idx]))[:, None].to(device)
        labels = encode_labels(tokenizer, [reports[i] for i in idx], max_tokens, device)
        batches.append((pixels, [plans[i] for i in idx], labels))

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)

    def forward_only(pixels, batch_plans, labels):
        with torch.no_grad(), autocast(), fused_attention(model.t5):
            return model.decode(model.encode(pixels, batch_plans), labels).logits

    def scoring(attention):
        def run(pixels, batch_plans, labels):
            with autocast():   # the new path as the builder calls it: no loss, no vocabulary projection
                return score_batch(model, pixels, batch_plans, labels, aggregation, attention=attention,
                                   loss=attention == "eager")
        return run

    def timed(fn) -> float:
        sync()
        t0 = time.perf_counter()
        for batch in batches:
            fn(*batch)
        sync()
        return time.perf_counter() - t0

    loops = {"forward_only": forward_only, "scoring_eager": scoring("eager"), "scoring_fused": scoring("fused")}
    if args.compile:
        compiled_swin = torch.compile(model.swin)
        plain_swin = model.swin

        def with_compiled(fn):
            def run(*batch):
                model.swin = compiled_swin
                try:
                    return fn(*batch)
                finally:
                    model.swin = plain_swin
            return run
        loops["forward_only_compiled"] = with_compiled(forward_only)
        loops["scoring_fused_compiled"] = with_compiled(scoring("fused"))

    if args.builder_only:
        loops = {}
    from torch.utils.flop_counter import FlopCounterMode
    flops = {}
    for name in [k for k in ("forward_only", "scoring_eager", "scoring_fused") if k in loops]:
        pixels, batch_plans, labels = batches[0]
        with FlopCounterMode(display=False) as counter:
            loops[name](pixels, batch_plans, labels)
        flops[name] = counter.get_total_flops() / pixels.shape[0]

    for fn in loops.values():   # warm-up: first calls, allocator, kernels chosen
        timed(fn)
    seconds = {name: [] for name in loops}
    cpu_seconds = {name: [] for name in loops}
    for r in range(args.repeats):
        names = list(loops) if r % 2 == 0 else list(reversed(loops))
        for name in names:
            c0 = time.process_time()
            seconds[name].append(timed(loops[name]))
            cpu_seconds[name].append(time.process_time() - c0)
    n = len(working)
    rate = {name: n / statistics.median(s) for name, s in seconds.items()}

    # largest score difference between the two scoring paths (float32 CPU: rounding; bf16: bf16)
    score_diff = None
    if loops:
        pixels, batch_plans, labels = batches[0]
        _, s_old, _ = scoring("eager")(pixels, batch_plans, labels)
        _, s_new, _ = scoring("fused")(pixels, batch_plans, labels)
        real = ~np.isnan(s_old)
        score_diff = float(np.max(np.abs(s_old[real] - s_new[real]) / np.maximum(np.abs(s_old[real]), 1e-12)))

    result = {
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(), "config": args.config, "parameters": parameter_count(model),
        "images": n, "image_px": args.size, "batch": args.batch, "working_size": list(plans[0].working_size),
        "autocast": "bf16" if cuda else "off (float32)", "peak_tflops": peak,
        "gflop_per_image": {k: round(v / 1e9, 3) for k, v in flops.items()},
        "images_per_s": {k: round(v, 2) for k, v in rate.items()},
        "seconds": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "process_cpu_seconds": {k: [round(x, 3) for x in v] for k, v in cpu_seconds.items()},
        "scoring_speedup_per_round": [round(e / f, 3) for e, f in zip(seconds.get("scoring_eager", []),
                                                                      seconds.get("scoring_fused", []))],
        "scores_max_relative_difference_fused_vs_eager": score_diff,
    }
    result["tflops"] = {k: round(flops[k.replace("_compiled", "")] * rate[k] / 1e12, 4) for k in rate}
    if peak:
        result["percent_of_peak"] = {k: round(100 * v / peak, 2) for k, v in result["tflops"].items()}

    if not args.skip_builder:
        inputs = inputs_from_pairs(pairs)
        policy = PruningPolicy(rule=TopKPercent(percent=10))
        def variant(pipelined, attention, workers=args.prepare_workers):
            return BuildConfig(policy=policy, batch_size=args.batch, device=str(device), overwrite=True,
                               progress=False, pipelined=pipelined, attention=attention, prepare_workers=workers)
        known = {"old_serial_eager": variant(False, "eager"), "old_serial_fused": variant(False, "fused"),
                 "new_pipelined_eager": variant(True, "eager"), "new_pipelined_fused": variant(True, "fused"),
                 "new_pipelined_fused_1worker": variant(True, "fused", 1),
                 "new_pipelined_fused_inline": variant(True, "fused", 0),
                 "new_default": variant(None, "fused")}   # overlapped on CUDA, serial on the CPU
        chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in chosen if v not in known]
        if unknown or len(chosen) < 2:
            parser.error(f"--variants: two or more of {sorted(known)}")
        variants = {name: known[name] for name in chosen}
        old_name, new_name = chosen[0], chosen[-1]
        for name, config in variants.items():   # warm-up builds (imports, lexicons, first calls)
            build_collection(inputs[: args.batch], model, config, work / f"warm-{name}.h5")
        runs = {name: [] for name in variants}
        cpu = {name: [] for name in variants}
        for r in range(args.repeats):
            names = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in names:
                c0 = time.process_time()
                summary = build_collection(inputs, model, variants[name], work / f"{name}.h5")
                cpu[name].append(time.process_time() - c0)
                runs[name].append(summary)
        builder = {}
        for name, summaries in runs.items():
            wall = [s.seconds for s in summaries]
            median = sorted(summaries, key=lambda s: s.seconds)[len(summaries) // 2]
            builder[name] = {
                "images_per_s": round(n / statistics.median(wall), 2), "seconds": [round(x, 3) for x in wall],
                "process_cpu_seconds": [round(x, 3) for x in cpu[name]],
                "vs_forward_only": (round(n / statistics.median(wall) / rate["forward_only"], 3)
                                    if "forward_only" in rate else None),
                "stage_s_of_median_run": {k: round(v, 3) for k, v in vars(median.times).items()},
                "records_written": median.records_written,
            }
        builder["compared"] = [old_name, new_name]
        builder["speedup_new_vs_old"] = round(builder[new_name]["images_per_s"] / builder[old_name]["images_per_s"], 3)
        # each round ran both back to back: the per-round ratio is robust to slow drifts of load
        builder["speedup_per_round"] = [round(o.seconds / p.seconds, 3) for o, p in
                                        zip(runs[old_name], runs[new_name])]
        result["builder"] = builder

    print(json.dumps(result, indent=1))
    print(report_lines(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def report_lines(result: dict) -> str:
    rate, tflops, pct = result["images_per_s"], result["tflops"], result.get("percent_of_peak", {})
    builder = result.get("builder")
    lines = [f"{result['device_name']} ({result['device']}, {result['autocast']}, {result['torch_threads']} threads), "
             f"{result['config']} model {result['parameters']:,} parameters, {result['images']} images of "
             f"{result['image_px']} px, batch {result['batch']}",
             f"{'path':28} {'images/s':>10} {'GFLOP/img':>10} {'TFLOP/s':>9} {'% peak':>7}"]
    for name in rate:
        base = name.replace("_compiled", "")
        lines.append(f"{name:28} {rate[name]:10.2f} {result['gflop_per_image'][base]:10.3f} {tflops[name]:9.4f} "
                     f"{(str(pct[name]) if name in pct else '-'):>7}")
    rounds = result["scoring_speedup_per_round"]
    if rounds:
        lines.append(f"scoring fused / eager: {rate['scoring_fused'] / rate['scoring_eager']:.2f}x of medians, "
                     f"per round {min(rounds):.2f}-{max(rounds):.2f}x (median {statistics.median(rounds):.2f}x); "
                     f"largest relative score difference {result['scores_max_relative_difference_fused_vs_eager']:.2e}")
    if builder:
        for name in [k for k, v in builder.items() if isinstance(v, dict)]:
            b = builder[name]
            stages = ", ".join(f"{k} {v:.2f}" for k, v in b["stage_s_of_median_run"].items())
            share = f" ({b['vs_forward_only']:.0%} of forward only)" if b["vs_forward_only"] is not None else ""
            lines.append(f"builder {name:28} {b['images_per_s']:8.2f} images/s{share}; stage s: {stages}")
        rounds = builder["speedup_per_round"]
        lines.append(f"builder new / old: {builder['speedup_new_vs_old']:.2f}x of medians, per round "
                     f"{min(rounds):.2f}-{max(rounds):.2f}x (median {statistics.median(rounds):.2f}x)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
