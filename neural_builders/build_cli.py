"""The build's command line: options -> job -> one collection file, or one rank's shard.

``neural-format build`` (:mod:`neural_builders.cli.build_cmd`) and ``python -m
neural_builders.build`` call :func:`run_from_args`/:func:`main`; the sharded build
(:mod:`neural_builders.distributed_build`, also ``torchrun -m neural_builders.build``) takes the
same options and job and builds each rank's share with the same :func:`build_job`. The options
and the options -> config -> job path are :mod:`neural_builders.build_options` (re-exported here);
the pipeline is :mod:`neural_builders.build`, which this module sits above.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from . import build
from .build import build_collection
from .build_inputs import BuildInput
from .build_options import BuildJob, add_arguments, config_from_args, job_from_args
from .summary import BuildSummary

__all__ = ["BuildJob", "add_arguments", "build_job", "config_from_args", "job_from_args", "main", "run_from_args"]


def build_job(job: BuildJob, out_path, items: Optional[Sequence[BuildInput]] = None) -> BuildSummary:
    """Build ``job`` into the collection file ``out_path``: all its inputs, with the pairing's
    skips in the summary (one process), or ``items``, one rank's share of the inputs, without
    those skips, which would otherwise repeat in every shard (the sharded build)."""
    if items is None:
        return build_collection(job.inputs, job.model, job.config, Path(out_path), skipped=job.skipped)
    return build_collection(list(items), job.model, job.config, Path(out_path))


def run_from_args(args) -> int:
    """Build the one collection file that the :func:`add_arguments` options describe."""
    summary = build_job(job_from_args(args), args.out)
    print("\n".join(summary.lines()))
    return 0 if summary.records_written else 1


def main(argv=None) -> int:
    """``python -m neural_builders.build``: one process, one collection file."""
    parser = argparse.ArgumentParser(prog="python -m neural_builders.build",
                                     description=(build.__doc__ or "").splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
