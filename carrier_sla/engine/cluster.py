"""Where a period's batches and statistics run: in this process, or as tasks on Dask workers.

InProcess evaluates the batches one after the other (the next one read on a thread meanwhile) and
judges each measure's cells in one call. OnDask submits a task per batch (read, evaluate, write
its audit rows into the run's staging folder; partials, histograms, counts and rejects come
back), spreads the input files over workers when they are spilled, and judges a measure's cells
in tasks that each hold whole retail pools (every cell compared with the same retail values in
one task, so the pool is gathered and built once), the measure's value histograms sent to the
workers once.

`connect(workers, scheduler, batches)` chooses: `scheduler` (an address): an existing Dask
cluster; else `workers` processes of a distributed.LocalCluster started for the run and closed
after it (None: the machine's cores when the input is spread over partitions and spans more than
one of the default size, else 1), where 1 means in this process, without Dask.

A worker that dies while it holds a task (killed, out of memory) has the task run again on
another worker by Dask's scheduler (up to distributed.scheduler.allowed-failures times); past
that the run fails with WorkerLost (exit 5) and publishes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from carrier_sla.engine import verdicts
from carrier_sla.engine.period import (
    KILL_HOOK,
    BatchResult,
    Context,
    Progress,
    Source,
    arrow_pool_name,
    evaluate_batch,
    run_batch,
    use_arrow_pool,
)
from carrier_sla.errors import UsageError, WorkerLost
from carrier_sla.inputs import spill
from carrier_sla.plan.load import Measure, Plan
from carrier_sla.timings import Timings

# Judging tasks per worker and measure (whole pools, balanced by cells). Each task gathers its cells'
# values from the measure's histograms, which costs the same whatever its share of the cells: one task
# a worker judged the 8M real population's month in 1.40 s on 2 workers, four in 2.08 s (one process: 1.64 s).
TASKS_PER_WORKER = 1
# A measure of fewer cells is judged in the run's process: sending its histograms and cells to the
# workers and its verdicts back costs more than its tests (at 1M bench records, 12 CLECs: 325-851
# cells a measure, 0.5 s of statistics in one process against 7 s through the workers).
MIN_CELLS_ON_WORKERS = 2000


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class InProcess:
    """Everything in this process: the batches in order, the next one read on a thread meanwhile."""

    in_process = True
    workers = 1

    def batches(
        self, ctx: Context, source: Source, timings: Timings, progress: Progress = None
    ) -> Iterator[BatchResult]:
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partition-loader")
        try:
            pending = loader.submit(source.load, ctx.plan, 0, timings, ctx.as_of, progress)
            for k in range(source.count):
                loaded = pending.result()
                if k + 1 < source.count:
                    pending = loader.submit(source.load, ctx.plan, k + 1, timings, ctx.as_of)
                result = evaluate_batch(ctx, loaded, k, timings)
                del loaded
                yield result  # its stages timed on the run's own clock
        finally:
            loader.shutdown(wait=True, cancel_futures=True)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return spill.thread_map(fn, items)

    def judge_later(
        self, plan: Plan, measure: Measure, cells: pd.DataFrame, samples: Any, missed: Any
    ) -> Callable[[], pd.DataFrame]:
        """The cells' verdicts when asked for: judged then, in this process, one measure after another."""
        return lambda: verdicts.judge(plan, measure, cells, samples, missed)

    def close(self) -> None:
        pass


