"""The check registry, in the manner of nwbinspector.

Each check is a small pure function registered with ``@check(code, severity, stage=...)``. It
receives the validation context (and, for ``stage="records"``, one batch of records) and returns
a finding, a list of findings, or None. The registered severity must equal the clause's severity
in :mod:`neural_format.validation.clauses`, so prose, check and fixture agree.

Stages run in order: ``container`` (raw HDF5 walk, needs only the open file), ``root`` (versions
and encodings), ``metadata``, ``structure`` (datasets, offsets; needs metadata), ``records``
(streamed batches; needs a sound structure), ``manifest`` (multi-file collections).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .clauses import CLAUSES

STAGES = ("container", "root", "metadata", "structure", "records", "manifest")


@dataclass(frozen=True)
class RegisteredCheck:
    code: str
    severity: str
    stage: str
    func: Callable

    @property
    def name(self) -> str:
        return self.func.__name__


REGISTRY: dict[str, RegisteredCheck] = {}


def check(code: str, severity: str, *, stage: str):
    """Register ``func`` as THE check of clause ``code``."""
    clause = CLAUSES.get(code)
    if clause is None:
        raise KeyError(f"{code} is not a clause of the spec (neural_format/validation/clauses.py)")
    if severity != clause.severity:
        raise ValueError(f"{code}: registered severity {severity!r} differs from the clause's {clause.severity!r}")
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")

    def wrap(func: Callable) -> Callable:
        if code in REGISTRY:
            raise ValueError(f"{code} already has a check: {REGISTRY[code].name}")
        REGISTRY[code] = RegisteredCheck(code, severity, stage, func)
        return func
    return wrap


def checks_for(stage: str) -> list[RegisteredCheck]:
    return [c for c in REGISTRY.values() if c.stage == stage]
