"""Cross-attention scores S_i = sum_j alpha_ji: a hand-computed case and invariants on a real tiny model."""
import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

from neural_builders.scoring import aggregate_cross_attention, score_batch  # noqa: E402
from neural_format.format.metadata import ScoreAggregation  # noqa: E402

NAN = np.nan
# (B=1, H=2, T=3, S=4); decoder position 2 is padding, encoder token 3 is padding (masked: 0)
LAYER0 = np.array([[[[1, 0, 0, 0], [0, 1, 0, 0], [9, 9, 9, 9]],
                    [[0, 0, 1, 0], [0, 0, 1, 0], [9, 9, 9, 9]]]], float)
LAYER1 = np.array([[[[0.5, 0.25, 0.25, 0], [0.1, 0.6, 0.3, 0], [9, 9, 9, 9]],
                    [[0.3, 0.3, 0.4, 0], [0.2, 0.2, 0.6, 0], [9, 9, 9, 9]]]], float)
TARGET = np.array([[1, 1, 0]])
SOURCE = np.array([[1, 1, 1, 0]])


@pytest.mark.parametrize("aggregation, expected", [
    # last layer, head mean: j0 -> [.4, .275, .325], j1 -> [.15, .4, .45]; summed over j0, j1
    (ScoreAggregation(), [0.55, 0.675, 0.775, NAN]),
    # layer 0 gives [.5, .5, 1.0]; mean of the two layers
    (ScoreAggregation(layers="all"), [0.525, 0.5875, 0.8875, NAN]),
    (ScoreAggregation(layers=[0]), [0.5, 0.5, 1.0, NAN]),
    (ScoreAggregation(layers="all", layer_reduction="sum"), [1.05, 1.175, 1.775, NAN]),
    # head max: j0 -> [.5, .3, .4], j1 -> [.2, .6, .6]
    (ScoreAggregation(heads="max"), [0.7, 0.9, 1.0, NAN]),
    (ScoreAggregation(heads="sum"), [1.1, 1.35, 1.55, NAN]),
    (ScoreAggregation(tokens="mean"), [0.275, 0.3375, 0.3875, NAN]),
])
def test_hand_computed_case(aggregation, expected):
    scores = aggregate_cross_attention([LAYER0, LAYER1], TARGET, SOURCE, aggregation)
    np.testing.assert_allclose(scores[0], expected, rtol=0, atol=1e-12)


def test_padding_target_positions_never_count():
    changed = LAYER1.copy()
    changed[0, :, 2] = [[0, 0, 0, 1], [1, 0, 0, 0]]  # only the padded decoder position changes
    a = aggregate_cross_attention([LAYER0, LAYER1], TARGET, SOURCE)
    b = aggregate_cross_attention([LAYER0, changed], TARGET, SOURCE)
    np.testing.assert_array_equal(a, b)


def test_empty_cross_attention_is_refused():
    with pytest.raises(ValueError, match="eager"):
        aggregate_cross_attention([], TARGET, SOURCE)


def test_real_model_scores_one_per_real_patch_and_mass_equals_report_length(device):
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    torch.manual_seed(0)
    model = ReportGenerator(tiny_config(30)).eval().to(device)
    plan = model.plan((64, 200))            # 2 x 7 real tokens in a 4 x 7 working grid
    pixels = torch.rand(2, 1, *plan.working_size).to(device)
    labels = torch.tensor([[4, 5, 6, 1, -100, -100], [7, 8, 9, 10, 11, 1]]).to(device)
    features, scores, loss = score_batch(model, pixels, [plan, plan], labels)
    real = plan.real_token_mask()
    assert features.shape == (2, 28, model.swin_dim)
    assert np.isfinite(scores[:, real]).all() and np.isnan(scores[:, ~real]).all()
    # each decoder row sums to 1 over real tokens (padding is masked), so the mass is |J|
    np.testing.assert_allclose(np.nansum(scores, axis=1), [4, 6], rtol=1e-5)
    assert loss.shape == (2,) and np.isfinite(loss).all()


def _three_layer_model(registers: int = 0):
    from neural_builders.vlm.model import ReportGenerator, tiny_config
    torch.manual_seed(3)
    config = tiny_config(40)
    config["t5"]["num_decoder_layers"] = 3
    config["projection"]["registers"] = registers
    return ReportGenerator(config).eval()