class OnDask:
    """Batches, spreading and statistics as tasks of a Dask distributed client."""

    in_process = False

    def __init__(self, client: Any):
        self.client = client
        self.addresses = sorted(client.scheduler_info().get("workers", {}))
        self.workers = max(1, len(self.addresses))
        self.judging = dict.fromkeys(self.addresses, 0)  # cells sent to each worker to judge so far

    def _gather(self, futures: list[Any]) -> list[Any]:
        from distributed import KilledWorker

        try:
            return list(self.client.gather(futures))
        except KilledWorker as exc:
            raise WorkerLost(f"a Dask worker died while running {exc.args[0] if exc.args else 'a task'}") from exc

    def batches(
        self, ctx: Context, source: Source, timings: Timings, progress: Progress = None
    ) -> Iterator[BatchResult]:
        """Each batch's result as it comes (its stages timed on its worker's clock, in result.timings)."""

        with self.client.as_current():  # as_completed finds the client there
            yield from self._batches(ctx, source)

    def _batches(self, ctx: Context, source: Source) -> Iterator[BatchResult]:
        from distributed import KilledWorker, as_completed

        [shared_ctx, shared_source] = self.client.scatter([ctx, source], broadcast=True, hash=False)
        run = uuid.uuid4().hex  # task keys of this run's own (a shared cluster serves other runs too)
        futures = [
            self.client.submit(run_batch, shared_ctx, shared_source, k, pure=False, key=f"batch-{k}-{run}")
            for k in range(source.count)
        ]
        received: set[str] = set()
        try:
            for future in as_completed(futures):
                if future.key in received:  # finished again after a worker holding it died: already merged
                    continue
                try:
                    result = future.result()
                except KilledWorker as exc:
                    raise WorkerLost(
                        f"a Dask worker died while evaluating a batch ({exc}); nothing was published"
                    ) from exc
                received.add(future.key)
                future.release()  # nothing to compute again if a worker dies later
                yield result
        finally:
            for future in futures:
                future.cancel()

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return self._gather(self.client.map(fn, items, pure=False))

    def judge_later(
        self, plan: Plan, measure: Measure, cells: pd.DataFrame, samples: Any, missed: Any
    ) -> Callable[[], pd.DataFrame]:
        """The cells' tasks submitted now (whole retail pools, balanced over the workers), their verdicts
        gathered, in the cells' order, when asked for; a measure of few cells is judged in this process
        when asked for (while the workers judge the measures submitted before it).

        The measure's value histograms go to every worker, and each task to a worker of its own (another
        if that one is gone): the largest to the worker with the fewest cells to judge so far. Left to
        itself, the scheduler sometimes gave both of a measure's tasks to one of 2 workers, which judged
        them one after the other (the real population's statistics on 2 workers 1.5-1.8 s instead of
        1.1-1.2 s, one run in four)."""
        groups = pool_groups(plan, measure, cells, self.workers * TASKS_PER_WORKER)
        if len(groups) <= 1 or len(cells) < MIN_CELLS_ON_WORKERS:
            return lambda: verdicts.judge(plan, measure, cells, samples, missed)
        indexes = None if samples is None else self.client.scatter(samples.indexes, broadcast=True, hash=False)
        futures = [
            self.client.submit(
                _judge_task,
                plan,
                measure,
                cells.iloc[rows],
                indexes,
                missed,
                pure=False,
                workers=self._judge_on(len(rows)),
                allow_other_workers=True,
            )
            for rows in sorted(groups, key=len, reverse=True)
        ]

        def verdicts_of() -> pd.DataFrame:
            judged = pd.concat(self._gather(futures))  # the groups' cells in any order: put back below
            return judged.loc[cells.index]

        return verdicts_of

    def _judge_on(self, cells: int) -> list[str] | None:
        """The worker with the fewest cells to judge so far (None: no worker known: the scheduler chooses)."""
        if not self.judging:
            return None
        address = min(self.judging, key=lambda a: (self.judging[a], a))
        self.judging[address] += cells
        return [address]

    def close(self) -> None:
        pass


def _judge_task(plan: Plan, measure: Measure, cells: pd.DataFrame, indexes: Any, missed: Any) -> pd.DataFrame:
    from carrier_sla.engine import aggregate

    samples = None if indexes is None else aggregate.CellSamples(plan, measure, indexes)
    return verdicts.judge(plan, measure, cells, samples, missed)


def pool_groups(plan: Plan, measure: Measure, cells: pd.DataFrame, tasks: int) -> list[np.ndarray]:
    """Row positions of `cells` in at most `tasks` groups, each holding whole retail pools (the
    cells compared with the same retail values: state, retail analog product, dimension values),
    balanced by number of cells (largest pools first, each to the smallest group)."""
    if cells.empty:
        return []
    analog = {p: plan.product(p).retail_analog for p in cells["product"].unique()}
    key = cells["state"].astype(str) + "\x1f" + cells["product"].map(analog).astype(str)
    for d in measure.dimensions:
        key = key + "\x1f" + cells[d.field].astype(object).where(cells[d.field].notna(), "*").astype(str)
    codes, uniques = pd.factorize(key.to_numpy(), sort=True)
    sizes = np.bincount(codes, minlength=len(uniques))
    bins = min(tasks, len(uniques))
    load = np.zeros(bins, dtype=np.int64)
    assign = np.zeros(len(uniques), dtype=np.int64)
    for pool in np.argsort(-sizes, kind="stable"):
        target = int(np.argmin(load))
        assign[pool] = target
        load[target] += sizes[pool]
    group_of = assign[codes]
    return [np.flatnonzero(group_of == g) for g in range(bins) if (group_of == g).any()]


# Fewer cores than this: the default runs in-process. On the 2-core machine `make bench` measured
# --workers 2 slower than in-process at 20M records (21.0 s against 19.7 s; 21.5 s against 20.1 s in
# another bench), at smaller sizes and on the 8M real population (11.0 s against 10.0 s):
# in-process, the loader and writer threads already keep both cores busy, and worker processes add
# their start, imports, task traffic and a third process (the client's merging and the scheduler) on
# the same two cores.
MIN_CORES_FOR_WORKERS = 4


