"""The format-1.0 validator: ``validate(path) -> Report``.

Every check is a small pure function registered under its spec clause ID
(:mod:`~neural_format.validation.registry`); the clause list lives in
:mod:`~neural_format.validation.clauses`. Exit codes of ``neural-format validate``:
0 clean, 1 warnings or best-practice findings only, 2 errors.
"""
from .clauses import CLAUSES, Clause
from .findings import Finding, Report
from .registry import REGISTRY, check
from .runner import validate, validate_manifest

__all__ = ["CLAUSES", "Clause", "Finding", "REGISTRY", "Report", "check", "validate", "validate_manifest"]
