"""Runs on Dask workers (carrier_sla.engine.cluster): the same tables as a run in one process, and
a worker killed mid-run never leaves a partial period (its task retried, or the run failed with
exit 5 and the previous view left as it was)."""

from __future__ import annotations

import json

import dask
import numpy as np
import pandas as pd
import pytest

from carrier_sla.cli.main import main
from carrier_sla.engine import cluster
from carrier_sla.engine.period import KILL_HOOK
from carrier_sla.plan.load import load_plan
from carrier_sla.store import layout as store
from carrier_sla.store.view import read_table
from carrier_sla.synthetic.generate import generate
from tests.conftest import write_inputs

PERIOD = "2026-10"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two months of generated input (malformed rows, duplicate ids; 20 CLECs of Zipf sizes: small-sample
    cells, permutation tests among them)."""
    folder = tmp_path_factory.mktemp("cluster") / "data"
    generate(folder, PERIOD, periods=2, scale=2500, seed=11, fmt="parquet", files_per_type=2, clecs=20, zipf=1.3)
    return folder


def _run(data, out, *options: str) -> int:
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", PERIOD, "--out", str(out), "--quiet"]
    return main([*args, "--max-reject-rate", "0.05", "--partition-rows", "1500", *options])


def _tables(out) -> dict[str, pd.DataFrame]:
    """Every published table of the period, as content (records in a canonical row order)."""
    tables = {}
    for name in store.ALL_TABLES:
        if name == "statements" or not (out / name / f"period={PERIOD}").exists():
            continue
        frame = read_table(out, name, PERIOD).to_pandas()
        frame = frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
        if name == "records":
            frame = frame.sort_values(["measure_id", "record_type", "source_file", "source_row"], kind="stable")
        tables[name] = frame.reset_index(drop=True)
    statements = out / "statements" / f"period={PERIOD}"
    tables["statements"] = pd.DataFrame(
        {
            "file": [p.name for p in sorted(statements.iterdir())],
            "text": [p.read_text() for p in sorted(statements.iterdir())],
        }
    )
    return tables


def _assert_same_tables(a, b) -> None:
    ta, tb = _tables(a), _tables(b)
    assert sorted(ta) == sorted(tb) and {"results", "records", "rejects", "remedies"} <= set(ta)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)


def _manifest(out) -> dict:
    runs = sorted((out / "runs").glob("*/manifest.json"), key=lambda p: json.loads(p.read_text())["started_at"])
    return json.loads(runs[-1].read_text())


@pytest.fixture(scope="module")
def one_worker(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "store"
    assert _run(data, out, "--workers", "1") == 0
    return out


def test_two_worker_processes_give_the_tables_of_one_process(data, one_worker, tmp_path, monkeypatch):
    """--workers 2 (a LocalCluster of two processes: partitions, spreading, judging as tasks) publishes
    every table with the content of --workers 1, exactly (floats too: partials merged in partition
    order, seeds per cell)."""
    out = tmp_path / "two"
    monkeypatch.setattr(cluster, "MIN_CELLS_ON_WORKERS", 1)  # every measure's cells judged on the workers
    assert _run(data, out, "--workers", "2") == 0
    parts = _manifest(out)["partitions"]
    assert parts == _manifest(one_worker)["partitions"] > 3
    results = read_table(out, "results", PERIOD).to_pandas()
    assert results["method"].str.startswith("permutation").sum() > 50  # judged in pool tasks on the workers
    _assert_same_tables(one_worker, out)
    assert _manifest(out)["inputs"] == _manifest(one_worker)["inputs"]
    events = [json.loads(line) for line in (out / "runs" / _manifest(out)["run_id"] / "log.jsonl").open()]
    assert [e["workers"] for e in events if e["stage"] == "workers"] == [2]
    assert sorted(e["partition"] for e in events if e["stage"] == "partition") == list(range(1, parts + 1))
    # the phases on the workers, timed on the run's clock: what is left of the run is the work outside them
    timings, manifest = _manifest(out)["timings_seconds"], _manifest(out)
    pipeline = (pd.Timestamp(manifest["finished_at"]) - pd.Timestamp(manifest["started_at"])).total_seconds()
    assert timings["spill"] > 0 and timings["batches"] > 0 and timings["spill"] + timings["batches"] < pipeline
    written = [o for o in _manifest(out)["outputs"] if o["table"].startswith("records/")]
    assert len(written) >= parts and all(o["sha256"] and o["bytes"] > 0 for o in written)
    staging = out / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_a_worker_killed_once_has_its_partition_retried_and_the_tables_are_the_same(
    data, one_worker, tmp_path, monkeypatch
):
    """The worker evaluating partition 2 is SIGKILLed (once): Dask runs the task again on another
    worker, and the run publishes the tables of an undisturbed run."""
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_HOOK, f"2:{marker}")
    out = tmp_path / "retried"
    assert _run(data, out, "--workers", "2") == 0
    assert marker.exists()  # a worker was killed
    _assert_same_tables(one_worker, out)


def test_a_worker_killed_every_time_fails_the_run_with_exit_5_and_publishes_nothing(
    data, tmp_path, monkeypatch, capsys
):
    """Partition 1 kills every worker that takes it: past the scheduler's allowed failures the run
    exits 5, its manifest says failed, and the view published before is unchanged."""
    out = tmp_path / "store"
    assert _run(data, out, "--workers", "1", "--max-reject-rate", "0.05") == 0
    before = _tables(out)
    current = (out / "current").resolve()
    monkeypatch.setenv(KILL_HOOK, "1:always")
    capsys.readouterr()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        assert _run(data, out, "--workers", "2") == 5
    assert "worker died" in capsys.readouterr().err
    manifest = _manifest(out)
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 5)
    assert (out / "current").resolve() == current
    after = _tables(out)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[name])
    staging = out / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_a_run_on_an_existing_cluster_gives_the_same_tables(data, one_worker, tmp_path):
    """--scheduler ADDRESS: the run uses a Dask cluster it did not start (and leaves it running)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as existing:
        out = tmp_path / "remote"
        assert _run(data, out, "--scheduler", existing.scheduler_address) == 0
        with Client(existing, set_as_default=False) as client:
            assert len(client.scheduler_info()["workers"]) == 2  # still there for its other users
    _assert_same_tables(one_worker, out)


