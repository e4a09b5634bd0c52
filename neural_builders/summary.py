"""The final build summary: what was written, what was skipped and why, bytes, and where time went."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class StageTimes:
    """Wall seconds per stage. ``forward`` is the model (Swin + teacher-forced T5 with
    cross-attention); ``prepare`` image decoding and resizing; ``graph`` pruning, grid edges and
    bridge; ``kg`` report -> knowledge graph (+ entity embeddings); ``write`` the collection
    writer (checks, hashing, HDF5 appends, final fsync) and, in the serial build, the weight
    files' SHA-256 for the provenance; ``provenance`` that SHA-256 when computed in the background
    (pipelined build). In a pipelined build the stages overlap: these are each stage's busy
    seconds, and their sum exceeds the wall time."""
    prepare: float = 0.0
    forward: float = 0.0
    graph: float = 0.0
    kg: float = 0.0
    write: float = 0.0
    provenance: float = 0.0

    @property
    def overhead(self) -> float:
        """Graph + KG + write: the work the builder adds to the model's forward pass."""
        return self.graph + self.kg + self.write


@dataclass
class BuildSummary:
    out_path: Path
    records_written: int = 0
    skipped: list = field(default_factory=list)      # neural_builders.inputs.Skipped entries
    bytes_written: int = 0
    source_bytes: int = 0
    patches_seen: int = 0                             # real tokens of the written records
    patches_kept: int = 0
    seconds: float = 0.0
    times: StageTimes = field(default_factory=StageTimes)
    device: str = "cpu"
    policy: str = ""

    @property
    def bytes_saved(self) -> int:
        return self.source_bytes - self.bytes_written

    @property
    def reduction(self) -> Optional[float]:
        """1 - written / source (0.9 = the collection is 10 % of the source images' bytes)."""
        return None if not self.source_bytes else 1.0 - self.bytes_written / self.source_bytes

    def skip_reasons(self) -> Counter:
        return Counter(f"{s.stage}: {s.reason}" for s in self.skipped)

    def lines(self) -> list[str]:
        kept = self.patches_kept / self.patches_seen if self.patches_seen else 0.0
        rate = self.records_written / self.seconds if self.seconds else 0.0
        out = [
            f"build summary: {self.out_path}",
            f"  records written   {self.records_written:,}",
            f"  records skipped   {len(self.skipped):,}",
        ]
        for reason, count in self.skip_reasons().most_common(8):
            out.append(f"    {count:>5} x {reason}")
        out += [
            f"  patches kept      {self.patches_kept:,} of {self.patches_seen:,} ({kept:.2%}; {self.policy})",
            f"  source bytes      {self.source_bytes:,}",
            f"  collection bytes  {self.bytes_written:,}",
        ]
        if self.reduction is not None:
            out.append(f"  bytes saved       {self.bytes_saved:,} ({self.reduction:.1%} smaller than the source)")
        t = self.times
        out.append(f"  time              {self.seconds:.1f} s on {self.device} ({rate:.2f} records/s): "
                   f"prepare {t.prepare:.1f}, forward {t.forward:.1f}, graph {t.graph:.2f}, "
                   f"KG {t.kg:.2f}, write {t.write:.2f}"
                   + (f", weight digests {t.provenance:.1f} (background)" if t.provenance else ""))
        return out

    def to_dict(self) -> dict:
        return {"out_path": str(self.out_path), "records_written": self.records_written,
                "skipped": [s.as_dict() for s in self.skipped], "bytes_written": self.bytes_written,
                "source_bytes": self.source_bytes, "bytes_saved": self.bytes_saved, "reduction": self.reduction,
                "patches_seen": self.patches_seen, "patches_kept": self.patches_kept, "seconds": self.seconds,
                "times": asdict(self.times), "device": self.device, "policy": self.policy}
