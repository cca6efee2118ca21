"""One period computed over a sequence of batches of records: the one loop of every run and what-if.

A batch is the whole input (WholeInput: one batch, read whole) or one partition of the input
spread on disk first (Partitions, carrier_sla.inputs.spill). Per batch, in order: read and check,
evaluate every measure, keep its partial aggregates and value histogram, hand its audit rows to
the sink. Then, once every batch is in: the counts and rejects summed (the reject rate checked),
the partials merged in batch order, the cells judged, the results in the results table's order.

Batches run where an executor runs them (carrier_sla.engine.cluster): in this process, or as tasks
on Dask workers, which then write the audit rows themselves and send back only what is small (the
partials, histograms, counts and rejects, and what the sink returns). The partials are merged in
batch order whatever the order in which batches finish, so the results do not depend on the
number of workers.

The outputs are those of today's whole and partitioned runs: the same results (partial sums
merged by Chan's update, so means and deviations of a partitioned run can differ from a whole
run's in the last bits), rejects, counts and audit rows; a measure's records/ table is one file
per batch, and its rate base's rows go with the batch that holds the lines (a whole input) or
into one more file (part number = the number of batches) when the lines are read apart.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla.engine import aggregate, audit, evaluate, holiday_years
from carrier_sla.engine.load import Loaded, check_reject_rate, load, read_whole, records_in_month
from carrier_sla.engine.period_results import (
    MeasurePart,
    evaluate_part,
    finish_measure,
    ordered_results,
    prepare_measure,
)
from carrier_sla.engine.runlog import RunLog
from carrier_sla.inputs import ingest, merge, spill
from carrier_sla.plan.load import Plan
from carrier_sla.timings import Timings

TRIM_EVERY = 4  # partitions
# The evaluating thread, the partition loader and the Parquet writers hand the interpreter lock
# back and forth; a thread coming back from numpy or Arrow (which release it) waits up to the
# switch interval for it. At 1 ms instead of Python's 5 ms a 20M-record run took 3-7% less
# wall time (six paired runs).
SWITCH_INTERVAL_S = 0.001
# A test hook: "PART:MARKER" kills the process evaluating batch PART (SIGKILL, as the kernel's OOM
# killer would), once if MARKER names a file to create (the retry then succeeds), every time if
# MARKER is "always". Read by the batch task, so it reaches Dask worker processes too.
KILL_HOOK = "CARRIER_SLA_TEST_KILL_BATCH"

Sink = Callable[[str, pa.Table, int], Any]
"""sink(measure_id, table, part): takes one measure's audit rows of one batch (part = the batch's
number); what it returns (small: a count, a path and digest) is handed back in Period.sunk."""


# ------------------------------------------------------------------------ the batches


@dataclass(frozen=True)
class WholeInput:
    """The whole input as one batch: every file read whole, the lines among them."""

    found: dict[str, list[ingest.InputFile]]
    count: int = 1

    def prepare(self, plan: Plan, timings: Timings, log: RunLog, mapper: Mapper) -> WholeInput:
        return self

    def lines(self, plan: Plan, timings: Timings, as_of: dt.date | None) -> Loaded | None:
        return None  # read with the batch

    def load(self, plan: Plan, k: int, timings: Timings, as_of: dt.date | None, progress: Progress = None) -> Loaded:
        return load(plan, self.found, read_whole, timings, as_of, progress)

    def done(self, k: int) -> None:
        pass

    def remove(self) -> None:
        pass


@dataclass(frozen=True)
class Partitions:
    """The input spread over `count` partitions in `folder` (prepare spreads it); the lines apart."""

    found: dict[str, list[ingest.InputFile]]
    count: int
    folder: Path
    spilled: spill.Spilled | None = None

    def prepare(self, plan: Plan, timings: Timings, log: RunLog, mapper: Mapper) -> Partitions:
        tick = time.perf_counter()
        with timings.stage("spill"):
            spilled = spill.spill(plan, self.found, self.count, self.folder, mapper)
        seconds = time.perf_counter() - tick
        log.event(
            "spill",
            f"{sum(len(f) for f in spilled.files.values())} files spread over {self.count} partitions "
            f"({seconds:.1f} s)",
            partitions=self.count,
            seconds=round(seconds, 3),
        )
        return Partitions(self.found, self.count, self.folder, spilled)

    def lines(self, plan: Plan, timings: Timings, as_of: dt.date | None) -> Loaded | None:
        whole = {t: f for t, f in self.found.items() if t in spill.WHOLE}
        return load(plan, whole, read_whole, timings, as_of) if whole else None

    def load(self, plan: Plan, k: int, timings: Timings, as_of: dt.date | None, progress: Progress = None) -> Loaded:
        assert self.spilled is not None, "prepare() spreads the input first"
        spilled = self.spilled

        def read(rtype: str, index: int, source: ingest.InputFile) -> tuple[pa.Table, np.ndarray, np.ndarray]:
            return spilled.read(rtype, index, k)

        return load(plan, spilled.files, read, timings, as_of, progress)

    def done(self, k: int) -> None:
        """The partition's files are removed once the run holds its result (not when read: a task
        run again after its worker died, before or after it finished, reads them again), so the
        folder shrinks as the run goes."""
        if self.spilled is not None:
            self.spilled.remove_part(k)

    def remove(self) -> None:
        shutil_rmtree(self.folder)


def shutil_rmtree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


class Source(Protocol):
    @property
    def count(self) -> int: ...

    def prepare(self, plan: Plan, timings: Timings, log: RunLog, mapper: Mapper) -> Source: ...
    def lines(self, plan: Plan, timings: Timings, as_of: dt.date | None) -> Loaded | None: ...
    def load(
        self, plan: Plan, k: int, timings: Timings, as_of: dt.date | None, progress: Progress = None
    ) -> Loaded: ...
    def done(self, k: int) -> None: ...
    def remove(self) -> None: ...


def source_for(found: dict[str, list[ingest.InputFile]], parts: int, folder: Path) -> WholeInput | Partitions:
    """The input as batches: one (read whole) or `parts` partitions spread into `folder`."""
    return WholeInput(found) if parts <= 1 else Partitions(found, parts, folder)


Mapper = Callable[[Callable[[Any], Any], list[Any]], list[Any]]
Progress = Callable[[int, int], None] | None  # progress(files done, files) while a batch is read


# ------------------------------------------------------------------------ one batch


@dataclass(frozen=True)
class Context:
    """What every batch needs besides its records (sent to a worker once, not per batch)."""

    plan: Plan
    period: str
    as_of: dt.date | None
    sink: Sink
    dim_fields: dict[str, pa.DataType]  # the plan's dimension fields and their Arrow types
    files_by_type: dict[str, list[str]]


@dataclass
class BatchResult:
    """What a batch sends back: small things only (the audit rows went to the sink)."""

    k: int
    parts: dict[str, MeasurePart]  # per measure: partial aggregates, value histogram, records
    loaded: Loaded  # rejects, counts, files, in_month; records of the WHOLE types only (the lines)
    missing: list[holiday_years.MissingYear]
    evaluated: int  # audit rows
    rows: int  # input rows read
    seconds: float
    sunk: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def evaluate_batch(ctx: Context, loaded: Loaded, k: int, timings: Timings) -> BatchResult:
    """Evaluate every measure of the plan over one batch's records, handing their audit rows to
    the sink; when the batch holds the lines, a rate measure's base rows go with its own."""
    tick = time.perf_counter()
    _kill_hook(k)
    plan, period = ctx.plan, ctx.period
    dim_fields = ctx.dim_fields
    shared: dict = {}  # the period's rows, once per (type, period_by, month)
    with timings.stage("evaluate"):
        missing = holiday_years.missing_in_period(plan, period, loaded.records, shared)
    last_use = {evaluate.period_key(m, period): i for i, m in enumerate(plan.measures)}
    parts: dict[str, MeasurePart] = {}
    sunk, evaluated = [], 0
    for i, measure in enumerate(plan.measures):
        part, table = evaluate_part(
            plan, measure, period, loaded.records, shared, dim_fields, ctx.files_by_type, timings
        )
        if measure.rate_base is not None and measure.rate_base.records in loaded.records:
            with timings.stage("audit"):
                table = pa.concat_tables([table, base_table(ctx, measure, loaded.records)])
        for key in [key for key, last in last_use.items() if last == i]:
            shared.pop(key, None)  # no later measure needs these rows
        parts[measure.id] = part
        evaluated += table.num_rows
        sunk.append(ctx.sink(measure.id, table, k))
    del shared
    kept = {t: r for t, r in loaded.records.items() if t in spill.WHOLE}
    in_month = records_in_month(plan, period, loaded.records)
    summary = Loaded(kept, loaded.rejects, loaded.counts, loaded.files, loaded.not_yet_known, in_month)
    rows = sum(c.read for c in loaded.counts if c.record_type not in kept)
    return BatchResult(k, parts, summary, missing, evaluated, rows, time.perf_counter() - tick, sunk)


