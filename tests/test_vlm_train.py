"""Stage-1 fine-tuning: -100 padding, safetensors checkpoints (no pickle), exact resume."""
import json

import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.tokenizer import train_report_tokenizer  # noqa: E402
from neural_builders.vlm.generator_config import FinetuneConfig  # noqa: E402
from neural_builders.vlm.train import ReportImageSet, encode_labels, finetune  # noqa: E402

REPORTS = ["Focal consolidation in the right lower zone.", "Lungs are clear.",
           "Opacity in the left upper zone.", "No pleural effusion."] * 2


def _setup():
    torch.manual_seed(0)
    tokenizer = train_report_tokenizer(REPORTS)
    config = tiny_config(len(tokenizer))
    config["swin"].update(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2])
    model = ReportGenerator(config)
    rng = np.random.default_rng(0)
    images = [rng.random((128, 128)).astype(np.float32) for _ in REPORTS]
    return model, tokenizer, ReportImageSet(model, images, REPORTS)


def test_labels_are_padded_with_minus_100_and_end_with_eos():
    tokenizer = train_report_tokenizer(REPORTS)
    labels = encode_labels(tokenizer, ["Lungs are clear.", "Opacity in the left upper zone."], 32, "cpu")
    assert labels[0].tolist()[:5] == tokenizer("Lungs are clear.")["input_ids"]
    assert labels[0, 5:].tolist() == [-100] * (labels.shape[1] - 5)
    assert labels[0, 4].item() == tokenizer.eos_token_id
    assert labels[1, -1].item() == tokenizer.eos_token_id


def test_resume_from_a_safetensors_checkpoint_matches_an_uninterrupted_run(tmp_path, device):
    # float32 on every device: this checks the checkpoint, not mixed precision
    config = FinetuneConfig(steps=4, batch_size=4, checkpoint_every=2, warmup_steps=2, lr=1e-3, device=str(device),
                            mixed_precision=False)
    model, tokenizer, data = _setup()
    straight = finetune(model, tokenizer, data, config, tmp_path / "straight", progress=False)

    model, tokenizer, data = _setup()
    first = finetune(model, tokenizer, data, config, tmp_path / "resumed", progress=False, stop_after=2)
    assert first.steps == 2 and first.model_dir is None
    ckpt = tmp_path / "resumed" / "checkpoint"
    files = sorted(p.name for p in ckpt.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".pt", ".bin", ".pkl", ".pth"))], files
    assert {"encoder.safetensors", "decoder.safetensors", "optimizer.safetensors", "trainer_state.json"} <= set(files)
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 2

    fresh, tokenizer, data = _setup()  # the resumed run must not depend on the in-memory model
    second = finetune(fresh, tokenizer, data, config, tmp_path / "resumed", resume=True, progress=False)
    assert second.resumed_from == 2 and second.steps == 4
    assert second.losses == straight.losses[:2] + second.losses[2:]
    np.testing.assert_allclose(second.losses, straight.losses, rtol=1e-5)
    a = dict(straight.model.named_parameters())
    for name, p in second.model.named_parameters():
        torch.testing.assert_close(p, a[name], rtol=1e-5, atol=1e-6)
    loaded = ReportGenerator.from_pretrained(tmp_path / "resumed" / "model")
    assert loaded.tokenizer is not None


def test_training_reduces_the_loss_and_frozen_encoder_phase_leaves_swin_untouched(tmp_path, device):
    model, tokenizer, data = _setup()
    before = {k: v.clone().to(device) for k, v in model.swin.state_dict().items()}
    result = finetune(model, tokenizer, data, FinetuneConfig(steps=10, batch_size=4, freeze_encoder_steps=10,
                                                             checkpoint_every=0, lr=3e-3, device=str(device)),
                      tmp_path, progress=False)
    assert np.mean(result.losses[-3:]) < np.mean(result.losses[:3])
    for k, v in result.model.swin.state_dict().items():
        assert v.device.type == device.type
        torch.testing.assert_close(v, before[k])


def test_finetune_command_trains_and_resumes(tmp_path, capsys):
    from neural_builders.phantom import generate_cases, write_cases
    from neural_format.cli import main
    files = write_cases(generate_cases(4, seed=5, size=(128, 128)), tmp_path / "data")
    args = ["finetune", "--images", str(files["images"]), "--reports", str(files["reports"]),
            "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "2", "--checkpoint-every", "1"]
    assert main(args) == 0
    assert "fine-tuned 2 steps on 4 pairs" in capsys.readouterr().out
    assert main(args[:-4] + ["--steps", "3", "--resume"]) == 0
    state = json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 3 and len(state["losses"]) == 3
    out = capsys.readouterr().out  # the real first and last step's loss, not one window's mean twice
    first, last = state["losses"][0], state["losses"][-1]
    assert f"loss {first:.3f} -> {last:.3f} (step 1 -> 3)" in out


def test_loss_summary_reports_first_and_last_step():
    from neural_builders.vlm.train import TrainResult
    falling = TrainResult(steps=40, losses=[5.05] + [3.0] * 38 + [2.31])
    text = falling.loss_summary()
    assert text.startswith("loss 5.050 -> 2.310 (step 1 -> 40)") and "first/last 10 steps" in text
    short = TrainResult(steps=6, losses=[4.0, 3.5, 3.6, 3.0, 2.9, 2.5]).loss_summary()
    assert "4.000 -> 2.500" in short and "first/last 3 steps 3.700 -> 2.800" in short
    assert TrainResult(steps=1, losses=[3.566]).loss_summary() == "loss 3.566 (one step)"