def test_cells_are_grouped_by_retail_pool_into_balanced_tasks():
    """Every cell compared with the same retail values lands in one task; groups balance by cells."""
    plan = load_plan("example-qc")
    measure = next(m for m in plan.measures if m.id == "MR-6")
    dims = [d.field for d in measure.dimensions]
    assert dims == ["dispatch"]
    cells = pd.DataFrame(
        {
            "state": ["QC", "QC", "QC", "ON", "QC", "QC"],
            "product": ["resale_pots", "resale_pots", "ubl_2w", "resale_pots", "resale_pots", "resale_pots"],
            "dispatch": [True, True, True, True, False, None],
            "carrier_id": ["A", "B", "A", "A", "A", "A"],
        }
    )
    analog = {p: plan.product(p).retail_analog for p in cells["product"].unique()}
    groups = cluster.pool_groups(plan, measure, cells, tasks=3)
    assert sorted(np.concatenate(groups).tolist()) == list(range(6))
    assert len(groups) == 3
    key = list(zip(cells["state"], cells["product"].map(analog), cells["dispatch"].astype(str), strict=True))
    where = {i: g for g, rows in enumerate(groups) for i in rows}
    for i in range(6):
        for j in range(6):
            if key[i] == key[j]:
                assert where[i] == where[j]
    assert analog["ubl_2w"] == analog["resale_pots"] == "pots"  # one retail pool: cells 0, 1, 2
    assert sorted(len(g) for g in groups) == [1, 2, 3]  # pools of 3, 1, 1, 1 cells in three tasks
    assert cluster.pool_groups(plan, measure, cells.iloc[:0], tasks=3) == []


def test_workers_default_to_the_cores_only_for_input_larger_than_a_default_partition_from_4_cores(monkeypatch):
    monkeypatch.setattr(cluster, "cores", lambda: 8)
    assert cluster.default_workers(1, 10_000_000) == 1  # one batch: nothing to spread
    assert cluster.default_workers(40, 1000) == 1  # small partitions of a small input (the tests)
    assert cluster.default_workers(4, 1_000_000) == 8
    monkeypatch.setattr(cluster, "cores", lambda: 2)  # measured slower with workers: in-process
    assert cluster.default_workers(4, 1_000_000) == 1


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_worker_count_is_a_usage_error(tmp_path, capsys, value):
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    assert _run(data, tmp_path / "out", "--workers", value) == 2
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_exact_tests_use_one_thread_on_a_dask_worker():
    """A Dask worker has one thread (its share of the machine): the exact tests it runs use that one, not a
    thread per core; in the run's own process they keep one per core."""
    from distributed import Client, LocalCluster

    from carrier_sla.engine import verdicts

    assert verdicts._workers(64) == min(64, cluster.cores())
    local = LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None)
    with local, Client(local, set_as_default=False) as client:
        assert client.submit(verdicts._workers, 64, pure=False).result() == 1
    assert not verdicts._on_dask_worker()