def base_table(ctx: Context, measure: Any, lines: dict) -> pa.Table:
    """The audit rows of a rate measure's base (lines in service of its data month)."""
    assert measure.rate_base is not None
    in_period = evaluate.lines_in_period(lines, measure, ctx.period)
    dim_fields = ctx.dim_fields
    rows = audit.base_rows(in_period, dim_fields, ctx.files_by_type[measure.rate_base.records], measure.rate_base.field)
    return audit.unify_record_schema(rows, dim_fields)


_BATCHES_RUN = 0  # batches this process ran as tasks (a Dask worker): it trims its heap every TRIM_EVERY


def run_batch(ctx: Context, source: Source, k: int) -> BatchResult:
    """A batch as one task (on a Dask worker): read, evaluate, write its audit rows."""
    timings = Timings()
    tick = time.perf_counter()
    loaded = source.load(ctx.plan, k, timings, ctx.as_of)
    result = evaluate_batch(ctx, loaded, k, timings)
    del loaded  # the partition's files stay: the run removes them once it holds the result
    global _BATCHES_RUN
    _BATCHES_RUN += 1
    if _BATCHES_RUN % TRIM_EVERY == 0:
        release_free_memory()
    result.seconds = time.perf_counter() - tick
    result.timings = dict(timings)
    return result


