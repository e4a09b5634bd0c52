"""The report generator's configuration, torch-free: every default in one place.

:class:`GeneratorConfig` (``swin`` / ``t5`` keyword arguments, :class:`ProjectionConfig`,
:class:`ResolutionConfig`) configures :class:`neural_builders.vlm.model.ReportGenerator`, which
also takes its nested dict form; :class:`FinetuneConfig` configures stage-1 fine-tuning
(:func:`neural_builders.vlm.train.finetune`). ``neural-format finetune`` reads its flags' defaults
from here without importing torch.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # a type only: this module imports nothing of the model at run time
    from .patch_grid import ResolutionMode


@dataclass
class ResolutionConfig:
    """How images are sized for the model; see :mod:`neural_builders.vlm.patch_grid`."""
    mode: ResolutionMode = "native"
    max_side: Optional[int] = 512
    fixed_size: tuple[int, int] = (224, 224)


@dataclass
class ProjectionConfig:
    position_frequencies: int = 8
    # learned extra key/value slots appended after the patch tokens (0 = none); see Projection
    registers: int = 0


def _section(kind, values, where: str):
    """``kind`` from a dict of its fields (missing ones take the dataclass defaults; unknown ones are refused)."""
    if isinstance(values, kind):
        return dataclasses.replace(values)
    values = dict(values or {})
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(kind)})
    if unknown:
        raise ValueError(f"report generator config: unknown {where} settings {unknown}")
    if "fixed_size" in values:
        values["fixed_size"] = tuple(values["fixed_size"])
    return kind(**values)


@dataclass
class GeneratorConfig:
    """The report generator's configuration; every default lives here or in the section classes.

    ``swin`` and ``t5`` are keyword arguments of ``transformers.SwinConfig`` / ``T5Config`` (the
    built model fills in the rest); ``projection`` and ``resolution`` are this package's settings.
    :meth:`coerce` also takes the nested dict form (``{"swin": ..., "t5": ..., "projection": ...,
    "resolution": ...}``, as in ``config.json`` and :func:`tiny_config`), and :meth:`to_dict` gives it back.
    """
    swin: dict = field(default_factory=dict)
    t5: dict = field(default_factory=dict)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)

    @classmethod
    def coerce(cls, config) -> "GeneratorConfig":
        """A copy of ``config``, a :class:`GeneratorConfig` or its nested dict form."""
        if isinstance(config, cls):
            config = config.to_dict()
        config = json.loads(json.dumps(dict(config)))  # a plain-JSON copy
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"report generator config: unknown sections {unknown}")
        return cls(swin=dict(config.get("swin") or {}), t5=dict(config.get("t5") or {}),
                   projection=_section(ProjectionConfig, config.get("projection"), "projection"),
                   resolution=_section(ResolutionConfig, config.get("resolution"), "resolution"))

    def to_dict(self) -> dict:
        """The nested plain-JSON dict form (what ``config.json`` holds besides the format keys)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass
class FinetuneConfig:
    """Stage-1 fine-tuning of the report generator (teacher forcing); see :mod:`neural_builders.vlm.train`."""
    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    min_lr_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    max_report_tokens: int = 64
    device: str = "auto"
    mixed_precision: bool = True
    freeze_encoder_steps: int = 0   # first steps train projection + T5 on cached Swin features