def test_worker_processes_keep_the_c_librarys_own_heap_settings(monkeypatch):
    """Dask's nannies would set MALLOC_TRIM_THRESHOLD_ in their workers, which makes glibc map every array
    above 128 KiB afresh (ten times the page faults of one process at 20M records): a run's LocalCluster
    leaves it unset, and Dask's other settings for workers (one OpenMP thread) in place."""
    import os

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with cluster.connect(2, None, batches=2) as executor:
        assert isinstance(executor, cluster.OnDask)
        env = executor.client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")))
    assert sorted(env.values()) == [(None, "1"), (None, "1")]


def _worker_facts() -> tuple[str, str | None]:
    import os

    import psutil

    return " ".join(psutil.Process(os.getppid()).cmdline()), os.environ.get(KILL_HOOK)


def test_workers_fork_from_the_fork_server_and_see_the_run_s_switches_as_they_are_now(monkeypatch):
    """Workers are forked from multiprocessing's fork server (imports done once), and a switch the
    run's process sets or clears reaches them though the server started before it changed."""
    monkeypatch.setenv(KILL_HOOK, "99:always")  # no batch 99: nothing is killed
    with cluster.connect(2, None, batches=2) as executor:
        facts = executor.client.run(_worker_facts)
    assert len(facts) == 2
    for parent, hook in facts.values():
        assert "multiprocessing.forkserver" in parent
        assert hook == "99:always"
    monkeypatch.delenv(KILL_HOOK)
    with cluster.connect(2, None, batches=2) as executor:
        facts = executor.client.run(_worker_facts)
    assert [hook for _, hook in facts.values()] == ["", ""]  # cleared: the hook treats "" as none


def _pool_name() -> str:
    import pyarrow as pa

    return str(pa.default_memory_pool().backend_name)


def test_workers_of_a_cluster_the_run_starts_use_the_run_s_arrow_memory_pool(monkeypatch):
    """Every worker allocates from jemalloc (period.arrow_pool), a worker that Dask starts again too;
    with ARROW_DEFAULT_MEMORY_POOL set, the workers keep the pool it names."""
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    with cluster.connect(2, None, batches=2) as executor:
        assert sorted(executor.client.run(_pool_name).values()) == ["jemalloc", "jemalloc"]
        executor.client.restart()
        assert sorted(executor.client.run(_pool_name).values()) == ["jemalloc", "jemalloc"]
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    with cluster.connect(2, None, batches=2) as executor:
        assert sorted(executor.client.run(_pool_name).values()) == ["system", "system"]


@pytest.mark.parametrize(("variable", "during"), [(None, "jemalloc"), ("system", "system")])
def test_a_run_in_one_process_uses_the_run_s_pool_and_gives_the_caller_s_back(
    data, tmp_path, monkeypatch, variable, during
):
    """A run's batches allocate from jemalloc (or the pool ARROW_DEFAULT_MEMORY_POOL names); after the run
    the process's default pool is the one before it, so a caller's own arrays are not the run's business."""
    import pyarrow as pa

    from carrier_sla.engine import pipeline

    if variable is None:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    else:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", variable)
    seen = []
    evaluate_batch = cluster.evaluate_batch

    def spy(*args, **kwargs):
        seen.append(_pool_name())
        return evaluate_batch(*args, **kwargs)

    monkeypatch.setattr(cluster, "evaluate_batch", spy)
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    try:
        plan = load_plan("example-qc")
        pipeline.run(plan, data, PERIOD, tmp_path / "s", workers=1, max_reject_rate=0.05, partition_rows=1500)
        assert _pool_name() == "mimalloc"
    finally:
        pa.set_memory_pool(before)
    assert len(seen) > 1 and set(seen) == {during}


def test_judging_tasks_go_to_the_worker_with_the_fewest_cells_so_far():
    """Each judging task is pinned to the worker with the fewest cells to judge so far (ties: the
    first address), so that no worker judges two tasks of a measure one after the other while another
    waits; with no worker known the scheduler chooses."""
    executor = cluster.OnDask.__new__(cluster.OnDask)
    executor.judging = {"tcp://a": 0, "tcp://b": 0}
    assert executor._judge_on(300) == ["tcp://a"]
    assert executor._judge_on(200) == ["tcp://b"]
    assert executor._judge_on(150) == ["tcp://b"]  # b has 200, a 300
    assert executor._judge_on(100) == ["tcp://a"]  # a 300, b 350
    assert executor.judging == {"tcp://a": 400, "tcp://b": 350}
    executor.judging = {}
    assert executor._judge_on(10) is None
