"""The sequence protocol shared by every record container: ``len``, ``[i]``, ``[a:b]``, iteration.

A subclass sets ``self._n`` and implements ``_record(i)`` for ``0 <= i < _n``.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import IndexTypeError
from ..format.record import Record


class RecordSequence:
    _n: int

    def _record(self, i: int) -> Record:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self._record(i) for i in range(*key.indices(self._n))]
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):  # True is 1 to Python
            i = int(key)
            if i < 0:
                i += self._n
            if not 0 <= i < self._n:
                raise IndexError(f"record index {key} out of range for {self._n} records")
            return self._record(i)
        # a bool, str, float ...: the coded NF-E-INDEX (an IndexTypeError is a TypeError, as before)
        raise IndexTypeError("NF-E-INDEX", f"records are indexed by int or slice, not {type(key).__name__}",
                             location="[]", expected="int or slice", found=repr(key)[:80])

    def __iter__(self) -> Iterator[Record]:
        for i in range(self._n):
            yield self._record(i)
