"""Swin window attention in slices (CUDA's 65,535 launch-grid cap): same outputs and gradients."""
import copy

import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.window_batches import CUDA_GRID_LIMIT, limit_window_batches, window_slices  # noqa: E402


def _model():
    torch.manual_seed(0)
    config = tiny_config(40)
    # window 2 and depth-2 stages: shifted blocks (with their (nW, N, N) masks) in every stage;
    # at 64 px the stages have 64, 16, 4 and 1 windows per image
    config["swin"].update(depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], window_size=2)
    return ReportGenerator(config).train()


def _run(model, pixels, plans, labels):
    pixels = pixels.clone().requires_grad_(True)
    out = model(pixels, plans, labels)
    encoded = model.encode(pixels, plans)
    (out.loss + encoded.features.square().mean()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return encoded.features.detach(), out.loss.detach(), pixels.grad, grads


@pytest.mark.parametrize("limit", [5, 64, 130])  # inside one image, exactly one image, whole images
def test_sliced_window_attention_gives_the_unsliced_outputs_and_gradients(limit, monkeypatch):
    from transformers.models.swin import modeling_swin
    calls = []  # windows x heads of each attention call
    original = modeling_swin.SwinAttention.forward

    def counting(self, hidden_states, *args, **kwargs):
        heads = getattr(self, "num_attention_heads", None) or self.self.num_attention_heads
        calls.append(hidden_states.shape[0] * heads)
        return original(self, hidden_states, *args, **kwargs)
    monkeypatch.setattr(modeling_swin.SwinAttention, "forward", counting)

    reference_model = _model()
    sliced_model = copy.deepcopy(reference_model)
    assert limit_window_batches(sliced_model.swin, limit) == 8
    plan = reference_model.plan((64, 64))
    pixels = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(2, 40, (3, 7), generator=torch.Generator().manual_seed(2))
    want = _run(reference_model, pixels, [plan] * 3, labels)
    unsliced_calls = len(calls)
    assert max(calls) == 3 * 64  # stage 1: 3 images x 64 windows x 1 head
    calls.clear()
    got = _run(sliced_model, pixels, [plan] * 3, labels)
    assert max(calls) <= limit and len(calls) > unsliced_calls  # the slicing did happen
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)
    assert got[3].keys() == want[3].keys() and len(want[3]) > 0
    for name in want[3]:
        torch.testing.assert_close(got[3][name], want[3][name], rtol=1e-4, atol=1e-6, msg=name)


def test_window_slices_cover_everything_within_the_limit_and_respect_images():
    for total, per_image, limit in [(192, 64, 5), (192, 64, 64), (192, 64, 130), (65_536, 4_096, CUDA_GRID_LIMIT),
                                    (70_000, 70_000, CUDA_GRID_LIMIT), (7, 7, 100), (12, 1, 5)]:
        spans = window_slices(total, per_image, limit)
        assert spans[0][0] == 0 and spans[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(0 < stop - start <= limit for start, stop in spans)
        for start, stop in spans:
            if per_image <= limit:   # whole images per slice
                assert start % per_image == 0 and (stop % per_image == 0 or stop == total)
            else:                    # never across an image boundary
                assert start // per_image == (stop - 1) // per_image
    # the demo's failing case: 16 images x 4,096 windows go in two calls of 15 and 1 images
    assert window_slices(65_536, 4_096, CUDA_GRID_LIMIT) == [(0, 61_440), (61_440, 65_536)]
    with pytest.raises(ValueError):
        window_slices(10, 2, 0)


def test_every_generator_bounds_its_window_batches_without_renaming_weights():
    model = _model()
    limits = {m.window_batch_limit for m in model.swin.modules() if type(m).__name__ == "SwinAttention"}
    assert limits == {CUDA_GRID_LIMIT}
    assert not any("window_batch" in name for name in model.state_dict())
    with pytest.raises(RuntimeError, match="no SwinAttention"):
        limit_window_batches(torch.nn.Linear(2, 2))


@pytest.mark.gpu
def test_the_demos_window_1_batch_trains_on_cuda():
    """Issue 13's crash: window-1 Swin at 256 px, batch 16 = 65,536 one-token windows in stage 1,
    one more than a CUDA launch grid takes; forward and backward under bfloat16 autocast."""
    torch.manual_seed(0)
    config = tiny_config(40)
    config["swin"].update(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=1)
    model = ReportGenerator(config).cuda().train()
    plan = model.plan((256, 256))
    pixels = torch.rand(16, 1, 256, 256, device="cuda")
    labels = torch.randint(2, 40, (16, 12), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(pixels, [plan] * 16, labels).loss
    loss.backward()
    grads = [p.grad for p in model.swin.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
