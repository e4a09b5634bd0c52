"""The report generator: Swin token grid, window-state reset, safetensors round trip, local loading."""
import json

import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.patch_grid import native_tiles, plan_patches, to_working  # noqa: E402


def _model(seed=0, **swin):
    torch.manual_seed(seed)
    config = tiny_config(40)
    config["swin"].update(swin)
    return ReportGenerator(config).eval()


def test_last_stage_is_a_ceil_h32_by_ceil_w32_grid_mapped_to_native_pixels():
    model = _model()
    for shape in [(256, 256), (300, 200), (97, 500)]:
        plan = model.plan(shape)
        x = torch.from_numpy(to_working(np.random.rand(*shape).astype(np.float32), plan))[None, None]
        features = model.swin(pixel_values=x).last_hidden_state
        rows, cols = -(-x.shape[2] // 32), -(-x.shape[3] // 32)
        assert features.shape[1] == rows * cols == plan.num_tokens
        assert plan.grid_shape == (-(-shape[0] // 32), -(-shape[1] // 32))  # native: one token per 32 px
    # padding rows appear when the image is thinner than one window of tokens
    plan = model.plan((64, 200))
    assert plan.grid_shape == (2, 7) and plan.working_grid == (4, 7)
    assert plan.real_token_mask().reshape(4, 7)[:2].all() and not plan.real_token_mask().reshape(4, 7)[2:].any()


def test_downsampled_native_plan_keeps_native_geometry():
    plan = plan_patches((1955, 1841), stride=32, mode="native", max_side=512)
    pr, pc = plan.native_patch
    assert pr == pc == 123  # ceil(32 * 1955 / 512)
    assert plan.grid_shape == (16, 15) and plan.working_size == (512, 480)
    img = np.random.default_rng(0).random((1955, 1841)).astype(np.float32)
    work = to_working(img, plan)
    # working token (3, 4) is the mean of the native box rows 369..492, cols 492..615 (area resampling)
    assert abs(work[96:128, 128:160].mean() - img[369:492, 492:615].mean()) < 2e-3
    tiles = native_tiles(img, plan, np.array([[15, 14]]), np.uint16)
    assert tiles.shape == (1, 123, 123)
    assert tiles[0, 1955 - 15 * 123:, :].max() == 0  # past the bottom edge: zero padding
    fixed = plan_patches((1955, 1841), stride=32, mode="fixed", fixed_size=(224, 224))
    assert fixed.grid_shape == (7, 7) and fixed.native_patch == (280, 263)


def test_window_state_is_reset_between_calls_of_different_sizes():
    # depths 2 give shifted blocks; at 128 px the last stage (4 x 4) equals the window, which makes
    # Swin set shift_size = 0 in place: without a reset, a later 256 px call would run unshifted.
    fresh_big = _model(depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
    used = _model(depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
    small, big = used.plan((128, 128)), used.plan((256, 256))
    x_small, x_big = torch.rand(1, 1, 128, 128), torch.rand(1, 1, 256, 256)
    with torch.no_grad():
        reference = fresh_big.encode(x_big, [big]).features
        used.encode(x_small, [small])
        polluted = used.swin(pixel_values=(x_big - 0.5) / 0.5).last_hidden_state  # Swin's own state
        after_reset = used.encode(x_big, [big]).features
        fresh_small = _model(depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4]).encode(x_small, [small]).features
        again_small = used.encode(x_small, [small]).features
    assert not torch.allclose(polluted, reference, atol=1e-5), "the pitfall should show without the reset"
    torch.testing.assert_close(after_reset, reference)
    torch.testing.assert_close(again_small, fresh_small)


def test_save_and_load_round_trip_with_safetensors_only(tmp_path):
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    model = _model()
    tokenizer = train_report_tokenizer(["Focal consolidation in the right lower zone.", "Lungs are clear."])
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    names = sorted(p.name for p in (tmp_path / "m").rglob("*") if p.is_file())
    assert not [n for n in names if n.endswith((".pt", ".bin", ".pkl", ".pth"))]
    assert "encoder.safetensors" in names and "decoder.safetensors" in names
    assert json.loads((tmp_path / "m" / "config.json").read_text())["format"] == "neural-builders-report-generator"
    loaded = ReportGenerator.from_pretrained(tmp_path / "m").eval()
    assert loaded.tokenizer is not None and len(loaded.tokenizer) == len(tokenizer)
    plan = model.plan((128, 160))
    x = torch.rand(2, 1, *plan.working_size)
    labels = torch.tensor([[5, 6, 1, -100], [7, 8, 9, 1]])
    with torch.no_grad():
        a = model.decode(model.encode(x, [plan, plan]), labels)
        b = loaded.decode(loaded.encode(x, [plan, plan]), labels)
    torch.testing.assert_close(a.logits, b.logits)
    assert loaded.weights_sha256() == model.weights_sha256()
    import hashlib
    assert loaded.weights_sha256()["encoder.safetensors"] == hashlib.sha256(
        (tmp_path / "m" / "encoder.safetensors").read_bytes()).hexdigest()


def test_components_load_from_local_hugging_face_directories(tmp_path):
    from transformers import SwinConfig, SwinModel, T5Config, T5ForConditionalGeneration
    config = tiny_config(40)
    SwinModel(SwinConfig(**config["swin"]), add_pooling_layer=False).save_pretrained(tmp_path / "swin")
    T5ForConditionalGeneration(T5Config(**config["t5"])).save_pretrained(tmp_path / "t5")
    model = ReportGenerator.from_components(tmp_path / "swin", tmp_path / "t5").eval()
    plan = model.plan((128, 128))
    out = model.decode(model.encode(torch.rand(1, 1, 128, 128), [plan]), torch.tensor([[4, 5, 1]]),
                       output_attentions=True)
    assert len(out.cross_attentions) == config["t5"]["num_decoder_layers"]
    assert out.cross_attentions[-1].shape[-1] == plan.num_tokens  # eager: cross-attention is returned


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        ReportGenerator.from_pretrained(tmp_path / "nothing")


def test_registers_take_attention_but_are_never_scored(tmp_path):
    from neural_builders.scoring import score_batch
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    torch.manual_seed(0)
    config = tiny_config(40)
    config["projection"]["registers"] = 3
    model = ReportGenerator(config).eval()
    with torch.no_grad():
        model.projection.registers.mul_(50.0)  # make the registers hard to ignore
    plan = model.plan((128, 96))  # 4 x 3 real tokens on a 4 x 4 working grid
    x = torch.rand(2, 1, *plan.working_size)
    labels = torch.tensor([[5, 6, 1, -100], [7, 8, 9, 1]])
    with torch.no_grad():
        out = model.decode(model.encode(x, [plan, plan]), labels, output_attentions=True)
    S = plan.num_tokens
    for layer in out.cross_attentions:
        assert layer.shape[-1] == S  # patch tokens only
        rows = layer.sum(-1)
        assert torch.all(rows < 1 - 1e-3) and torch.all(rows >= 0)  # the rest went to the registers
        assert torch.all(layer[..., ~torch.as_tensor(plan.real_token_mask())] == 0)  # padding still masked
    _, scores, _ = score_batch(model, x, [plan, plan], labels)
    assert scores.shape == (2, S) and np.isnan(scores[:, ~plan.real_token_mask()]).all()
    tokenizer = train_report_tokenizer(["Focal opacity in the left lower zone.", "No focal opacity."])
    loaded = ReportGenerator.from_pretrained(model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)).eval()
    torch.testing.assert_close(loaded.projection.registers, model.projection.registers)
    assert len(loaded.generate_reports(loaded.encode(x, [plan, plan]), tokenizer, max_new_tokens=4)) == 2


def test_config_json_is_read_by_hugging_face_auto_config(tmp_path):
    """config.json is a vision-encoder-decoder config: AutoConfig reads it (Swin encoder, T5 decoder)."""
    from transformers import AutoConfig
    model = _model()
    model.save_pretrained(tmp_path / "m")
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    assert raw["model_type"] == "vision-encoder-decoder" and "architectures" not in raw
    config = AutoConfig.from_pretrained(tmp_path / "m")
    assert type(config).__name__ == "VisionEncoderDecoderConfig"
    assert config.encoder.model_type == "swin" and config.decoder.model_type == "t5"
    assert config.encoder.embed_dim == model.config["swin"]["embed_dim"]
    assert config.decoder.d_model == model.config["t5"]["d_model"]
    assert config.projection == model.config["projection"]
    # and this package still reads it (and the former layout with "swin"/"t5" keys)
    assert ReportGenerator.from_pretrained(tmp_path / "m").config["swin"] == model.config["swin"]
    raw = {k: v for k, v in raw.items() if k not in ("encoder", "decoder", "model_type")}
    (tmp_path / "m" / "config.json").write_text(json.dumps({**raw, "swin": model.config["swin"],
                                                            "t5": model.config["t5"]}))
    assert ReportGenerator.from_pretrained(tmp_path / "m").config["t5"] == model.config["t5"]


def test_weight_files_get_the_same_mode_as_their_siblings(tmp_path):
    """safetensors' save_file creates 0600 files; every file here follows the umask like config.json."""
    import os
    import stat

    from neural_builders.vlm.checkpoint import save_checkpoint
    from neural_builders.vlm.tokenizer import train_report_tokenizer
    model = _model()
    tokenizer = train_report_tokenizer(["Lungs are clear.", "Small effusion."])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.decode(model.encode(torch.rand(1, 1, 128, 128), [model.plan((128, 128))]),
                 torch.tensor([[5, 1]])).loss.backward()
    optimizer.step()
    old = os.umask(0o022)
    try:
        directory = save_checkpoint(tmp_path / "ckpt", model, tokenizer, optimizer, {"step": 1, "losses": [1.0]})
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir() if p.is_file()}
    assert {"optimizer.safetensors", "encoder.safetensors", "config.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes
