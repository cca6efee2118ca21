"""Store integrity: `carrier-sla verify`, and what runs, history and readers do with a damaged store.

The store: three generated months (2026-08..10, scale 600) run in order under example-qc, then
October run again (a restatement), so the first October run is in no table of the current view.
Each test damages its own copy (links kept as links).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from carrier_sla.cli.main import main
from carrier_sla.store import layout as storemod
from carrier_sla.store.view import read_table
from carrier_sla.synthetic.generate import generate

MONTHS = ("2026-08", "2026-09", "2026-10", "2026-10")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """(store, data, run ids in run order) of the three months and the restated October."""
    root = tmp_path_factory.mktemp("verify")
    generate(root / "data", "2026-10", periods=3, scale=600, seed=2)
    for period in MONTHS:
        assert main(cli_run(root / "store", root / "data", period)) == 0
    manifests = [json.loads(p.read_text()) for p in (root / "store" / "runs").glob("*/manifest.json")]
    runs = [m["run_id"] for m in sorted(manifests, key=lambda m: m["started_at"])]
    return root / "store", root / "data", runs


def cli_run(store: Path, data: Path, period: str) -> list[str]:
    return ["run", "--plan", "example-qc", "--data", str(data), "--period", period, "--out", str(store), "--quiet"]


@pytest.fixture
def damaged(template, tmp_path):
    """A copy of the store to damage: (store, data, run ids)."""
    source, data, runs = template
    store = tmp_path / "store"
    shutil.copytree(source, store, symlinks=True)
    return store, data, runs


def current_run(store: Path) -> str:
    return storemod.view_root(store).parent.name


def one_line(err: str) -> str:
    """stderr of a refused command: exactly one line, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_manifests_record_each_published_file_with_bytes_and_sha256(damaged):
    """Every output of a run's manifest names its file in the view with the bytes and sha256 it was written with."""
    store, _, runs = damaged
    manifest = json.loads((store / "runs" / runs[-1] / "manifest.json").read_text())
    assert manifest["outputs"]
    for item in manifest["outputs"]:
        path = store / "runs" / runs[-1] / "view" / item["file"]
        data = path.read_bytes()
        assert item["bytes"] == len(data) and item["sha256"] == hashlib.sha256(data).hexdigest()


