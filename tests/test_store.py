"""The store: publication by one pointer swap, history of runs, recovery after a SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.readers import history
from carrier_sla.store import layout as store
from carrier_sla.synthetic.generate import generate

PERIOD = "2026-10"


def snapshot(out: Path) -> dict[str, str]:
    """sha256 of every published file, by its path under the store's table links."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for table in store.ALL_TABLES
        for p in sorted((out / table).rglob("*"))
        if p.is_file()
    }


def orders(n_late: int) -> list[dict]:
    rows = [
        {"carrier_id": "ILEC", "product": "pots", "completed_at": f"2026-10-{12 if i < 5 else 8:02d} 12:00:00"}
        for i in range(60)
    ]
    rows += [{"completed_at": f"2026-10-{12 if i < n_late else 8:02d} 12:00:00"} for i in range(10)]
    return rows


def test_publication_is_one_pointer_and_earlier_views_stay_readable(tmp_path, plan):
    """STORE/current points at the latest run's view; STORE/<table> go through it; a restated
    period leaves the earlier run's view readable under runs/RUN_ID/view."""
    out = tmp_path / "store"
    first = pipeline.run(
        plan, write_inputs(tmp_path / "a", orders(0)), PERIOD, out, max_reject_rate=1.0, allow_empty=True
    )
    second = pipeline.run(
        plan, write_inputs(tmp_path / "b", orders(6)), PERIOD, out, max_reject_rate=1.0, allow_empty=True
    )
    assert (out / "current").is_symlink() and (out / "results").is_symlink()
    assert (out / "current").resolve() == (out / "runs" / second.run_id / "view").resolve()

    def op3(folder: Path) -> float:
        results = pd.read_parquet(folder / "results")
        return results.query("measure_id == 'OP-3' and carrier_id == 'CLEC01'")["clec_value"].iloc[0]

    assert op3(out) == 40.0  # 4 of 10 on time, the restated month
    assert op3(out / "runs" / first.run_id / "view") == 100.0  # the first run, as it published
    provenance = store.current_provenance(out)
    assert provenance["results"][f"period={PERIOD}"] == second.run_id


def test_untouched_periods_are_linked_not_copied(tmp_path, plan):
    """Publishing November links October's files into the new view: same inode, no copy."""
    out = tmp_path / "store"
    october = pipeline.run(
        plan, write_inputs(tmp_path / "a", orders(0)), PERIOD, out, max_reject_rate=1.0, allow_empty=True
    )
    november = [
        {
            "received_at": "2026-11-02 09:00:00",
            "foc_at": "2026-11-02 10:00:00",
            "due_date": "2026-11-05",
            "completed_at": "2026-11-05 10:00:00",
        }
    ]
    pipeline.run(plan, write_inputs(tmp_path / "b", november), "2026-11", out, max_reject_rate=1.0, allow_empty=True)
    old = out / "runs" / october.run_id / "view" / "results" / f"period={PERIOD}" / "part-0.parquet"
    new = out / "results" / f"period={PERIOD}" / "part-0.parquet"
    assert os.stat(old).st_ino == os.stat(new).st_ino
    assert store.current_provenance(out)["results"][f"period={PERIOD}"] == october.run_id


def test_recover_marks_killed_runs_and_completes_a_published_one(tmp_path, plan):
    """A run left `running` loses its unpublished view and is marked killed; a run left `publishing`
    whose view is current did publish and is marked completed."""
    out = tmp_path / "store"
    done = pipeline.run(
        plan, write_inputs(tmp_path / "a", orders(0)), PERIOD, out, max_reject_rate=1.0, allow_empty=True
    )
    published = json.loads(done.manifest_path.read_text()) | {"status": "publishing"}
    store.write_manifest(out, done.run_id, published)
    (out / "runs" / "KILLED" / "view" / "results").mkdir(parents=True)
    store.write_manifest(out, "KILLED", {"run_id": "KILLED", "status": "running"})
    assert store.recover(out, "NEXT") == [done.run_id, "KILLED"]
    assert json.loads(done.manifest_path.read_text())["status"] == "completed"
    killed = json.loads((out / "runs" / "KILLED" / "manifest.json").read_text())
    assert killed["status"] == "killed" and "NEXT" in killed["error"]
    assert not (out / "runs" / "KILLED" / "view").exists()


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory):
    """One generated month large enough (about 10 s to run) to be killed while it writes."""
    root = tmp_path_factory.mktemp("big")
    generate(root / "data", PERIOD, periods=1, scale=40_000, seed=3, fmt="parquet")
    return root / "data"