@pytest.mark.parametrize("registers", [0, 2])
@pytest.mark.parametrize("aggregation", [
    ScoreAggregation(), ScoreAggregation(layers="all"), ScoreAggregation(layers=[0, 2], layer_reduction="sum"),
    ScoreAggregation(heads="max"), ScoreAggregation(heads="sum", tokens="mean"),
])
def test_fused_path_equals_the_eager_reference_in_float32(aggregation, registers):
    model = _three_layer_model(registers)
    plan = model.plan((64, 200))            # padding tokens in the working grid
    pixels = torch.rand(3, 1, *plan.working_size)
    labels = torch.tensor([[4, 5, 6, 1, -100, -100], [7, 8, 9, 10, 11, 1], [12, 1, -100, -100, -100, -100]])
    f_ref, s_ref, l_ref = score_batch(model, pixels, [plan] * 3, labels, aggregation, attention="eager")
    f_new, s_new, l_new = score_batch(model, pixels, [plan] * 3, labels, aggregation, attention="fused")
    f_bare, s_bare, l_bare = score_batch(model, pixels, [plan] * 3, labels, aggregation, loss=False)
    assert l_bare is None   # the decoder stack alone: same scores, no vocabulary projection
    np.testing.assert_array_equal(s_bare, s_new)
    np.testing.assert_array_equal(f_bare, f_new)
    assert s_new.dtype == np.float64 and s_new.shape == s_ref.shape
    np.testing.assert_array_equal(np.isnan(s_new), np.isnan(s_ref))
    np.testing.assert_allclose(s_new, s_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(f_new, f_ref)
    np.testing.assert_allclose(l_new, l_ref, rtol=1e-5)


def test_tapped_weights_equal_the_eager_layer_weights():
    model = _three_layer_model(registers=1)
    plan = model.plan((128, 96))
    pixels = torch.rand(2, 1, *plan.working_size)
    labels = torch.tensor([[5, 6, 1, -100], [7, 8, 9, 1]])
    with torch.no_grad():
        encoded = model.encode(pixels, [plan, plan])
        eager = model.decode(encoded, labels, output_attentions=True).cross_attentions
        _, same_kernel = model.decode_tapped(encoded, labels, [0, 1, 2], fused=False)
        _, fused = model.decode_tapped(encoded, labels, [1])
    for layer in range(3):  # the eager kernel's own inputs: equal to the last bit
        torch.testing.assert_close(same_kernel[layer], eager[layer], rtol=0, atol=0)
    torch.testing.assert_close(fused[0], eager[1], rtol=1e-5, atol=1e-7)


def test_fused_attention_switches_every_stack_and_restores_eager():
    from neural_builders.vlm.model import fused_attention
    from transformers.models.t5.modeling_t5 import T5Attention
    model = _three_layer_model()
    # transformers 5.x gives every attention layer its own config copy; 4.x layers hold none
    # and read the model's, so the model's config stands for them there
    configs = [m.config for m in model.t5.modules() if isinstance(m, T5Attention) and hasattr(m, "config")]
    configs = configs or [model.t5.config]
    with fused_attention(model.t5) as switched:
        inside = {c._attn_implementation for c in configs}
    assert {c._attn_implementation for c in configs} == {"eager"}
    if switched:  # transformers with T5 SDPA support (5.x)
        assert inside == {"sdpa"}
    with pytest.raises(RuntimeError):
        with fused_attention(model.t5):
            raise RuntimeError("a failing batch")
    assert {c._attn_implementation for c in configs} == {"eager"}
    plan = model.plan((128, 128))
    out = model.decode(model.encode(torch.rand(1, 1, *plan.working_size), [plan]), torch.tensor([[4, 1]]),
                       output_attentions=True)
    assert len(out.cross_attentions) == 3  # the eager reference still returns weights


def test_unknown_attention_path_is_refused():
    model = _three_layer_model()
    plan = model.plan((128, 128))
    with pytest.raises(ValueError, match="attention"):
        score_batch(model, torch.rand(1, 1, *plan.working_size), [plan], torch.tensor([[4, 1]]), attention="flash")


@pytest.mark.gpu
def test_fused_path_agrees_with_eager_under_bf16_autocast_on_cuda():
    """Not run on a CPU-only machine (skipped with the reason); benchmarks/gpu_check.sh runs it."""
    model = _three_layer_model(registers=2).to("cuda")
    plan = model.plan((256, 224))
    pixels = torch.rand(4, 1, *plan.working_size, device="cuda")
    labels = torch.randint(2, 40, (4, 24), device="cuda")
    labels[1, 20:] = -100
    results = {}
    for attention in ("eager", "fused"):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            results[attention] = score_batch(model, pixels, [plan] * 4, labels, ScoreAggregation(layers="all"),
                                             attention=attention)[1]
    old, new = results["eager"], results["fused"]
    np.testing.assert_array_equal(np.isnan(new), np.isnan(old))
    real = ~np.isnan(old)
    np.testing.assert_allclose(new[real], old[real], rtol=3e-2, atol=3e-3)   # bf16: 8 mantissa bits
