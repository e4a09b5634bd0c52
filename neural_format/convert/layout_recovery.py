r"""Tell patch rows from entity rows in a legacy fused graph (docs/convert.md, "Layout recovery").

The reference pipeline writes ``x = [patch rows; KG rows]`` and
``edge_index = [patch edges | KG edges | fusion edge]``. A split point :math:`P` (rows
:math:`0..P-1` are patches) is *consistent* with the edge list when

1. no edge except the last crosses it: for every other column :math:`(a, b)`,
   not :math:`\min(a,b) < P \le \max(a,b)`;
2. patch edges come before KG edges: no edge with both ends :math:`\ge P` precedes an edge with
   both ends :math:`< P`;
3. when the record is fused (:math:`0 < P < N`) the last column crosses it.

Each piece of evidence a graph (or its file) holds gives a set of split points; the split is the
one point in the intersection of every applicable set (:func:`recover_split`):

* ``declared``: the user gave :math:`P`; checked against 1-3 only, and used;
* ``edge-order``: conditions 1-3, always (a graph with patches and entities is fused);
* ``entity-row``: the reference projects every entity through one ``Linear(1, D)`` from the same
  input, so every entity row in the file is the same vector. When the driver has established that
  file-wide row, the rows equal to it must be the last rows, and :math:`P` is the count before them;
* ``label``: a KG-only graph is the KG's own ``Data``, which keeps ``label`` (one string per node)
  and ``num_nodes``: :math:`P = 0`, and both counts must equal the rows of ``x``;
* ``edge-direction`` (files whose edge lists store some pair once, as the reference's patch edges
  are): columns without their reverse are patch edges (or the last, fusion, column), columns
  with their reverse are KG edges;
* ``reverse-pair`` (files with every pair in both directions, PyG's usual convention, and no
  file-wide entity row): when every column but the last has its reverse the last is the fusion
  edge (the graph is fused); when every column has its reverse, there is no fusion edge;
* ``unfused:visual`` / ``unfused:kg``: the user's word for graphs without a fusion edge, used
  only when the evidence leaves exactly "all patches" or "all entities" open.

An empty intersection is ``NF-X002`` naming every piece of evidence and what it allows; several
points left open is ``NF-X001`` naming the missing evidence. Nothing is guessed.
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
    rule: str                                  # the evidence that decided (see the module docstring)
    bridge: Optional[tuple[int, int]] = None   # (patch row, entity row - patches)
    bridge_reversed: bool = False              # stored entity -> patch
    corroborated: tuple[str, ...] = ()         # other evidence that applied and agreed


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


def _build(ei: np.ndarray, patches: int, fused: bool, rule: str, corroborated: tuple[str, ...] = ()) -> Split:
    body = ei[:, :-1] if fused else ei
    patch_edges = int((body.max(0) < patches).sum()) if body.size else 0
    kg_edges = body.shape[1] - patch_edges
    bridge, reversed_ = None, False
    if fused:
        a, b = int(ei[0, -1]), int(ei[1, -1])
        reversed_ = a >= patches
        p, e = (b, a) if reversed_ else (a, b)
        bridge = (p, e - patches)
    return Split(patches, patch_edges, kg_edges, fused, rule, bridge, reversed_, corroborated)




def unpaired_columns(ei: np.ndarray, num_nodes: int) -> np.ndarray:
    """Mask of the columns whose reverse is not in the list (self-loops count as paired)."""
    if ei.shape[1] == 0:
        return np.zeros(0, bool)
    n = np.int64(max(num_nodes, 1))
    return ~np.isin(ei[1] * n + ei[0], ei[0] * n + ei[1])


def stores_pairs_once(edge_index: np.ndarray, num_nodes: int) -> bool:
    """Whether a column other than the last lacks its reverse: the reference's one-directional patch edges."""
    ei = np.asarray(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2 or ei.shape[1] < 2 or ei.dtype.kind not in "iu":
        return False
    return bool(unpaired_columns(ei.astype(np.int64, copy=False), num_nodes)[:-1].any())


def _allowed(mask: np.ndarray) -> str:
    points = np.flatnonzero(mask)
    if points.size == 0:
        return "no split"
    if points.size == 1:
        return f"P = {int(points[0])}"
    if points.size == points[-1] - points[0] + 1:
        return f"P in {int(points[0])}..{int(points[-1])}"
    shown = ", ".join(str(int(v)) for v in points[:8])
    return f"P in {{{shown}{', ...' if points.size > 8 else ''}}}"


def _edge_order(ei: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n + 1, bool)
    if ei.shape[1]:
        mask[consistent_splits(ei, n, fused=True)] = True
    mask[0] = mask[n] = True   # all entities or all patches: nothing to cross
    return mask


def _edge_direction(ei: np.ndarray, n: int, unpaired: np.ndarray) -> Optional[np.ndarray]:
    """The reference: pairs stored once are patch edges, pairs stored both ways KG edges, last = fusion."""
    e = ei.shape[1]
    if e == 0:
        return None
    mask = np.zeros(n + 1, bool)
    body, body_unpaired = ei[:, :-1], unpaired[:-1]
    patch_nodes, kg_nodes = body[:, body_unpaired], body[:, ~body_unpaired]
    lo = int(patch_nodes.max()) + 1 if patch_nodes.size else 0        # patches: every end < P
    hi = int(kg_nodes.min()) if kg_nodes.size else n                  # entities: every end >= P
    if not unpaired[-1]:  # the last column is a KG edge: no fusion edge, so the graph is all entities
        if not body_unpaired.any():
            mask[0] = True
        return mask
    a, b = int(ei[0, -1]), int(ei[1, -1])
    if not kg_nodes.size:
        mask[n] = True    # the last column may be one more patch edge of a visual-only graph
    window = np.zeros(n + 1, bool)
    window[min(a, b) + 1: max(a, b) + 1] = True   # or the fusion edge, crossing P
    mask |= window
    mask[:lo] = False
    mask[hi + 1:] = False
    return mask


def _reverse_pair(ei: np.ndarray, n: int, unpaired: np.ndarray) -> Optional[np.ndarray]:
    """PyG's both-directions convention: the one column without its reverse, last, is the fusion edge."""
    if ei.shape[1] == 0 or unpaired[:-1].any():
        return None
    mask = np.zeros(n + 1, bool)
    if unpaired[-1]:
        mask[consistent_splits(ei, n, fused=True)] = True
        mask[0] = mask[n] = False
    else:
        mask[0] = mask[n] = True
    return mask


def _entity_row(entity_rows: np.ndarray, n: int) -> tuple[np.ndarray, str]:
    mask = np.zeros(n + 1, bool)
    rows = np.asarray(entity_rows, bool)
    count = int(rows.sum())
    if rows[n - count:].all():
        mask[n - count] = True
        return mask, f"P = {n - count}"
    stray = np.flatnonzero(rows[: n - count])
    return mask, (f"no split: row {int(stray[0])} equals the file's entity row but row "
                  f"{int(np.flatnonzero(~rows)[-1])} after it does not")


def _label(label_count: Optional[int], num_nodes_attr: Optional[int], n: int) -> Optional[tuple[np.ndarray, str]]:
    if label_count is None:
        return None
    mask = np.zeros(n + 1, bool)
    if label_count != n:
        return mask, f"no split: `label` holds {label_count} strings for {n} rows"
    if num_nodes_attr is not None and num_nodes_attr != n:
        shown = str(num_nodes_attr) if abs(num_nodes_attr).bit_length() <= 64 else "a huge integer"
        return mask, f"no split: `num_nodes` is {shown} for {n} rows"
    mask[0] = True
    return mask, "P = 0 (a KG-only graph)"


def recover_split(edge_index: np.ndarray, num_nodes: int, *, index: int = 0, declared: Optional[int] = None,
                  unfused: Optional[str] = None, pairs_once: Optional[bool] = None,
                  entity_rows: Optional[np.ndarray] = None, label_count: Optional[int] = None,
                  num_nodes_attr: Optional[int] = None) -> Split:
    """Decide the patch/entity split of one record from all the evidence it holds.

    ``pairs_once``: whether the file stores edge pairs once (the reference's patch edges; ``None``:
    judge from this graph). ``entity_rows``: per row, whether it equals the file-wide entity row
    (``None``: no such row established). ``label_count`` / ``num_nodes_attr``: the length of a
    ``label`` list attribute and a ``num_nodes`` attribute, where the graph has them.
    """
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
    if entity_rows is not None and len(entity_rows) != n:
        raise ValueError("entity_rows needs one entry per node")
    unpaired = unpaired_columns(ei, n)
    once = bool(unpaired[:-1].any()) if pairs_once is None else pairs_once
    # (name, allowed split points, what it says): the order is the order of the report's names
    evidence: list[tuple[str, np.ndarray, str]] = []
    label = _label(label_count, num_nodes_attr, n)
    if label is not None:
        evidence.append(("label", *label))
    if entity_rows is not None:
        evidence.append(("entity-row", *_entity_row(entity_rows, n)))
    if once:
        direction = _edge_direction(ei, n, unpaired)
        if direction is not None:
            evidence.append(("edge-direction", direction, _allowed(direction)))
    elif entity_rows is None:
        pair = _reverse_pair(ei, n, unpaired)
        if pair is not None:
            evidence.append(("fusion-edge", pair, _allowed(pair)))
    order = _edge_order(ei, n)
    evidence.append(("edge-order", order, _allowed(order)))
    agreed = np.logical_and.reduce([mask for _, mask, _ in evidence])
    points = np.flatnonzero(agreed)
    if points.size == 0:
        said = "; ".join(f"{name}: {text}" for name, _, text in evidence)
        raise _fail("NF-X002", index, f"the evidence disagrees ({said})",
                    expected="one split every piece of evidence allows", found="none")
    no_fusion_edge = e == 0 or not unpaired[-1]
    if points.size > 1 and unfused is not None and no_fusion_edge:
        p = n if unfused == "visual" else 0
        if agreed[p]:
            return _build(ei, p, False, f"unfused:{unfused}", tuple(name for name, _, _ in evidence))
    if points.size > 1:
        raise _fail("NF-X001", index, _ambiguity(evidence, e, unpaired, entity_rows is not None, once, label is not None),
                    expected="one consistent patch count", found=_allowed(agreed))
    p = int(points[0])
    alone = [name for name, mask, _ in evidence if mask.sum() == 1]
    rule = alone[0] if alone else "+".join(name for name, mask, _ in evidence if not mask.all())
    others = tuple(name for name, _, _ in evidence if name != rule)
    return _build(ei, p, 0 < p < n, rule, others)


def _ambiguity(evidence, e: int, unpaired: np.ndarray, have_row: bool, once: bool, have_label: bool) -> str:
    missing = []
    if not have_row:
        missing.append("no file-wide entity row was established (it needs the same last row in two "
                       "or more graphs, or a KG-only graph with `label`)")
    if not have_label:
        missing.append("no `label`")
    if e == 0 or not unpaired[-1]:
        missing.append("no fusion edge, so the graph may be all patches or all entities (--unfused)")
    elif once:
        missing.append("the one-directional last column may be a patch edge or the fusion edge")
    else:
        missing.append("nodes touched by no edge sit at the patch/entity boundary")
    allowed = "; ".join(f"{name}: {text}" for name, _, text in evidence)
    return ("ambiguous split: several patch counts fit all the evidence (" + allowed + "); missing: "
            + "; ".join(missing) + "; declare the patch count (patch_nodes / --patch-nodes)")
