"""The check registry, in the manner of nwbinspector.

Each check is a small pure function registered with ``@check(code, severity, stage=...)``. The
registry knows each check's clause, severity, stage and what it needs: its parameter names,
each one a named input of its stage (:data:`STAGE_INPUTS`) or a derived fact registered with
``@derived(name, stage=...)``. The runner (:mod:`.runner`) provides those inputs and calls every
check through one wrapper, :func:`run_check`; checks never hand results to each other. A fact
that more than one check needs (such as which feature columns of a block are free of NaN) is a
derived input, computed once per block by the runner on first request.

A check returns a finding, a list of findings, or None. The registered severity must equal the
clause's severity in :mod:`neural_format.clauses`, so prose, check and fixture agree; a code that
is not a clause is refused when the module is imported.

Stages run in order: ``container`` (raw HDF5 walk, needs only the open file), ``root`` (versions
and encodings), ``metadata``, ``structure`` (datasets, offsets; needs metadata), ``records``
(streamed batches; needs a sound structure), ``manifest`` (multi-file collections).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from .clauses import CLAUSES
from .findings import finding

STAGES = ("container", "root", "metadata", "structure", "records", "manifest")

# What the runner gives the checks of each stage, by name.
STAGE_INPUTS: dict[str, dict[str, str]] = {
    **{stage: {"ctx": "the file's validation context (memoised reader guards, read-only for checks)"}
       for stage in ("container", "root", "metadata", "structure")},
    "records": {
        "batch": "one block of records: its bulk columns (checks_records.Batch)",
        "earlier_ids": "the record IDs of the blocks before this one (read-only; the runner adds each block's)",
        "hashes": "whether record hashes are checked (validate(hashes=...))",
    },
    "manifest": {"ctx": "the sharded collection's context (ManifestContext)"},
}


def _needs(func: Callable) -> tuple[str, ...]:
    return tuple(inspect.signature(func).parameters)


@dataclass(frozen=True)
class RegisteredCheck:
    code: str
    severity: str
    stage: str
    func: Callable
    needs: tuple[str, ...]
    background: bool = False  # the runner may run it in its worker pool while it reads on

    @property
    def name(self) -> str:
        return self.func.__name__


@dataclass(frozen=True)
class DerivedInput:
    """A fact computed from a stage's inputs, once per scope (a file, a block), for any check that names it."""
    name: str
    stage: str
    func: Callable
    needs: tuple[str, ...]


REGISTRY: dict[str, RegisteredCheck] = {}
DERIVED: dict[tuple[str, str], DerivedInput] = {}


def _known_inputs(stage: str) -> set[str]:
    return set(STAGE_INPUTS[stage]) | {name for (where, name) in DERIVED if where == stage}


def _check_needs(stage: str, owner: str, needs: tuple[str, ...]) -> None:
    unknown = [name for name in needs if name not in _known_inputs(stage)]
    if unknown:
        raise ValueError(f"{owner} needs {unknown}, which the {stage!r} stage does not provide "
                         f"(inputs: {sorted(_known_inputs(stage))})")


def check(code: str, severity: str, *, stage: str, background: bool = False):
    """Register ``func`` as THE check of clause ``code``; its parameters name the inputs it needs.

    ``background=True``: the runner may run it in its thread pool while it reads the next block
    (record stage); the check must then only read its inputs.
    """
    clause = CLAUSES.get(code)
    if clause is None:
        raise KeyError(f"{code} is not a clause of the spec (neural_format/clauses.py)")
    if severity != clause.severity:
        raise ValueError(f"{code}: registered severity {severity!r} differs from the clause's {clause.severity!r}")
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")

    def wrap(func: Callable) -> Callable:
        if code in REGISTRY:
            raise ValueError(f"{code} already has a check: {REGISTRY[code].name}")
        needs = _needs(func)
        _check_needs(stage, f"check {func.__name__} ({code})", needs)
        REGISTRY[code] = RegisteredCheck(code, severity, stage, func, needs, background)
        return func
    return wrap


def derived(name: str, *, stage: str):
    """Register ``func`` as the way to compute the input ``name`` of ``stage`` from that stage's inputs."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    if name in STAGE_INPUTS[stage] or (stage, name) in DERIVED:
        raise ValueError(f"the {stage!r} stage already has an input {name!r}")

    def wrap(func: Callable) -> Callable:
        needs = _needs(func)
        _check_needs(stage, f"derived input {name!r}", needs)
        DERIVED[(stage, name)] = DerivedInput(name, stage, func, needs)
        return func
    return wrap


def checks_for(stage: str) -> list[RegisteredCheck]:
    return [c for c in REGISTRY.values() if c.stage == stage]


class Inputs:
    """The named inputs of one stage for one scope: the given ones, and derived ones computed on first use."""

    def __init__(self, stage: str, **given):
        missing = set(STAGE_INPUTS[stage]) - set(given)
        if missing:
            raise TypeError(f"the {stage!r} stage needs the inputs {sorted(missing)}")
        self.stage = stage
        self._values = dict(given)

    def __getitem__(self, name: str):
        if name not in self._values:
            provider = DERIVED[(self.stage, name)]
            self._values[name] = provider.func(*(self[need] for need in provider.needs))
        return self._values[name]

    def prepare(self, registered: RegisteredCheck) -> None:
        """Compute now, in this thread, the derived inputs ``registered`` needs (before it runs in a pool).

        A failure is left for :func:`run_check` to report when the check asks for the input again.
        """
        try:
            self.arguments(registered)
        except Exception:
            pass

    def arguments(self, registered: RegisteredCheck) -> tuple:
        return tuple(self[name] for name in registered.needs)


def run_check(registered: RegisteredCheck, inputs: Inputs, location: str):
    """THE wrapper that runs a check: its findings, or one NF-F001 finding saying where it failed.

    A check (or a derived input it needs) must never take the validator down, whatever the file holds.
    """
    try:
        return registered.func(*inputs.arguments(registered))
    except Exception as exc:
        return finding("NF-F001", location, f"check {registered.name} ({registered.code}) could not run: "
                                            f"{type(exc).__name__}: {exc}"[:300])