def default_workers(batches: int, rows: int) -> int:
    """The machine's cores when it has at least MIN_CORES_FOR_WORKERS and the input is spread over
    partitions and spans more than one of the default size (spill.DEFAULT_PARTITION_ROWS), else 1:
    starting worker processes costs seconds, more than a smaller input takes in this process (and
    the test suite's small partitions stay in-process)."""
    n = cores()
    return n if n >= MIN_CORES_FOR_WORKERS and batches > 1 and rows > spill.DEFAULT_PARTITION_ROWS else 1


@contextlib.contextmanager
def connect(workers: int | None, scheduler: str | None, batches: int, rows: int = 0) -> Iterator[InProcess | OnDask]:
    """The executor of a run over `batches` batches of `rows` input rows (see the module's
    docstring); a LocalCluster started here is closed on the way out, whatever happens."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: at least 1")
    workers = workers or default_workers(batches, rows)
    if scheduler is None and workers == 1:
        yield InProcess()
        return
    try:
        import dask
        from distributed import Client, LocalCluster, fire_and_forget
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UsageError("--workers above 1 and --scheduler need dask[distributed] installed") from exc
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(Client(scheduler, set_as_default=False))
        else:
            # Dask's nannies set MALLOC_TRIM_THRESHOLD_ in their workers' environment; glibc then
            # stops raising its mmap threshold, so every array above 128 KiB is mapped afresh and
            # unmapped when freed: at 20M records the workers took 12 million page faults (29 s of
            # system time) against 1.1 million in one process. The workers keep glibc's defaults;
            # each gives its free heap back every few batches itself (period.release_free_memory).
            stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}))
            _fork_workers(stack)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    processes=True,
                    threads_per_worker=1,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                    # the run's own switches as they are now, set or cleared (a forked worker
                    # has the environment of the fork server's start, not the run's)
                    env={name: os.environ.get(name, "") for name in FORWARDED_ENVIRONMENT},
                )
            )
            client = stack.enter_context(Client(cluster, set_as_default=False))
            # the run's memory pool on every worker, and on any the nannies start again (period.arrow_pool_name);
            # a cluster the run did not start (--scheduler) keeps its workers' own
            client.register_worker_callbacks(setup=functools.partial(use_arrow_pool, arrow_pool_name()))
        for address in client.scheduler_info()["workers"]:  # imports on the workers while this process works
            fire_and_forget(client.submit(_warm_up, workers=[address], allow_other_workers=False, pure=False))
        yield OnDask(client)


# Worker processes are forked from a fork server (multiprocessing's forkserver start method) that
# imported Dask, numpy, pandas, pyarrow and the engine's loop once, instead of each worker starting a
# fresh interpreter that imports them (about 1.2 s of CPU a worker). The server starts as a run with
# --workers above 1 starts (pipeline.run), else with the process's first cluster, and lives as long
# as the process. On 2 cores, --workers 2: 20M bench records
# 23.0-27.1 s became 22.5-23.4 s, the 8M real population 13.5-13.9 s became 12.7-13.0 s (two runs each).
# The statistics (carrier_sla.engine.verdicts, with scipy.special) add 0.1 s to the server's start
# and spare each worker importing them with its first judging task.
FORK_SERVER_PRELOAD = [
    "distributed",
    "numpy",
    "pandas",
    "pyarrow",
    "carrier_sla.engine.period",
    "carrier_sla.engine.verdicts",
]
# Environment variables a worker reads while it runs, forwarded from the run's process.
FORWARDED_ENVIRONMENT = (KILL_HOOK,)


def start_fork_server() -> None:
    """Start the fork server now, so that its imports run while the run checks the store and lists
    its inputs (a cluster started later forks its workers from it; a server already running is
    left as it is). Its environment is the run's as it is now: see FORWARDED_ENVIRONMENT."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(FORK_SERVER_PRELOAD)
    forkserver.ensure_running()


def _fork_workers(stack: contextlib.ExitStack) -> None:
    """Start this cluster's workers from the fork server (see FORK_SERVER_PRELOAD)."""
    import dask
    from distributed.utils import get_mp_context

    stack.enter_context(dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}))
    # Dask sets its own preload list the first time it is asked for the context; ours (a superset)
    # replaces it, before the server's first start
    get_mp_context()
    start_fork_server()


def _warm_up() -> None:
    """Import what the spreading and batch tasks use (pandas, pyarrow, the engine's loop), so that
    the first tasks do not pay for it: for the workers of a cluster the run did not start
    (--scheduler); those it starts are forked with these imports done (FORK_SERVER_PRELOAD). Not
    the statistics: a worker imports them with its first judging task, and most runs judge every
    measure in the run's process (measures of fewer than MIN_CELLS_ON_WORKERS cells)."""
    import carrier_sla.engine.period  # noqa: F401  the loop, through the spreading and batch tasks
