"""A dependency-free progress bar for long CLI work (stderr; silent when not a TTY unless forced)."""
from __future__ import annotations

import os
import sys
import time


class Progress:
    """``with Progress(total, "hashing") as bar: bar.update(1)``. Redraws at most 10 times a second."""

    def __init__(self, total: int | None, label: str, *, stream=None, enabled: bool | None = None):
        self.total, self.label, self.count = total, label, 0
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = self.stream.isatty() or os.environ.get("NEURAL_FORMAT_PROGRESS") == "1"
        self.enabled = enabled
        self._start = self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or (self.total and self.count >= self.total)):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self._start, 1e-9)
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(frac * 30)
            eta = (self.total - self.count) / rate if rate > 0 else 0
            text = f"\r{self.label}: [{bar:<30}] {self.count}/{self.total} {rate:,.0f}/s eta {eta:,.0f}s"
        else:
            text = f"\r{self.label}: {self.count} {rate:,.0f}/s"
        self.stream.write(text)
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
