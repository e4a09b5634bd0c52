"""Progress bars for long CLI work: tqdm when it is installed, a plain text fallback otherwise.

Why optional: the core promises numpy, h5py and pydantic only (``pip install .``), and a bar is a
convenience, not a function of the format. tqdm comes with the ``progress``, ``builders`` and
``models`` extras (the commands that run for minutes live there); a core-only install gets the
small fallback below, which draws the same information. Bars go to stderr and are silent when
stderr is not a TTY, unless forced (``enabled=True`` or ``NEURAL_FORMAT_PROGRESS=1``).
"""
from __future__ import annotations

import os
import sys
import time
from . import optional_deps


def _tqdm():
    if not optional_deps.available("tqdm"):
        return None
    return optional_deps.load("tqdm").tqdm


class Progress:
    """``with Progress(total, "hashing") as bar: bar.update(1)``; ``total`` may be set later."""

    def __init__(self, total: int | None, label: str, *, stream=None, enabled: bool | None = None,
                 use_tqdm: bool | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = self.stream.isatty() or os.environ.get("NEURAL_FORMAT_PROGRESS") == "1"
        self.enabled = bool(enabled)
        tqdm = _tqdm() if use_tqdm in (None, True) else None
        if use_tqdm and tqdm is None:
            raise ImportError("tqdm is not installed (pip install 'neural-format[progress]')")
        self._bar = None
        if tqdm is not None:
            self._bar = tqdm(total=total, desc=label, file=self.stream, disable=not self.enabled,
                             unit="rec", mininterval=0.1, dynamic_ncols=True)
            self.backend = "tqdm"
        else:
            self.backend = "plain"
        self._total, self.count = total, 0
        self._start = self._last = time.monotonic()

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = value
        if self._bar is not None:
            self._bar.total = value
            self._bar.refresh()

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or (self._total and self.count >= self._total)):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self._start, 1e-9)
        if self._total:
            frac = min(1.0, self.count / self._total)
            bar = "#" * int(frac * 30)
            eta = (self._total - self.count) / rate if rate > 0 else 0
            text = f"\r{self.label}: [{bar:<30}] {self.count}/{self._total} {rate:,.0f}/s eta {eta:,.0f}s"
        else:
            text = f"\r{self.label}: {self.count} {rate:,.0f}/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