def test_a_run_killed_mid_write_leaves_the_published_store_exactly_as_before(tmp_path, big_inputs):
    """SIGKILL while the second run writes its Parquet files: every published file is byte-identical
    afterwards, the next run succeeds and marks the killed run, whose unpublished view is gone."""
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(big_inputs), "--period", PERIOD, "--out", str(out), "--quiet"]
    assert main(args) == 0
    before = snapshot(out)
    runs_before = {p.name for p in (out / "runs").iterdir()}
    victim = subprocess.Popen(
        [sys.executable, "-m", "carrier_sla", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    view = None
    while time.monotonic() < deadline and victim.poll() is None:
        new = [p for p in (out / "runs").iterdir() if p.name not in runs_before]
        if new and any((new[0] / "view").rglob("*.parquet")):
            view = new[0] / "view"
            break
        time.sleep(0.01)
    assert view is not None, "the run finished before it could be killed mid-write"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert snapshot(out) == before
    assert main(args) == 0
    killed = json.loads((view.parent / "manifest.json").read_text())
    assert killed["status"] == "killed" and not view.exists()
    assert set(snapshot(out)) == set(before)  # the same files, now from the third run


def _holds_partition_files(staging: Path) -> bool:
    """Whether a run's partition files are in the staging folder, which a running run creates and
    removes folders of while it is being listed (a folder gone mid-listing: none there)."""
    try:
        return any(staging.rglob("*.arrow"))
    except FileNotFoundError:
        return False


def test_a_partitioned_run_killed_among_its_partition_files_leaves_the_store_as_before(tmp_path, big_inputs):
    """SIGKILL while a partitioned run's partition files exist (spreading the input, or checking
    a partition): the published files are as before, and the next run succeeds and removes the
    killed run's partition files."""
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(big_inputs), "--period", PERIOD, "--out", str(out), "--quiet"]
    args += ["--partition-rows", "5000"]
    assert main(args) == 0
    before = snapshot(out)
    victim = subprocess.Popen(
        [sys.executable, "-m", "carrier_sla", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    spilled = False
    while time.monotonic() < deadline and victim.poll() is None and not spilled:
        spilled = _holds_partition_files(out / ".staging")
        time.sleep(0.005)
    assert spilled, "the run finished before it could be killed among its partition files"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert any((out / ".staging").rglob("*.arrow"))  # left behind by the kill
    assert snapshot(out) == before
    assert main(args) == 0
    staging = out / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert set(snapshot(out)) == set(before)


def test_history_lists_runs_with_plan_inputs_status_and_verdicts(tmp_path, plan, capsys):
    """history lists every run (a failed one too) with plan, inputs digest, status and verdicts;
    --period filters; --json gives one object per run; the current run is marked."""
    out = tmp_path / "store"
    a = pipeline.run(plan, write_inputs(tmp_path / "a", orders(0)), PERIOD, out, max_reject_rate=1.0, allow_empty=True)
    b = pipeline.run(plan, write_inputs(tmp_path / "b", orders(6)), PERIOD, out, max_reject_rate=1.0, allow_empty=True)
    broken = write_inputs(tmp_path / "c", orders(0))
    (broken / "orders.csv").write_text("order_id\n1\n")
    assert (
        main(["run", "--plan", "example-qc", "--data", str(broken), "--period", PERIOD, "--out", str(out), "--quiet"])
        == 3
    )
    rows = history.runs(out)
    assert [r["status"] for r in rows] == ["completed", "completed", "failed"]
    assert rows[0]["run_id"] == a.run_id and rows[1]["run_id"] == b.run_id
    assert rows[0]["inputs"] != rows[1]["inputs"] and rows[0]["plan"] == "example-qc 1.0.0"
    assert rows[0]["current"] == [] and f"results/{PERIOD}" in rows[1]["current"]
    assert rows[1]["verdicts"]["miss"] >= 1
    assert main(["history", "--store", str(out), "--period", "2026-09"]) == 0
    assert "no runs" in capsys.readouterr().out
    assert main(["history", "--store", str(out), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["run_id"] for line in lines] == [r["run_id"] for r in rows]
    assert main(["history", "--store", str(out)]) == 0
    text = capsys.readouterr().out
    assert b.run_id in text and "all tables" in text and "failed" in text
    assert main(["history", "--store", str(tmp_path / "nowhere")]) == 2


def test_run_logs_json_lines_in_the_store_and_stage_lines_on_stderr(tmp_path, capsys):
    """A run writes runs/RUN_ID/log.jsonl (run id, stage, rows, seconds) and, unless --quiet, one
    readable line per stage on stderr; stderr is not a terminal here, so no progress bar is drawn."""
    data = write_inputs(tmp_path / "data", orders(6))
    out = tmp_path / "store"
    assert (
        main(
            [
                "run",
                "--plan",
                "example-qc",
                "--data",
                str(data),
                "--period",
                PERIOD,
                "--out",
                str(out),
                "--max-reject-rate",
                "1",
                "--allow-empty",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "] read: 70 rows from 3 files, 0 rejected" in err and "] completed: exit 0" in err
    assert "\r" not in err and "records/s" not in err
    (log_path,) = out.glob("runs/*/log.jsonl")
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    stages = [e["stage"] for e in events]
    assert stages[:2] == ["start", "read"] and stages[-1] == "completed"
    assert stages.count("measure") == 8 and "remedies" in stages and "write" in stages
    assert {e["run_id"] for e in events} == {log_path.parent.name}
    read = events[1]
    assert read["rows"] == 70 and read["seconds"] >= 0
    assert all("records" in e and "seconds" in e for e in events if e["stage"] == "measure")


def test_progress_bar_only_on_an_interactive_console():
    """RunLog draws its bar (with records/s) only when told the console is a terminal."""
    import io

    from carrier_sla.engine.runlog import RunLog

    for interactive in (False, True):
        console = io.StringIO()
        log = RunLog(console=console, interactive=interactive)
        log.progress(1, 8, 10_000)
        log.event("measure", "PO-5 done")
        assert ("records/s" in console.getvalue()) is interactive
        assert "measure: PO-5 done" in console.getvalue()


def test_records_files_keep_their_code_columns_dictionary_encoded(generated_store):
    """Every dictionary column of the published records/ files (carriers, states, products,
    submeasure labels...) is dictionary-encoded in the Parquet file: an Arrow dictionary with a
    repeated entry (two products both labelled "all") would be written as plain text, row by row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = generated_store[0]
    files = sorted((out / "records").rglob("*.parquet"))
    assert files
    for path in files:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        for group in range(parquet.metadata.num_row_groups):
            for i in range(parquet.metadata.num_columns):
                chunk = parquet.metadata.row_group(group).column(i)
                if chunk.num_values and pa.types.is_dictionary(schema.field(chunk.path_in_schema).type):
                    assert "RLE_DICTIONARY" in chunk.encodings, (path, chunk.path_in_schema, chunk.encodings)
