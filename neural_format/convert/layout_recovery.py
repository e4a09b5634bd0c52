r"""Tell patch rows from entity rows in a legacy fused graph (docs/convert.md, "Layout recovery").

The reference pipeline writes ``x = [patch rows; KG rows]`` and
``edge_index = [patch edges | KG edges | fusion edge]``. A split point :math:`P` (rows
:math:`0..P-1` are patches) is *consistent* with the edge list when

1. no edge except the last crosses it: for every other column :math:`(a, b)`,
   not :math:`\min(a,b) < P \le \max(a,b)`;
2. patch edges come before KG edges: no edge with both ends :math:`\ge P` precedes an edge with
   both ends :math:`< P`;
3. when the record is fused (:math:`0 < P < N` and there is a fusion edge) the last column crosses it.

Which :math:`P` the file meant is decided by, in this order:

* ``declared``: the user gave :math:`P` for this record; it is checked against 1-3 and used;
* ``empty``: :math:`N = 0`;
* ``fusion-edge`` (the *reverse-pair rule*): every column but the last has its reverse in the list
  (PyG's undirected convention) and the last has not. The last column is then the fusion edge and
  :math:`P` is the one split consistent with 1-3 inside :math:`(\min, \max]` of its ends. Several
  consistent splits happen when nodes touched by no edge sit at the boundary (an isolated last
  patch, an isolated first entity): that is *ambiguous* and raises ``NF-X001``;
* ``unfused:visual`` / ``unfused:kg``: the whole list is symmetric (so there is no fusion edge) or
  there are no edges; such a record is all patches or all entities, and only the user can say
  which (``unfused=``); otherwise ``NF-X001``.

An edge list that is neither symmetric nor symmetric-but-the-last cannot be read by the rule; the
user must declare :math:`P` (``NF-X001``). An edge list no split explains raises ``NF-X002``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import SchemaError

UNFUSED_MODES = ("visual", "kg")


@dataclass(frozen=True)
class Split:
    """Rows ``[0, patches)`` are patches; edge columns ``[0, patch_edges)`` are patch edges, then
    ``kg_edges`` KG edges, then (if ``fused``) the fusion edge."""
    patches: int
    patch_edges: int
    kg_edges: int
    fused: bool
    rule: str
    bridge: Optional[tuple[int, int]] = None   # (patch row, entity row - patches)
    bridge_reversed: bool = False              # stored entity -> patch


def _fail(code: str, index: int, message: str, **kw) -> SchemaError:
    return SchemaError(code, message, location=f"graph {index}/edge_index", **kw)


def check_edge_index(edge_index: np.ndarray, num_nodes: int, index: int) -> np.ndarray:
    ei = np.asarray(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise _fail("NF-X002", index, "edge_index is not a (2, E) array", expected="(2, E)", found=ei.shape)
    if ei.dtype.kind not in "iu":
        raise _fail("NF-X002", index, "edge_index is not integer", expected="int64", found=ei.dtype)
    ei = ei.astype(np.int64, copy=False)
    if ei.size and (ei.min() < 0 or ei.max() >= num_nodes):
        raise _fail("NF-X002", index, "edge_index names a node that does not exist",
                    expected=f"0..{num_nodes - 1}", found=f"{int(ei.min())}..{int(ei.max())}")
    return ei


def consistent_splits(ei: np.ndarray, num_nodes: int, *, fused: bool) -> np.ndarray:
    """All split points P (0..N) satisfying conditions 1-3, in O(N + E)."""
    n = num_nodes
    others = ei[:, :-1] if fused else ei
    cover = np.zeros(n + 2, np.int64)
    if others.shape[1] == 0:
        others = np.zeros((2, 0), np.int64)
    lo, hi = others.min(0, initial=n), others.max(0, initial=0)
    # 1: the edge crosses every P in (lo, hi]
    crossing = hi > lo
    cover += np.bincount(lo[crossing] + 1, minlength=n + 2)[: n + 2]
    cover -= np.bincount(hi[crossing] + 1, minlength=n + 2)[: n + 2]
    # 2: edge i is a KG edge (lo_i >= P) followed by a patch edge j (hi_j < P) for P in (min_{j>i} hi_j, lo_i]
    if others.shape[1] > 1:
        later = np.minimum.accumulate(hi[::-1])[::-1][1:]
        bad = later < lo[:-1]
        cover += np.bincount(later[bad] + 1, minlength=n + 2)[: n + 2]
        cover -= np.bincount(lo[:-1][bad] + 1, minlength=n + 2)[: n + 2]
    ok = np.cumsum(cover)[: n + 1] == 0
    if fused:
        a, b = int(ei[0, -1]), int(ei[1, -1])
        window = np.zeros(n + 1, bool)
        window[min(a, b) + 1: max(a, b) + 1] = True  # 3: the last column crosses P
        ok &= window
    return np.flatnonzero(ok)


def _symmetry(ei: np.ndarray, num_nodes: int) -> tuple[bool, bool]:
    """(every column but the last has its reverse in the list, the last has its reverse)."""
    n = np.int64(max(num_nodes, 1))
    codes = ei[0] * n + ei[1]
    has_reverse = np.isin(ei[1] * n + ei[0], codes)
    return bool(has_reverse[:-1].all()), bool(has_reverse[-1])


def _build(ei: np.ndarray, patches: int, fused: bool, rule: str) -> Split:
    body = ei[:, :-1] if fused else ei
    patch_edges = int((body.max(0) < patches).sum()) if body.size else 0
    kg_edges = body.shape[1] - patch_edges
    bridge, reversed_ = None, False
    if fused:
        a, b = int(ei[0, -1]), int(ei[1, -1])
        reversed_ = a >= patches
        p, e = (b, a) if reversed_ else (a, b)
        bridge = (p, e - patches)
    return Split(patches, patch_edges, kg_edges, fused, rule, bridge, reversed_)


def recover_split(edge_index: np.ndarray, num_nodes: int, *, index: int = 0, declared: Optional[int] = None,
                  unfused: Optional[str] = None) -> Split:
    """Decide the patch/entity split of one record (see the module docstring for the rule)."""
    if unfused not in (None, *UNFUSED_MODES):
        raise ValueError(f"unfused must be None, 'visual' or 'kg', not {unfused!r}")
    ei = check_edge_index(edge_index, num_nodes, index)
    n, e = num_nodes, ei.shape[1]
    if declared is not None:
        p = int(declared)
        if not 0 <= p <= n:
            raise _fail("NF-X002", index, "declared patch count outside the node count",
                        expected=f"0..{n}", found=p)
        if e and 0 < p < n:
            a, b = int(ei[0, -1]), int(ei[1, -1])
            fused = min(a, b) < p <= max(a, b)
        else:
            fused = False
        if e and p not in consistent_splits(ei, n, fused=fused):
            raise _fail("NF-X002", index, "the declared patch count does not fit the edge list "
                        "(an edge other than the last crosses it, or a KG edge precedes a patch edge)",
                        expected="patch edges, then KG edges, then one fusion edge", found=f"patch_nodes={p}")
        return _build(ei, p, fused, "declared")
    if n == 0:
        return Split(0, 0, 0, False, "empty")
    if e:
        sym_body, last_has_reverse = _symmetry(ei, n)
    if e and sym_body and not last_has_reverse:
        candidates = consistent_splits(ei, n, fused=True)
        if candidates.size == 1:
            return _build(ei, int(candidates[0]), True, "fusion-edge")
        a, b = int(ei[0, -1]), int(ei[1, -1])
        if candidates.size == 0:
            raise _fail("NF-X002", index, "the last column looks like a fusion edge (no reverse) but no split "
                        "separates patch edges from KG edges", expected="reference layout",
                        found=f"fusion edge ({a}, {b})")
        raise _fail("NF-X001", index, "ambiguous split: nodes touched by no edge sit at the patch/entity "
                    "boundary; declare the patch count (patch_nodes / --patch-nodes)",
                    expected="one consistent patch count", found=f"any of {candidates.tolist()[:8]}")
    if e == 0 or (sym_body and last_has_reverse):
        if unfused is None:
            raise _fail("NF-X001", index, "no fusion edge: the record is all patches or all entities and the "
                        "file cannot say which; declare unfused='visual' or 'kg' (--unfused) or the patch count",
                        expected="a declaration", found=f"{n} nodes, {e} edges, no fusion edge")
        return _build(ei, n if unfused == "visual" else 0, False, f"unfused:{unfused}")
    raise _fail("NF-X001", index, "edges are not stored in both directions, so the reverse-pair rule cannot "
                "find the fusion edge; declare the patch count (patch_nodes / --patch-nodes)",
                expected="symmetric edge list", found=f"{e} edges")
