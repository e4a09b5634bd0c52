"""Lesion recall and its random baseline on hand-made records with known answers."""
import types

import numpy as np
import pytest

from neural_builders.lesion_recall import lesion_recall
from neural_format.format.record import Geometry

GEOMETRY = Geometry(image_size=(32, 32), patch_size=(8, 8), grid_shape=(4, 4), pixel_spacing=None)


def _record(record_id, scores, cells=None):
    """A record storing the given cells (default: all 16) with ``scores`` (one per stored cell)."""
    cells = np.arange(16) if cells is None else np.asarray(cells)
    return types.SimpleNamespace(record_id=record_id, geometry=GEOMETRY, num_patches=len(cells),
                                 patch_scores=np.asarray(scores, np.float32),
                                 patch_positions=np.stack(np.divmod(cells, 4), axis=1).astype(np.int32))


def _mask(*boxes):
    mask = np.zeros((32, 32), bool)
    for r0, c0, r1, c1 in boxes:
        mask[r0:r1, c0:c1] = True
    return mask


def test_hits_follow_the_ranking_and_the_baseline_is_n_over_p():
    lesion = _mask((9, 17, 12, 20))              # inside cell (1, 2) = index 6 only
    first = np.zeros(16)
    first[6] = 5.0  # the lesion cell ranks first
    second = np.zeros(16)
    second[0], second[6] = 5.0, 4.0  # ranks second
    records = [_record("a", first), _record("b", second), _record("neg", np.arange(16.0))]
    masks = {"a": lesion[None], "b": lesion[None], "neg": np.zeros((0, 32, 32), bool)}
    one, two = lesion_recall(records, masks, (2.3, 10.0), draws=4000, seed=1)
    assert one.lesions == two.lesions == 2  # the negative record counts no lesion
    assert one.mean_kept == 1 and two.mean_kept == 2  # ceil(0.023 * 16) = 1, ceil(0.1 * 16) = 2
    assert one.lesion_recall == 0.5 and two.lesion_recall == 1.0
    assert one.random_lesion_recall == pytest.approx(1 / 16, abs=0.01)
    assert two.random_lesion_recall == pytest.approx(2 / 16, abs=0.015)


def test_a_lesion_over_two_cells_is_hit_by_either_and_patch_recall_counts_both():
    lesion = _mask((2, 6, 5, 10))                 # cells (0, 0) and (0, 1)
    scores = np.zeros(16)
    scores[1] = 3.0  # keeps (0, 1) only at 2.3 %
    row, = lesion_recall([_record("a", scores)], {"a": lesion[None]}, (2.3,), draws=10)
    assert row.lesion_recall == 1.0 and row.patch_recall == 0.5


def test_a_record_pruned_below_the_retention_is_refused():
    kept = _record("a", [2.0], cells=[6])       # stores 1 patch; 10 % of 16 needs 2
    with pytest.raises(ValueError, match="build at a higher retention"):
        lesion_recall([kept], {"a": _mask((9, 17, 12, 20))[None]}, (10.0,))
