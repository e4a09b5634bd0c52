"""``neural-format finetune``: stage-1 fine-tuning of the report generator on paired images and reports."""
from __future__ import annotations


def run(args) -> int:
    import numpy as np

    from ..inputs import load_image, load_reports, pair_inputs
    from ..vlm.model import ReportGenerator, tiny_config
    from ..vlm.tokenizer import train_report_tokenizer
    from ..vlm.generator_config import FinetuneConfig
    from ..vlm.train import ReportImageSet, finetune

    pairs, skipped = pair_inputs(args.images, load_reports(args.reports), load_images=False)
    if not pairs:
        print(f"neural-format finetune: error: no usable image/report pairs ({len(skipped)} skipped)")
        return 2
    reports = [p.report.text_for_model for p in pairs]
    if args.init:
        model = ReportGenerator.from_pretrained(args.init)
        tokenizer = model.tokenizer or train_report_tokenizer(reports)
    elif args.swin and args.t5:
        model = ReportGenerator.from_components(args.swin, args.t5, resolution=_resolution(args))
        tokenizer = train_report_tokenizer(reports)
    else:
        tokenizer = train_report_tokenizer(reports)
        generator = tiny_config(len(tokenizer))
        generator["resolution"] = _resolution(args)
        model = ReportGenerator(generator)
    images = [np.asarray(load_image(p.image_path).pixels, np.float32) for p in pairs]
    data = ReportImageSet(model, images, reports)
    config = FinetuneConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            checkpoint_every=args.checkpoint_every, device=args.device,
                            freeze_encoder_steps=args.freeze_encoder_steps)
    result = finetune(model, tokenizer, data, config, args.out, resume=args.resume, progress=None)
    print(f"fine-tuned {result.steps} steps on {len(pairs)} pairs ({len(skipped)} skipped) in "
          f"{result.seconds:.1f} s; {result.loss_summary()}; model: {result.model_dir}")
    return 0


def _resolution(args) -> dict:
    return {"mode": args.resolution, "max_side": args.max_side, "fixed_size": [args.fixed_size, args.fixed_size]}


def register(sub) -> None:
    from neural_format.cli import int_at_least

    from ..vlm.generator_config import FinetuneConfig, ResolutionConfig  # torch-free: the defaults live there
    train, resolution = FinetuneConfig(), ResolutionConfig()
    p = sub.add_parser("finetune", help="stage-1 fine-tuning: train the Swin+T5 report generator (teacher forcing)")
    p.add_argument("--images", required=True, help="directory of DICOM/PNG/JPEG images (ID = file stem)")
    p.add_argument("--reports", required=True, help="reports CSV or directory of *.txt")
    p.add_argument("--out", required=True, help="output directory (checkpoint/ and model/)")
    p.add_argument("--init", default=None, help="start from a report-generator directory")
    p.add_argument("--swin", default=None, help="local Hugging Face Swin directory (with --t5)")
    p.add_argument("--t5", default=None, help="local Hugging Face T5 directory (with --swin)")
    p.add_argument("--resolution", choices=["native", "fixed"], default=resolution.mode)
    p.add_argument("--max-side", type=int_at_least(1), default=resolution.max_side,
                   help="native mode: downsample above this many pixels")
    p.add_argument("--fixed-size", type=int_at_least(1), default=resolution.fixed_size[0],
                   help="fixed mode: working image side (multiple of 32)")
    p.add_argument("--steps", type=int_at_least(1), default=train.steps)
    p.add_argument("--batch-size", type=int_at_least(1), default=train.batch_size)
    p.add_argument("--lr", type=float, default=train.lr)
    p.add_argument("--freeze-encoder-steps", type=int_at_least(0), default=train.freeze_encoder_steps)
    p.add_argument("--checkpoint-every", type=int_at_least(0), default=train.checkpoint_every)
    p.add_argument("--seed", type=int, default=train.seed)
    p.add_argument("--device", default=train.device)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.set_defaults(func=run)