def _kill_hook(k: int) -> None:
    hook = os.environ.get(KILL_HOOK)
    if not hook:
        return
    part, _, marker = hook.partition(":")
    if int(part) != k:
        return
    if marker != "always":
        try:
            Path(marker).touch(exist_ok=False)
        except FileExistsError:
            return  # killed once already: this is the retry
    os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------ the period


class Executor(Protocol):
    """Where batches and judging run (carrier_sla.engine.cluster)."""

    in_process: bool

    def batches(
        self, ctx: Context, source: Source, timings: Timings, progress: Progress = None
    ) -> Iterator[BatchResult]: ...
    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]: ...
    def judge_later(
        self, plan: Plan, measure: Any, cells: pd.DataFrame, samples: Any, missed: Any
    ) -> Callable[[], pd.DataFrame]: ...


@dataclass
class Period:
    results: pd.DataFrame
    loaded: Loaded  # counts, rejects, files of the whole input; records of the lines
    sunk: list[Any]  # what the sink returned, batch by batch, measure by measure (rate bases last)


def compute(
    plan: Plan,
    period: str,
    source: Source,
    sink: Sink,
    executor: Executor,
    *,
    max_reject_rate: float,
    timings: Timings,
    as_of: dt.date | None = None,
    missed: frozenset[tuple] | set[tuple] = frozenset(),
    log: RunLog | None = None,
    settle: Callable[[], None] | None = None,
) -> Period:
    """Results of `period` over the batches of `source`, and what was loaded.

    Raises RejectRateExceeded (with what was loaded) once every batch is in, before anything is
    judged; then HolidaysNotListed for years of holidays the records need and the plan lacks.
    settle() is called after each batch (the caller bounds the tables waiting to be written)."""
    log = log or RunLog()
    with ExitStack() as stack:
        if source.count > 1 and executor.in_process:
            previous = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            stack.callback(sys.setswitchinterval, previous)
        stack.callback(source.remove)
        # a batch's files are removed on a thread of their own: freeing the pages of the files takes
        # the kernel 5-10 ms a file, which the merging loop need not wait for (shut down, waiting
        # for the removals, before source.remove, which also removes what a failed removal left)
        remover = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-remover"))
        source = source.prepare(plan, timings, log, executor.map)
        lines = source.lines(plan, timings, as_of)
        if lines is not None:
            lines.in_month = records_in_month(plan, period, lines.records)
        ctx = Context(
            plan,
            period,
            as_of,
            sink,
            aggregate.dimension_fields(plan),
            {t: [str(f.path) for f in files] for t, files in source_found(source).items()},
        )
        kept: dict[str, MeasurePart] = {}  # one running part per measure, merged in batch order
        histograms: dict[str, list[aggregate.SampleIndex]] = {m.id: [] for m in plan.measures}
        loaded_parts: list[Loaded] = [] if lines is None else [lines]
        missing: list[holiday_years.MissingYear] = []
        sunk: list[Any] = []
        waiting: dict[int, BatchResult] = {}
        evaluated, merged = 0, 0
        files_read = None
        if source.count == 1:  # the bar counts the files read, then the measures
            files_read = lambda done, of: log.progress(done, of, what="files read")  # noqa: E731
        batches_started = time.perf_counter()
        for result in executor.batches(ctx, source, timings, files_read):
            for stage, seconds in result.timings.items():  # a worker's own clock
                timings[stage] = timings.get(stage, 0.0) + seconds
            evaluated += result.evaluated
            remover.submit(source.done, result.k)  # only now: a worker lost before its result came would be asked again
            if source.count > 1:
                log.event(
                    "partition",
                    f"partition {result.k + 1}/{source.count}: {result.rows:,} rows ({result.seconds:.1f} s)",
                    partition=result.k + 1,
                    rows=result.rows,
                    seconds=round(result.seconds, 3),
                )
            waiting[result.k] = result
            while merged in waiting:  # in batch order, whatever the order they finish in
                done = waiting.pop(merged)
                _merge_batch(done, kept, histograms, timings)
                loaded_parts.append(done.loaded)
                missing = holiday_years.combine(missing + done.missing)
                sunk += done.sunk
                merged += 1
            if source.count > 1:
                log.progress(merged, source.count, evaluated, what="partitions")
            if settle is not None:
                settle()
            if executor.in_process and merged % TRIM_EVERY == 0:
                release_free_memory()
        # the wall time of the batches (with the spill, the work that runs on workers): the rest
        # of a run's wall time is work outside the workers (listing, merging, judging, remedies,
        # publication), which `make bench` reports
        timings["batches"] = timings.get("batches", 0.0) + time.perf_counter() - batches_started
    summary = _summary(source_found(source), loaded_parts, lines)
    check_reject_rate(summary, max_reject_rate)
    _log_read(log, summary, timings)
    holiday_years.require(plan, missing)  # after the reject rate, before any verdict
    # every measure's cells handed to the executor first (on Dask, their tasks all in flight at once,
    # small measures judged here meanwhile), then collected in the plan's order
    pending = []
    for measure in plan.measures:
        tick = time.perf_counter()
        records = kept[measure.id].records
        prepared = prepare_measure(
            plan,
            measure,
            period,
            [kept.pop(measure.id)],
            summary.records,
            ctx.dim_fields,
            ctx.files_by_type,
            timings,
            missed,
            histograms.pop(measure.id),
            base_rows=lines is not None,
        )
        if prepared.base_table is not None:
            sunk.append(sink(measure.id, prepared.base_table, source.count))
        verdicts_of = None
        if prepared.cells is not None:
            with timings.stage("statistics"):
                verdicts_of = executor.judge_later(plan, measure, prepared.cells, prepared.samples, prepared.missed)
        pending.append((measure, records, verdicts_of, time.perf_counter() - tick))
    frames = []
    for judged_count, (measure, records, verdicts_of, seconds) in enumerate(pending, start=1):
        tick = time.perf_counter()
        cells = 0
        if verdicts_of is not None:
            with timings.stage("statistics"):
                judged = verdicts_of()
            frames.append(finish_measure(plan, measure, period, judged))
            cells = len(judged)
        if source.count > 1:  # statistics come last: the bar says so
            log.progress(judged_count, len(plan.measures), what="measures judged (statistics)")
        else:
            log.progress(judged_count, len(plan.measures), evaluated)
        seconds += time.perf_counter() - tick
        log.event(
            "measure",
            f"{measure.id}: {records:,} records, {cells:,} cells judged in {seconds:.2f} s",
            measure=measure.id,
            records=records,
            cells=cells,
            seconds=round(seconds, 3),
        )
    return Period(ordered_results(plan, frames, ctx.dim_fields), summary, sunk)


def source_found(source: Source) -> dict[str, list[ingest.InputFile]]:
    return source.found  # type: ignore[attr-defined, no-any-return]


def _merge_batch(
    result: BatchResult,
    kept: dict[str, MeasurePart],
    histograms: dict[str, list[aggregate.SampleIndex]],
    timings: Timings,
) -> None:
    """Fold a batch's parts into the running parts (Chan's update), its histograms kept apart."""
    for measure_id, part in result.parts.items():
        if part.samples is not None:
            histograms[measure_id].append(part.samples)
            part.samples = None
        before = kept.get(measure_id)
        if before is not None:
            with timings.stage("aggregate"):
                part.partial = aggregate.merge([before.partial, part.partial])
                part.records += before.records
        kept[measure_id] = part


def _log_read(log: RunLog, loaded: Loaded, timings: Timings) -> None:
    read = sum(c.read for c in loaded.counts)
    rejected = sum(c.rejected for c in loaded.counts)
    load_seconds = sum(timings.get(k, 0.0) for k in ("spill", "read_and_check", "finalize", "derive"))
    log.event(
        "read",
        f"{read:,} rows from {len(loaded.files)} files, {rejected:,} rejected ({load_seconds:.1f} s)",
        rows=read,
        rejected=rejected,
        files=len(loaded.files),
        seconds=round(load_seconds, 3),
    )


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc malloc_trim). Without it, the
    holes that each partition's arrays leave in the heap keep the peak growing with the number
    of partitions; done every TRIM_EVERY partitions in a run's own process and on each worker,
    as memory given back costs page faults when it is used again (at 20M records on 2 workers,
    trimming after every partition cost 0.8 million more page faults and 2.2 s more system time).
    Nothing to do where the C library has no malloc_trim."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


