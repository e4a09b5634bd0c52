"""One input the build left out, and why: skips are counted and reported, never silent."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

LOG = logging.getLogger("neural_builders.inputs")

Stage = Literal["image", "report", "pairing", "kg", "model", "write"]


@dataclass(frozen=True)
class Skipped:
    """``id`` is the case/image/report ID as the user named it (a file stem or CSV id), ``stage``
    where the build gave up on it, ``reason`` a human sentence, ``code`` the error code if any."""
    id: str
    stage: str
    reason: str
    code: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def record_skip(skipped: list | None, item_id: str, stage: str, reason: str, code: str = "") -> Skipped:
    """Log one skip at WARNING and append it to ``skipped`` (when given)."""
    entry = Skipped(str(item_id), stage, reason, code)
    LOG.warning("skipped %s at %s: %s%s", entry.id, stage, reason, f" [{code}]" if code else "")
    if skipped is not None:
        skipped.append(entry)
    return entry
