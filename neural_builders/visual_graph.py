"""The retained-patch graph: grid positions of the kept encoder tokens and their neighbour edges."""
from __future__ import annotations

import numpy as np

from neural_format.graphs.grid import RULE_AXES, grid_adjacency


def build_visual_graph(kept_token_indices, grid_shape, rule: str = "4-neighbour") -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(P, A)`` int32 and edges ``(E, 2)`` int32 among the kept tokens.

    ``kept_token_indices`` are row-major (C-order) indices into the token grid ``grid_shape``
    (e.g. Swin's last stage: token ``t`` sits at row ``t // gw``, column ``t % gw``). Row ``i`` of
    the result belongs to ``kept_token_indices[i]``: the caller's order (e.g. by descending
    score) is kept, and edge indices refer to it. Raises ``ValueError`` for indices outside the
    grid, repeated indices, or a rule whose axes differ from ``len(grid_shape)``.
    """
    kept = np.asarray(kept_token_indices, dtype=np.int64).reshape(-1)
    grid_shape = tuple(int(g) for g in grid_shape)
    if rule not in RULE_AXES or RULE_AXES[rule] != len(grid_shape):
        raise ValueError(f"rule {rule!r} does not fit a {len(grid_shape)}-D grid")
    cells = int(np.prod(grid_shape))
    if kept.size and (kept.min() < 0 or kept.max() >= cells):
        raise ValueError(f"token indices must lie in 0..{cells - 1}")
    if np.unique(kept).size != kept.size:
        raise ValueError("token indices repeat")
    positions = np.stack(np.unravel_index(kept, grid_shape), axis=1).astype(np.int32) if kept.size \
        else np.zeros((0, len(grid_shape)), np.int32)
    return positions, grid_adjacency(positions, rule)