# pyarrow's memory pool while a run computes, in the run's process and in every worker of a cluster the
# run starts: jemalloc. pyarrow's Linux wheels default to mimalloc, which gives freed pages back to the
# system soon and takes them again with page faults: a fresh Dask worker spread its first 2.5M-row input
# file in 2.4 s against 1.3 s for the next ones (jemalloc: 1.3 s from the first), and reading a Parquet
# file took 1.1 s the first time in a process and 0.6 s the second (jemalloc: 0.45 s both). Paired runs
# on 2 cores: 20M bench records 19.5 -> 18.8-19.5 s in one process, 23.0 -> 21.3-22.6 s on 2 workers;
# the 8M real population 10.6-12.1 -> 10.3-10.5 s and 11.9-12.6 -> 11.6-12.0 s; the run's peak RSS
# 5-15% lower. ARROW_DEFAULT_MEMORY_POOL, when set in the run's process, is the operator's choice: its
# pool is used there and on the workers. A pyarrow built without jemalloc keeps its default.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
_ARROW_POOLS = {"jemalloc": "jemalloc_memory_pool", "mimalloc": "mimalloc_memory_pool", "system": "system_memory_pool"}


def arrow_pool_name() -> str | None:
    """The memory pool a run's arrays come from: the one ARROW_DEFAULT_MEMORY_POOL names, else jemalloc
    (None: this pyarrow has no jemalloc, and keeps its default)."""
    chosen = os.environ.get(ARROW_POOL_VARIABLE)
    if chosen:
        return chosen
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        return None
    return "jemalloc"


def use_arrow_pool(name: str | None) -> None:
    """Make the pool named pyarrow's default memory pool in this process (in a worker of a cluster the
    run started, for as long as it lives: the run's choice, made in the run's process). A name pyarrow
    does not know, or a pool it was built without, leaves the default as it is."""
    make = getattr(pa, _ARROW_POOLS.get(name or "", ""), None)
    if make is None:
        return
    with suppress(NotImplementedError):  # a pyarrow built without that pool
        pa.set_memory_pool(make())


@contextmanager
def run_pool() -> Iterator[None]:
    """arrow_pool_name()'s pool as pyarrow's default while a run computes in this process, the pool
    before it restored after (a caller's own arrays keep theirs)."""
    previous = pa.default_memory_pool()
    use_arrow_pool(arrow_pool_name())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def _summary(found: dict[str, list[ingest.InputFile]], parts: list[Loaded], lines: Loaded | None) -> Loaded:
    """Counts per file summed over the batches (in file order), rejects in read order; the
    records of the lines (read whole, apart or with the one batch)."""
    totals: dict[str, merge.FileCount] = {}
    for loaded in parts:
        for c in loaded.counts:
            total = totals.setdefault(c.path, merge.FileCount(c.record_type, c.path, 0))
            total.read += c.read
            total.accepted += c.accepted
            total.rejected += c.rejected
    files = [f for t in found for f in found[t]]
    counts = [totals[str(f.path)] for f in files if str(f.path) in totals]
    not_yet_known: dict[str, int] = {}
    in_month: dict[str, int] = {}
    records: dict = {}
    for loaded in parts:
        for t, n in loaded.not_yet_known.items():
            not_yet_known[t] = not_yet_known.get(t, 0) + n
        for t, n in loaded.in_month.items():
            in_month[t] = in_month.get(t, 0) + n
        records.update(loaded.records)  # the lines: in one of them only
    tables = [p.rejects for p in parts if p.rejects.num_columns]
    rejects = pa.concat_tables(tables) if tables else pa.table({})
    if rejects.num_rows and len(tables) > 1:  # files in read order (types in order, then files): by file, then row
        rank = pc.index_in(rejects.column("source_file"), value_set=pa.array([str(f.path) for f in files]))
        rejects = rejects.append_column("__rank", rank).sort_by([("__rank", "ascending"), ("input_row", "ascending")])
        rejects = rejects.drop_columns(["__rank"])
    elif tables:
        rejects = tables[0]
    return Loaded(records, rejects, counts, files, not_yet_known, in_month)