def test_verify_is_clean_on_an_intact_store(damaged, capsys):
    """verify exits 0 on a store nothing has touched, after checking every file of every view."""
    store, _, _ = damaged
    assert main(["verify", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "4 runs, 4 published views" in out and "no problem found" in out


def test_verify_lists_every_problem(damaged, capsys):
    """verify exits 5 and lists each damage: a missing file, a changed file (size, then sha256 at the same
    size), an unreadable manifest, a stray file in a view, and says which view is the latest intact one."""
    store, _, runs = damaged
    current = store / "runs" / runs[-1] / "view"
    (current / "rejects" / "period=2026-10" / "part-0.parquet").unlink()
    escalation = current / "escalation" / "period=2026-10" / "part-0.parquet"
    escalation.write_bytes(escalation.read_bytes() + b"x")
    results = store / "runs" / runs[0] / "view" / "results" / "period=2026-08" / "part-0.parquet"
    data = bytearray(results.read_bytes())
    data[len(data) // 2] ^= 0xFF
    results.write_bytes(bytes(data))
    (store / "runs" / runs[2] / "manifest.json").write_text('{"run_id": ')
    (current / "results" / "period=2026-09" / "notes.csv").write_text("a\n")
    assert main(["verify", "--store", str(store)]) == 5
    out = capsys.readouterr().out
    assert f"runs/{runs[-1]}/view/rejects/period=2026-10/part-0.parquet: missing" in out
    assert f"runs/{runs[-1]}/view/escalation/period=2026-10/part-0.parquet:" in out and "truncated or changed" in out
    assert f"runs/{runs[0]}/view/results/period=2026-08/part-0.parquet: content changed" in out
    assert f"runs/{runs[2]}/manifest.json: unreadable" in out
    assert f"runs/{runs[-1]}/view/results/period=2026-09/notes.csv: not written by run {runs[1]}" in out
    assert f"current view: run {runs[-1]}'s, damaged" in out
    assert f"latest intact view: run {runs[1]}'s" in out


def test_a_damaged_run_outside_the_current_view_is_skipped_with_a_warning(damaged, capsys):
    """A corrupt manifest of the first October run, replaced by the restatement, stops neither history nor
    the next run: each warns, the run records the warning in its manifest, and history leaves the run out."""
    store, data, runs = damaged
    (store / "runs" / runs[2] / "manifest.json").write_text("{not json")
    assert main(["history", "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert runs[2] not in out and runs[3] in out
    assert f"warning: runs/{runs[2]}/manifest.json: unreadable" in err
    assert main(cli_run(store, data, "2026-10")) == 0
    assert f"run {runs[2]}: manifest.json unreadable" in capsys.readouterr().err
    latest = json.loads((store / "runs" / current_run(store) / "manifest.json").read_text())
    assert latest["status"] == "completed" and runs[2] in latest["warnings"][0]


def test_a_damaged_manifest_of_a_run_in_the_current_view_is_refused_naming_it(damaged, capsys):
    """The oldest run made the August tables of the current view: with its manifest corrupt, run and history
    exit 5 with one line naming the manifest; the failed run says why; re-running August repairs the store."""
    store, data, runs = damaged
    (store / "runs" / runs[0] / "manifest.json").write_text("")
    assert main(["history", "--store", str(store)]) == 5
    assert f"runs/{runs[0]}/manifest.json: unreadable" in one_line(capsys.readouterr().err)
    assert main(cli_run(store, data, "2026-10")) == 5
    line = one_line(capsys.readouterr().err)
    assert f"runs/{runs[0]}/manifest.json" in line and "2026-08" in line
    assert current_run(store) == runs[-1]
    (failed,) = [p for p in (store / "runs").iterdir() if p.name not in runs]
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 5 and runs[0] in manifest["error"]
    assert main(cli_run(store, data, "2026-08")) == 0  # replaces every table the damaged run made
    capsys.readouterr()
    assert main(["history", "--store", str(store)]) == 0
    assert main(cli_run(store, data, "2026-10")) == 0


def test_a_corrupt_provenance_of_the_current_view_is_refused_in_one_line(damaged, capsys):
    """provenance.json of the current view cut short: run and history exit 5 with one line naming it."""
    store, data, runs = damaged
    path = store / "runs" / runs[-1] / "view" / "provenance.json"
    path.write_text(path.read_text()[:40])
    for args in (["history", "--store", str(store)], cli_run(store, data, "2026-10")):
        assert main(args) == 5
        assert "provenance.json: unreadable" in one_line(capsys.readouterr().err)
    assert current_run(store) == runs[-1]


@pytest.mark.parametrize("damage", ["file", "folder"])
def test_a_run_refuses_when_the_month_before_is_missing_and_names_it(damaged, capsys, damage):
    """September's results deleted (its file, or its whole folder): October exits 5 naming September, instead
    of publishing an empty September (file) or asking for September to be run first (folder); nothing is
    published. Running September again repairs the current view, and October runs again."""
    store, data, runs = damaged
    folder = store / "results" / "period=2026-09"
    if damage == "file":
        (folder / "part-0.parquet").unlink()
    else:
        shutil.rmtree(folder)
    assert main(cli_run(store, data, "2026-10")) == 5
    line = one_line(capsys.readouterr().err)
    assert "results/period=2026-09" in line and "missing" in line
    assert current_run(store) == runs[-1]
    assert main(cli_run(store, data, "2026-09")) == 0
    assert main(cli_run(store, data, "2026-10")) == 0
    assert len(read_table(store, "results", "2026-09")) > 0
    assert main(["verify", "--store", str(store)]) == 5  # the old view keeps its damage: history
    assert f"current view: run {current_run(store)}'s, intact" in capsys.readouterr().out


def test_readers_name_a_missing_results_file(damaged, tmp_path, capsys):
    """A results file of the current view deleted: report, package, explain, diff and what-if exit 5 with
    one line naming the file, instead of a KeyError traceback."""
    store, data, runs = damaged
    (store / "results" / "period=2026-10" / "part-0.parquet").unlink()
    commands = [
        ["report", "--store", str(store), "--period", "2026-10", "--out", str(tmp_path / "report")],
        ["package", "--store", str(store), "--period", "2026-10", "--carrier", "CLEC03", "--out", str(tmp_path / "p")],
        ["explain", "--store", str(store), "--period", "2026-10", "--measure", "OP-3", "--carrier", "all"],
        ["diff", "--store", str(store), "--run", runs[2], "--run", runs[3], "--period", "2026-10"],
        [
            "what-if",
            "--store",
            str(store),
            "--period",
            "2026-10",
            "--data",
            str(data),
            "--set",
            "exclusion.test_order=off",
        ],
    ]
    for args in commands:
        assert main(args) == 5, args
        line = one_line(capsys.readouterr().err)
        assert "results/period=2026-10/part-0.parquet: missing" in line, (args, line)


def test_outputs_inside_the_store_are_refused(damaged, tmp_path, capsys):
    """report, package and diff --out inside the store (through its links too) exit 2 and write nothing, so
    the next run still succeeds."""
    store, data, runs = damaged
    before = sorted(str(p.relative_to(store)) for p in store.rglob("*"))
    for out in (store / "runs", store / "results" / "report", store):
        for args in (
            ["report", "--store", str(store), "--period", "2026-10", "--out", str(out)],
            ["package", "--store", str(store), "--period", "2026-10", "--carrier", "CLEC03", "--out", str(out / "p")],
            ["diff", "--store", str(store), "--run", runs[2], "--run", runs[3], "--out", str(out / "d")],
        ):
            assert main(args) == 2, args
            assert "inside the store" in one_line(capsys.readouterr().err)
    assert sorted(str(p.relative_to(store)) for p in store.rglob("*")) == before
    assert main(cli_run(store, data, "2026-10")) == 0


def test_a_stray_entry_in_runs_does_not_stop_the_next_run(damaged, capsys):
    """A file left in STORE/runs (as an old `report --out STORE/runs` did) is skipped by the recovery."""
    store, data, _ = damaged
    (store / "runs" / "summary.csv").write_text("a\n")
    assert main(cli_run(store, data, "2026-10")) == 0
    assert main(["verify", "--store", str(store)]) == 0
    assert "runs/summary.csv: not a run folder" in capsys.readouterr().out


def test_a_lost_manifest_does_not_get_its_published_view_removed(damaged, capsys):
    """The manifest of the first October run deleted: the next run warns and leaves that run's view alone,
    instead of taking it for a run killed before publishing (removing the view, writing a `killed` manifest)."""
    store, data, runs = damaged
    (store / "runs" / runs[2] / "manifest.json").unlink()
    assert main(cli_run(store, data, "2026-10")) == 0
    assert f"run {runs[2]}: manifest.json unreadable (missing" in capsys.readouterr().err
    assert (store / "runs" / runs[2] / "view" / "results").is_dir()
    assert not (store / "runs" / runs[2] / "manifest.json").exists()
    assert main(["verify", "--store", str(store)]) == 5
    assert f"runs/{runs[2]}/manifest.json: missing" in capsys.readouterr().out
