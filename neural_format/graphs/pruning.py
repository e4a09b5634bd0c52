"""Which patches to keep, given one score per patch (spec section on pruning; NumPy only).

Every policy keeps a *prefix of the ranking*. The ranking orders patches by score, highest
first; ties go to the lower patch index, and NaN scores rank last. With ``P`` patches and
scores ``s``, a rule picks a count ``n``:

* ``TopKPercent(percent=k)``: ``n = ceil(k * P / 100)`` (the product is rounded to 9 decimals
  first, so binary floating error never adds a patch: 10 % of 30 is 3, not 4).
* ``Threshold(tau)``: ``n = #{i : s_i >= tau}`` (NaN never passes). Because the ranking is by
  score, these patches are exactly its first ``n``.
* ``Nucleus(p)`` (MedPruner): with mass ``m_i = max(s_i, 0)`` (NaN counts as 0) and the ranked
  masses ``m_(1) >= m_(2) >= ...``, ``n`` is the smallest count whose mass reaches ``p`` of the
  total: ``n = min{ n : sum_{r<=n} m_(r) >= p * sum_i m_i }``. If the total mass is 0, ``n = 0``.
* ``KeepAll``: ``n = P``.

The bounds then clip the count: ``n' = min(max(n, min_nodes), max_nodes or P, P)``. The kept
patches are the first ``n'`` of the ranking, returned as ascending indices so that their order
(and so the order of rows in a record) follows the patch grid.
"""
from __future__ import annotations

import math

import numpy as np

from ..format.metadata import KeepAll, Nucleus, PruningPolicy, PruningStage, Threshold, TopKPercent

__all__ = ["rank", "rule_count", "bounded_count", "select", "describe", "policy_from_args"]


def rank(scores) -> np.ndarray:
    """Patch indices ordered by score, highest first; ties by lower index; NaN last."""
    s = np.asarray(scores, np.float64).reshape(-1)
    key = np.where(np.isnan(s), -np.inf, s)
    # lexsort sorts by the last key first: descending score, then ascending index
    return np.lexsort((np.arange(s.size), np.isnan(s), -key)).astype(np.int64)


def _nucleus_count(ranked_scores: np.ndarray, p: float) -> int:
    mass = np.where(np.isnan(ranked_scores), 0.0, np.maximum(ranked_scores, 0.0))
    cumulative = np.cumsum(mass)
    total = float(cumulative[-1]) if cumulative.size else 0.0
    if total <= 0.0:
        return 0
    return int(np.searchsorted(cumulative, p * total, side="left")) + 1


def rule_count(scores, rule) -> int:
    """The count ``n`` a rule asks for, before the min/max bounds."""
    s = np.asarray(scores, np.float64).reshape(-1)
    P = s.size
    if isinstance(rule, TopKPercent):
        return min(P, math.ceil(round(rule.percent * P / 100.0, 9)))
    if isinstance(rule, Threshold):
        return int(np.count_nonzero(s >= rule.tau))
    if isinstance(rule, Nucleus):
        return _nucleus_count(s[rank(s)], rule.p) if P else 0
    if isinstance(rule, KeepAll):
        return P
    raise TypeError(f"unknown pruning rule {rule!r}")


def bounded_count(n: int, total: int, policy: PruningPolicy) -> int:
    """Clip a rule's count by the policy's bounds and by the number of patches."""
    upper = total if policy.max_nodes is None else min(policy.max_nodes, total)
    return int(min(max(n, policy.min_nodes), upper))


def select(scores, policy: PruningPolicy) -> np.ndarray:
    """Indices (ascending, int64) of the patches ``policy`` keeps. See the module docstring."""
    s = np.asarray(scores, np.float64).reshape(-1)
    order = rank(s)
    n = bounded_count(rule_count(s, policy.rule), s.size, policy)
    return np.sort(order[:n])


def describe(policy: PruningPolicy) -> str:
    """A short human-readable form, e.g. ``nucleus p=0.8 [min 1, max 64]``."""
    rule = policy.rule
    if isinstance(rule, TopKPercent):
        text = f"top-k {rule.percent:g}%"
    elif isinstance(rule, Threshold):
        text = f"threshold tau={rule.tau:g}"
    elif isinstance(rule, Nucleus):
        text = f"nucleus p={rule.p:g}"
    else:
        text = "keep all"
    bounds = f"min {policy.min_nodes}" + ("" if policy.max_nodes is None else f", max {policy.max_nodes}")
    return f"{text} [{bounds}]"


def policy_from_args(args, *, applied_to: PruningStage = "build") -> PruningPolicy:
    """The policy named by the ``--nucleus`` / ``--threshold`` / ``--top-k-percent`` and
    ``--min-nodes`` / ``--max-nodes`` options that ``neural-format build`` and ``reprune`` share.
    The three rules are mutually exclusive on the command line; the first one given wins here."""
    rule: Nucleus | Threshold | TopKPercent
    if args.nucleus is not None:
        rule = Nucleus(p=args.nucleus)
    elif args.threshold is not None:
        rule = Threshold(tau=args.threshold)
    else:
        rule = TopKPercent(percent=args.top_k_percent)
    return PruningPolicy(rule=rule, min_nodes=args.min_nodes, max_nodes=args.max_nodes, applied_to=applied_to)
