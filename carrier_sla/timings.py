"""Seconds spent per stage of a run, shared by the stages and the bench."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_TIMINGS_LOCK = threading.Lock()


class Timings(dict):
    """Seconds spent per stage (read_and_check, finalize, derive, evaluate, aggregate, statistics, audit, write).

    Stages that run on two threads at once add up both threads' time, so the sum can exceed the wall time.
    Two are wall-clock phases of the run's own thread instead: `spill` (spreading the input over
    partitions) and `batches` (every batch read, evaluated and audited, on workers or threads).
    """

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        tick = time.perf_counter()
        try:
            yield
        finally:
            with _TIMINGS_LOCK:
                self[name] = self.get(name, 0.0) + time.perf_counter() - tick
