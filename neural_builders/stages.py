"""Overlapping the build's stages: an ordered, bounded prefetch and a bounded in-order consumer.

The build (:mod:`neural_builders.build`) runs three kinds of work: decoding and resizing images
(CPU, per input), the model's forward pass (one batch at a time, the accelerator's or the CPU's
math threads) and the per-record tail (pruning, KG, bridge, writing; CPU, Python). Serially the
accelerator idles during the first and the last. Here:

* :class:`OrderedPrefetch` maps a function over the inputs in worker threads, at most
  ``lookahead`` ahead of the consumer, and hands the results back **in input order**;
* :class:`OrderedConsumer` runs a function over jobs in one background thread, in the order they
  were submitted, with at most ``depth`` jobs waiting (the producer blocks beyond that).

Threads, not processes: image decoding (Pillow, pydicom's pixel handlers), NumPy resampling,
hashing, HDF5 writes and the model's kernels release the GIL for their heavy parts, the results
(native images, arrays) need no pickling, and nothing has to be re-imported in a child. An
exception in a worker or in the consumer is raised in the calling thread, with its traceback.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Optional

_STOP = object()


class OrderedPrefetch:
    """``fn(item)`` for each item in worker threads; results are yielded in input order.

    At most ``lookahead`` items are submitted beyond the one being consumed (bounded memory).
    ``workers=0`` runs ``fn`` inline, in the consuming thread (no threads at all).
    """

    def __init__(self, fn: Callable, items: Iterable, *, workers: int, lookahead: int):
        self.fn, self.items = fn, iter(items)
        self.workers, self.lookahead = max(0, int(workers)), max(1, int(lookahead))
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: deque[Future] = deque()

    def __iter__(self) -> Iterator:
        if self.workers == 0:
            for item in self.items:
                yield self.fn(item)
            return
        pool = self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="build-prepare")
        try:
            self._fill(pool)
            while self._pending:
                future = self._pending.popleft()
                self._fill(pool)
                yield future.result()
        finally:
            self.close()

    def _fill(self, pool: ThreadPoolExecutor) -> None:
        while len(self._pending) < self.lookahead:
            try:
                item = next(self.items)
            except StopIteration:
                return
            self._pending.append(pool.submit(self.fn, item))

    def close(self) -> None:
        """Cancel what has not started and wait for what has (no worker outlives the build)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class OrderedConsumer:
    """One background thread running ``fn(job)`` over submitted jobs, first in, first out.

    :meth:`submit` blocks while ``depth`` jobs wait. An exception in ``fn`` stops the consumer;
    the next :meth:`submit` or :meth:`finish` raises it in the producer's thread. :meth:`cancel`
    (for the producer's own errors) drops the waiting jobs and waits for the running one to end,
    so whatever ``fn`` touches (a writer) is free again when it returns.
    """

    def __init__(self, fn: Callable, *, depth: int, name: str = "build-consumer"):
        self.fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._cancelled = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP or self._cancelled.is_set():
                return
            try:
                self.fn(job)
            except BaseException as exc:  # handed to the producer, which re-raises it
                self._error = exc
                return

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _put(self, item) -> None:
        while True:
            self._raise_error()
            if not self._thread.is_alive():
                return
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def submit(self, job) -> None:
        self._put(job)

    def finish(self) -> None:
        """Wait until every submitted job is done; raise the consumer's error, if any."""
        self._put(_STOP)
        self._thread.join()
        self._raise_error()

    def cancel(self) -> None:
        """Drop waiting jobs, let the running one end, stop the thread (never raises its error)."""
        self._cancelled.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._queue.put(_STOP, timeout=0.05)
            except queue.Full:
                pass
            self._thread.join(timeout=0.05)
        self._error = None
