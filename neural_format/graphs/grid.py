"""Neighbourhood edges among the retained cells of a regular grid (numpy only).

Given ``P`` distinct integer grid positions ``x_i`` in ``A`` dimensions and an adjacency rule
with offset set ``O``, the edge set is

    E = {(i, j) : x_j - x_i in O},

listed in both directions. The rules are

* ``"4-neighbour"`` (A = 2) and ``"6-neighbour"`` (A = 3): ``O = {±e_a}``, the faces;
* ``"8-neighbour"`` (A = 2) and ``"26-neighbour"`` (A = 3): ``O = {-1, 0, 1}^A \\ {0}``, faces,
  edges and corners.

Positions are hashed to linear indices in the bounding box grown by one cell on each side (so
no neighbour wraps around), sorted once, and each offset's neighbours are found with
``np.searchsorted``: O(|O| P log P) time, no Python loop over cells or pairs. Edges come out
sorted by (source, target), which makes the result independent of the input order's accidents
only through the indices themselves.
"""
from __future__ import annotations

import itertools

import numpy as np

RULE_AXES = {"4-neighbour": 2, "8-neighbour": 2, "6-neighbour": 3, "26-neighbour": 3}


def neighbour_offsets(rule: str) -> np.ndarray:
    """The offset set ``O`` of ``rule`` as an ``(|O|, A)`` int64 array in lexicographic order."""
    if rule not in RULE_AXES:
        raise ValueError(f"unknown adjacency rule {rule!r}; expected one of {sorted(RULE_AXES)}")
    axes = RULE_AXES[rule]
    cube = [o for o in itertools.product((-1, 0, 1), repeat=axes) if any(o)]
    if rule in ("4-neighbour", "6-neighbour"):
        cube = [o for o in cube if sum(map(abs, o)) == 1]
    return np.asarray(cube, np.int64).reshape(-1, axes)


def grid_adjacency(positions, rule: str = "4-neighbour") -> np.ndarray:
    """Edges ``(E, 2)`` int32 between the rows of ``positions`` ``(P, A)`` under ``rule``.

    Both directions of every edge are listed; rows are sorted by (source, target). Raises
    ``ValueError`` for a rule/axes mismatch or repeated positions.
    """
    positions = np.asarray(positions)
    offsets = neighbour_offsets(rule)
    axes = offsets.shape[1]
    if positions.size == 0:
        return np.zeros((0, 2), np.int32)
    if positions.ndim != 2 or positions.shape[1] != axes:
        raise ValueError(f"rule {rule!r} needs positions of shape (P, {axes}), got {positions.shape}")
    if not np.issubdtype(positions.dtype, np.integer):
        raise ValueError(f"positions must be integers, got {positions.dtype}")
    pos = positions.astype(np.int64)
    shifted = pos - pos.min(axis=0) + 1
    dims = shifted.max(axis=0) + 2
    if float(np.prod(dims.astype(np.float64))) >= 2.0 ** 62:
        raise ValueError("grid positions span too large a box to index")
    strides = np.concatenate([np.cumprod(dims[::-1])[::-1][1:], [1]])  # row-major strides
    keys = shifted @ strides
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if sorted_keys.size > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise ValueError("positions contain repeated cells")
    neighbour_keys = keys[:, None] + (offsets @ strides)[None, :]          # (P, |O|)
    slot = np.searchsorted(sorted_keys, neighbour_keys)
    slot_clipped = np.minimum(slot, sorted_keys.size - 1)
    found = sorted_keys[slot_clipped] == neighbour_keys
    source = np.broadcast_to(np.arange(pos.shape[0])[:, None], found.shape)[found]
    target = order[slot_clipped[found]]
    edges = np.stack([source, target], axis=1)
    edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))]
    return edges.astype(np.int32)
