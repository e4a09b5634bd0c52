"""What the build takes, one case at a time: :class:`BuildInput`, and :func:`inputs_from_pairs`
turning the pairs of :func:`neural_builders.inputs.pair_inputs` (with their labels) into them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

if TYPE_CHECKING:
    from .inputs.loaded_image import LoadedImage


@dataclass
class BuildInput:
    """One case. ``image`` is a LoadedImage or None (then ``image_path`` is loaded when needed);
    ``report`` the report text for the model (findings + impression) or None to generate one."""
    case_id: str
    image_path: Optional[Path] = None
    image: Optional[LoadedImage] = None
    report: Optional[str] = None
    labels: Optional[Sequence[float]] = None
    group_key: Optional[str] = None


def inputs_from_pairs(pairs, labels: Optional[Mapping[str, Sequence[float]]] = None) -> list[BuildInput]:
    """BuildInputs from :func:`neural_builders.inputs.pair_inputs` pairs. The group key is a
    SHA-256 prefix of the report ID (cases of one report share it; the ID itself is not stored)."""
    labels = labels or {}
    out = []
    for pair in pairs:
        rid = pair.report.report_id
        out.append(BuildInput(case_id=pair.case_id, image_path=pair.image_path, image=pair.image,
                              report=pair.report.text_for_model or None, labels=labels.get(pair.case_id),
                              group_key=hashlib.sha256(rid.encode("utf-8")).hexdigest()[:16]))
    return out
