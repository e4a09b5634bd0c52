"""MedPruner-style 3-D volumes: slice-anchor filtering drops near-duplicate slices, then per-slice pruning."""
import numpy as np
import pytest
pytest.importorskip("torch")
import torch  # noqa: E402

import neural_format as nf  # noqa: E402
from neural_builders.build import BuildConfig  # noqa: E402
from neural_builders.phantom import make_case  # noqa: E402
from neural_builders.vlm.model import ReportGenerator, tiny_config  # noqa: E402
from neural_builders.vlm.tokenizer import train_report_tokenizer  # noqa: E402
from neural_builders.volume import VolumeInput, build_volume_collection, slice_anchor_filter  # noqa: E402
from neural_format.format.metadata import PruningPolicy, SliceAnchorFilter, TopKPercent  # noqa: E402


def test_anchor_rule_on_hand_made_descriptors():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    near_a = np.array([1.0, 0.01])
    f = np.stack([a, near_a, a, b, b, near_a])
    # 0 anchor; 1, 2 ~ anchor 0 (dropped); 3 differs (new anchor); 4 ~ 3 (dropped); 5 differs from 3 (kept)
    assert slice_anchor_filter(f, SliceAnchorFilter(threshold=0.99)).tolist() == [0, 3, 5]
    assert slice_anchor_filter(f, SliceAnchorFilter(threshold=1.0)).tolist() == [0, 1, 2, 3, 5]
    assert slice_anchor_filter(np.zeros((0, 2)), SliceAnchorFilter(threshold=0.5)).tolist() == []


def test_synthetic_volume_drops_duplicate_slices_and_keeps_3d_positions(tmp_path):
    a = make_case(3, 0, size=(128, 128), positive=True)
    b = make_case(3, 1, size=(128, 128), positive=False)
    c = np.rot90(a.image).copy()
    volume = np.stack([a.image, a.image, b.image, b.image, b.image, c])     # 6 slices, 3 distinct
    tokenizer = train_report_tokenizer([a.report])
    torch.manual_seed(0)
    model = ReportGenerator(tiny_config(len(tokenizer))).eval()
    model.tokenizer = tokenizer
    rule = SliceAnchorFilter(threshold=0.99999)
    config = BuildConfig(policy=PruningPolicy(rule=TopKPercent(percent=25)), batch_size=6)
    out = tmp_path / "volume.h5"
    summary = build_volume_collection([VolumeInput("vol-0", volume, a.report, labels=[1.0])], model, config, out, rule)
    assert nf.validate(out).ok and summary.records_written == 1
    with nf.open(out) as reader:
        assert reader.meta.spatial_axes == 3 and reader.meta.adjacency == "6-neighbour"
        assert reader.meta.provenance.pruning.slice_filter == rule
        record = reader[0]
    slices = sorted(set(record.patch_positions[:, 0].tolist()))
    assert slices == [0, 2, 5]                       # duplicates 1, 3, 4 dropped
    assert record.geometry.image_size == (6, 128, 128) and record.geometry.patch_size == (1, 32, 32)
    assert record.num_patches == 3 * 4               # 25 % of 16 patches in each kept slice
    # no edge crosses a dropped slice: slices 2 and 5 are not adjacent
    src, dst = record.patch_positions[record.patch_edges[:, 0]], record.patch_positions[record.patch_edges[:, 1]]
    assert (np.abs(src - dst).sum(1) == 1).all()
