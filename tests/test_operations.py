"""Operations (issue 17, point 4): empty months and measures without records, retract, --json
summaries, JSON logs on stderr, the config file, progress on a terminal, and --help of every
command."""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import example_document, keep_measures, write_inputs

from carrier_sla.cli.main import EXAMPLES, build_parser, main
from carrier_sla.engine import pipeline
from carrier_sla.engine.runlog import RunLog
from carrier_sla.plan.load import load_plan, plan_from_document
from carrier_sla.store import layout
from carrier_sla.store.view import open_store
from carrier_sla.synthetic.generate import generate

README = Path(__file__).resolve().parents[1] / "README.md"
ORDERS = [{}, {"carrier_id": "ILEC", "product": "pots"}]
TROUBLES = [{}, {"carrier_id": "ILEC", "product": "pots"}]
LINES = [{}, {"carrier_id": "ILEC", "product": "pots", "lines_in_service": "1000"}]

RUN_KEYS = {"command", "exit_code", "runs"}
RUN_MONTH_KEYS = {
    "run_id",
    "period",
    "status",
    "provisional",
    "provisional_as_of",
    "plan",
    "rows_read",
    "rows_rejected",
    "verdicts",
    "misses",
    "measures_without_records",
    "remedies",
    "warnings",
    "manifest",
}
VALIDATE_KEYS = {"command", "exit_code", "plans", "checks"}
REPORT_KEYS = {
    "command",
    "exit_code",
    "period",
    "state",
    "run_id",
    "provisional",
    "provisional_as_of",
    "misses",
    "total_paid",
    "files",
}
RETRACT_KEYS = {"command", "exit_code", "run_id", "retracted", "manifest"}
ERROR_KEYS = {"command", "exit_code", "error"}


# ------------------------------------------------------------------ a store of two generated months


@pytest.fixture(scope="module")
def two_months(tmp_path_factory):
    """September and October 2026 (scale 400, seed 3) run in order under example-qc (remedies)."""
    root = tmp_path_factory.mktemp("ops")
    generate(root / "data", "2026-10", periods=2, scale=400, seed=3, fmt="csv")
    for period in ("2026-09", "2026-10"):
        args = ["run", "--plan", "example-qc", "--data", str(root / "data"), "--period", period]
        assert main([*args, "--out", str(root / "store"), "--quiet", "--max-reject-rate", "1"]) == 0
    return root


@pytest.fixture
def store(two_months, tmp_path):
    """A copy of the two-month store (hard links kept: the copy keeps its views' sharing)."""
    copy = tmp_path / "store"
    shutil.copytree(two_months / "store", copy, symlinks=True)
    return copy


def current_files(store: Path) -> dict[str, bytes]:
    root = layout.view_root(store)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def stdout_json(capsys) -> dict:
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1, out  # one JSON object, on one line
    return json.loads(out)


# ------------------------------------------------------------------ empty months, measures without records


def test_a_month_without_troubles_is_exit_3_naming_month_and_type_also_as_json(tmp_path, capsys):
    """A final run of October whose troubles.csv has no row: exit 3, the one line names 'troubles'
    and '2026-10'; with --json the same error is a JSON object on stdout."""
    data = write_inputs(tmp_path / "data", ORDERS, [], LINES)
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", "2026-10", "--out", str(tmp_path / "s")]
    assert main([*args, "--quiet"]) == 3
    assert capsys.readouterr().err.startswith("carrier-sla: input error: no troubles of 2026-10 ")
    assert main([*args, "--quiet", "--json"]) == 3
    error = stdout_json(capsys)
    assert set(error) == ERROR_KEYS and (error["command"], error["exit_code"]) == ("run", 3)
    assert error["error"].startswith("no troubles of 2026-10 ")
    assert main([*args, "--quiet", "--allow-empty"]) == 0


def test_a_measure_in_arrears_without_records_of_its_data_month_is_named(tmp_path, capsys):
    """October's data hold no order of September (the first month of the data set): OP-5, reported
    one month in arrears, evaluates nothing. The manifest lists it (type, data month, arrears),
    the summary prints it, and the store's log has a warning for it; the other measures are not listed."""
    data = write_inputs(tmp_path / "data", ORDERS, TROUBLES, LINES)
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", "2026-10", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    line = "not reported: OP-5: no orders in its data month 2026-09, reported 1 month(s) in arrears; no result for it"
    assert line in captured.out
    (manifest_path,) = out.glob("runs/*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    gap = {"measure_id": "OP-5", "record_type": "orders", "data_period": "2026-09", "arrears_months": 1}
    assert manifest["measures_without_records"] == [gap]
    assert "OP-5" not in set(open_store(out).results("2026-10")["measure_id"])
    events = [json.loads(x) for x in (manifest_path.parent / "log.jsonl").read_text().splitlines()]
    warnings = [e for e in events if e["stage"] == "warning"]
    assert [w["measure_id"] for w in warnings] == ["OP-5"] and warnings[0]["level"] == "warning"


@pytest.mark.parametrize("partition_rows", [0, 1], ids=["whole", "partitioned"])
def test_measures_without_records_alike_whole_and_partitioned(tmp_path, partition_rows):
    """The count behind measures_without_records is the measure's own records: MR-8 (a rate over
    lines) with troubles is not listed, and a run spread over partitions lists what a whole run does."""
    data = write_inputs(tmp_path / "data", ORDERS, TROUBLES, LINES)
    result = pipeline.run(
        load_plan("example-qc"), data, "2026-10", tmp_path / "s", max_reject_rate=1.0, partition_rows=partition_rows
    )
    assert [g["measure_id"] for g in result.manifest["measures_without_records"]] == ["OP-5"]


# ------------------------------------------------------------------ retract


def test_retract_refused_while_a_later_month_depends_on_it(store, capsys):
    """October's remedies escalate from September: retracting September alone is refused (exit 2),
    naming October and --cascade; the current view is unchanged and no retract is recorded."""
    before = current_files(store)
    runs = sorted(p.name for p in (store / "runs").iterdir())
    assert main(["retract", "--store", str(store), "--period", "2026-09"]) == 2
    err = capsys.readouterr().err
    assert "cannot retract 2026-09: 2026-10 depends on it" in err and "--cascade" in err
    assert current_files(store) == before
    assert sorted(p.name for p in (store / "runs").iterdir()) == runs


def test_retract_the_latest_month_keeps_it_in_history_and_it_can_be_run_again(store, two_months, capsys):
    """Retracting October: the current view holds September only, every table of it unchanged; the
    October the earlier run published stays readable under runs/; verify passes; history lists the
    retract (kind retract); running October again publishes it anew."""
    september = {k: v for k, v in current_files(store).items() if "period=2026-09" in k}
    october_run = open_store(store).run_of("2026-10")
    assert main(["retract", "--store", str(store), "--period", "2026-10", "--json"]) == 0
    summary = stdout_json(capsys)
    assert set(summary) == RETRACT_KEYS and summary["retracted"] == ["2026-10"]
    view = open_store(store)
    assert view.periods() == ["2026-09"] and view.periods("remedies") == ["2026-09"]
    assert {k: v for k, v in current_files(store).items() if "period=" in k} == september
    assert view.run(october_run).periods() == ["2026-09", "2026-10"]  # history keeps it
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert (manifest["kind"], manifest["status"], manifest["retracted"]) == ("retract", "completed", ["2026-10"])
    assert manifest["retracted_runs"] == {"2026-10": [october_run]}
    assert main(["verify", "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["history", "--store", str(store), "--period", "2026-10", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["final", "retract"] and rows[1]["retracted"] == ["2026-10"]
    assert rows[0]["current"] == []  # October's run no longer makes up the current view
    args = ["run", "--plan", "example-qc", "--data", str(two_months / "data"), "--period", "2026-10"]
    assert main([*args, "--out", str(store), "--quiet", "--max-reject-rate", "1"]) == 0
    assert open_store(store).periods() == ["2026-09", "2026-10"]
    assert main(["verify", "--store", str(store)]) == 0


def test_retract_with_cascade_removes_the_dependent_months(store, capsys):
    """--cascade retracts September and October; the store's view is then empty, verify passes,
    and the history line reads '2026-09 retracted (+2026-10)'."""
    assert main(["retract", "--store", str(store), "--period", "2026-09", "--cascade"]) == 0
    assert "retracted 2026-09, 2026-10" in capsys.readouterr().out
    assert open_store(store).periods() == []
    assert main(["verify", "--store", str(store)]) == 0
    assert main(["history", "--store", str(store)]) == 0
    assert "2026-09 retracted (+2026-10)" in capsys.readouterr().out


def test_a_middle_month_without_dependents_can_be_retracted(tmp_path):
    """A plan without remedies and without alpha_after_miss: no month depends on another, so the
    middle of three months is retracted alone and the months around it stay."""
    doc = example_document()
    doc.pop("remedies", None)
    doc = keep_measures(doc, ("PO-5", "OP-3"))
    plan = plan_from_document(doc)
    out = tmp_path / "store"
    for month in ("2026-08", "2026-09", "2026-10"):
        rows = [o | {"received_at": f"{month}-07 09:00:00", "completed_at": f"{month}-10 12:00:00"} for o in ORDERS]
        rows = [o | {"foc_at": f"{month}-07 10:00:00", "due_date": f"{month}-10"} for o in rows]
        data = write_inputs(tmp_path / month, rows, [], [])
        pipeline.run(plan, data, month, out, max_reject_rate=1.0)
    assert main(["retract", "--store", str(out), "--period", "2026-09"]) == 0
    assert open_store(out).periods() == ["2026-08", "2026-10"]


def test_a_failed_retract_leaves_the_view_as_it_was(store, monkeypatch, capsys):
    """The disk fills while the new view is linked: exit 5 with one line, the current view and its
    files unchanged, the retract's unpublished view removed and its manifest marked failed."""
    import errno

    before = (store / "current").resolve(), current_files(store)

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(layout, "_link_tree", full)
    assert main(["retract", "--store", str(store), "--period", "2026-10"]) == 5
    err = capsys.readouterr().err
    assert (
        err.startswith("carrier-sla: store error: cannot retract 2026-10: no space left") and len(err.splitlines()) == 1
    )
    assert ((store / "current").resolve(), current_files(store)) == before
    manifests = [json.loads(p.read_text()) for p in store.glob("runs/*/manifest.json")]
    (failed,) = [m for m in manifests if m.get("kind") == "retract"]
    assert failed["status"] == "failed" and not (store / "runs" / failed["run_id"] / "view").exists()
    monkeypatch.undo()
    assert main(["verify", "--store", str(store)]) == 0


def test_retract_of_a_month_not_published_is_a_usage_error(store, capsys):
    assert main(["retract", "--store", str(store), "--period", "2026-07"]) == 2
    assert "period 2026-07 is not published" in capsys.readouterr().err


# ------------------------------------------------------------------ --json summaries, JSON logs


def test_run_validate_and_report_json_print_one_object_with_the_documented_keys(store, two_months, tmp_path, capsys):
    """run --json, validate --json and report --json each print one JSON object on stdout with the
    keys the README lists (checked against the README's text too); the figures are the manifest's."""
    data = str(two_months / "data")
    args = ["run", "--plan", "example-qc", "--data", data, "--period", "2026-10", "--out", str(store)]
    assert main([*args, "--json", "--max-reject-rate", "1"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert set(summary) == RUN_KEYS and len(summary["runs"]) == 1
    month = summary["runs"][0]
    assert set(month) == RUN_MONTH_KEYS
    manifest = json.loads(Path(month["manifest"]).read_text())
    assert month["verdicts"] == manifest["verdicts"] and month["misses"] == manifest["verdicts"].get("miss", 0)
    assert month["rows_read"] == sum(i["rows_read"] for i in manifest["inputs"])
    assert month["remedies"]["total"] == manifest["remedies"]["periods"]["2026-10"]["total"]
    assert "verdicts per CLEC cell" not in captured.out + captured.err  # no human summary
    assert main(["validate", "--plan", "example-qc", "--data", data, "--json"]) == 0
    validated = stdout_json(capsys)
    assert set(validated) == VALIDATE_KEYS and validated["plans"][0]["id"] == "example-qc"
    assert main(["report", "--store", str(store), "--period", "2026-10", "--out", str(tmp_path / "r"), "--json"]) == 0
    report = stdout_json(capsys)
    assert set(report) == REPORT_KEYS and report["run_id"] == month["run_id"]
    assert str(tmp_path / "r" / "report.html") in report["files"]
    documented = README.read_text()
    section = documented[documented.index("### Machine summaries (--json)") :]
    section = section[: section.index("\n## ")]
    for key in RUN_KEYS | RUN_MONTH_KEYS | VALIDATE_KEYS | REPORT_KEYS | RETRACT_KEYS | ERROR_KEYS:
        assert f"`{key}`" in section, key


def test_log_format_json_sends_the_store_log_lines_to_stderr(tmp_path, capsys):
    """--log-format json: every stderr line is a JSON object, and they are the lines of the run's
    log.jsonl in the store (same stages, same run id)."""
    data = write_inputs(tmp_path / "data", ORDERS, TROUBLES, LINES)
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", "2026-10", "--out", str(out)]
    assert main([*args, "--log-format", "json", "--json"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.err.splitlines()]
    (log,) = out.glob("runs/*/log.jsonl")
    stored = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["stage"] for e in lines] == [e["stage"] for e in stored]
    assert lines[0]["stage"] == "start" and lines[-1]["stage"] == "completed"
    assert {e["run_id"] for e in lines} == {log.parent.name}
    assert json.loads(captured.out)["runs"][0]["run_id"] == log.parent.name


def test_log_records_go_through_the_logging_module(tmp_path, caplog):
    """A library caller sees the run's events as records of the logger carrier_sla.run (stage and
    figures attached), at INFO, and warnings at WARNING."""
    import logging

    data = write_inputs(tmp_path / "data", ORDERS, TROUBLES, LINES)
    with caplog.at_level(logging.INFO, logger="carrier_sla.run"):
        pipeline.run(load_plan("example-qc"), data, "2026-10", tmp_path / "s", max_reject_rate=1.0)
    stages = [(r.levelname, r.stage) for r in caplog.records if r.name == "carrier_sla.run"]
    assert stages[0] == ("INFO", "start") and stages[-1] == ("INFO", "completed")
    assert ("WARNING", "warning") in stages  # OP-5 without records of September


# ------------------------------------------------------------------ progress


@pytest.mark.parametrize(
    ("partition_rows", "counted"),
    [(0, ["files read", "measures"]), (1, ["partitions", "measures judged (statistics)"])],
    ids=["whole", "partitioned"],
)
def test_progress_on_a_terminal_names_what_it_counts(tmp_path, partition_rows, counted):
    """On a terminal the bar counts the files read and the measures (a whole run), or the
    partitions and then the measures judged (a partitioned run: statistics come last); a
    partitioned run never calls its partitions 'measures'. Not a terminal: no bar at all."""
    data = write_inputs(tmp_path / "data", ORDERS * 3, TROUBLES * 3, LINES)
    for interactive in (True, False):
        console = io.StringIO()
        log = RunLog(console=console, interactive=interactive)
        out = tmp_path / f"s{interactive}"
        result = pipeline.run(
            load_plan("example-qc"), data, "2026-10", out, max_reject_rate=1.0, partition_rows=partition_rows, log=log
        )
        log.detach()
        text = console.getvalue()
        bars = [m.group(1) for m in re.finditer(r"\r\033\[K\[[#-]{30}\] ([^\r\n]*)", text)]
        if not interactive:
            assert bars == [] and "\r" not in text
            continue
        shown = {b.split(" ", 1)[1].split(",")[0] for b in bars}
        assert shown == set(counted), shown
        if partition_rows:
            parts = result.manifest["partitions"]
            assert parts > 1 and any(b.startswith(f"{parts}/{parts} partitions,") for b in bars)
            assert not any(" measures," in b for b in bars)


# ------------------------------------------------------------------ the config file


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_file_in_the_working_directory_gives_plan_data_and_store(tmp_path, monkeypatch, capsys):
    """The cron line: ./carrier-sla.toml names plan, data and store and [run] options, so
    `run --period auto` needs nothing else; a command-line option overrides the file."""
    write_inputs(tmp_path / "data", ORDERS, TROUBLES, LINES)
    monkeypatch.chdir(tmp_path)
    write_config(
        tmp_path / "carrier-sla.toml",
        'plan = "example-qc"\ndata = "data"\nstore = "store"\n\n[run]\nmax_reject_rate = 1\nquiet = true\n'
        "final-within-days = 0\n",
    )
    assert main(["run", "--period", "auto", "--today", "2026-10-20", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [(r["period"], r["provisional_as_of"]) for r in summary["runs"]] == [("2026-10", "2026-10-20")]
    assert (tmp_path / "store" / "current").is_symlink()
    assert main(["run", "--period", "2026-10", "--out", str(tmp_path / "other"), "--quiet"]) == 0  # CLI wins
    assert open_store(tmp_path / "other").periods() == ["2026-10"]
    assert main(["history", "--json"]) == 0  # the store from the file
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_config_option_overrides_by_command_line_and_explicit_path(tmp_path, capsys):
    """--config PATH is read wherever it stands; a [run] option in it (max_reject_rate 0, which
    refuses the one bad row) is overridden by the same option given on the command line."""
    rows = [*ORDERS, {"completed_at": "not a time"}]
    data = write_inputs(tmp_path / "data", rows, TROUBLES, LINES)
    config = write_config(
        tmp_path / "ops.toml",
        f'plan = "example-qc"\ndata = "{data}"\nstore = "{tmp_path / "store"}"\n[run]\nmax-reject-rate = 0\n',
    )
    assert main(["run", "--period", "2026-10", "--quiet", "--config", str(config)]) == 3
    assert main(["--config", str(config), "run", "--period", "2026-10", "--quiet", "--max-reject-rate", "1"]) == 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('plan = "example-qc"\nstorage = "s"\n', "unknown key 'storage'"),
        ("[run]\nmax_rejects = 1\n", "unknown key run.max_rejects (not an option of run)"),
        ("[run]\nallow_empty = 1\n", "run.allow_empty must be true or false"),
        ('[run]\nlog_format = "xml"\n', "run.log_format must be one of text, json"),
        ("[run]\nmax_reject_rate = 2\n", "run.max_reject_rate: '2' is not a share from 0 to 1"),
        ("[run]\ndebug = true\n", "unknown key run.debug"),
        ("plan = [", "not valid TOML"),
    ],
    ids=["top-level", "option", "bool", "choice", "type", "debug", "toml"],
)
def test_config_file_problems_are_usage_errors_naming_file_and_key(tmp_path, capsys, text, says):
    config = write_config(tmp_path / "bad.toml", text)
    assert main(["run", "--period", "2026-10", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"carrier-sla: {config}: ") and says in err and len(err.splitlines()) == 1


def test_a_missing_config_file_given_is_a_usage_error(tmp_path, capsys):
    assert main(["history", "--config", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------ --help


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return build_parser().commands  # type: ignore[attr-defined]


def test_every_option_of_every_command_has_help_and_every_command_an_example():
    """Walking every subcommand's parser: no option without help text, and an epilog that ends
    with an example of that command."""
    commands = subcommands()
    assert set(commands) == set(EXAMPLES)
    for name, parser in commands.items():
        for action in parser._actions:
            if action.option_strings and action.help is not argparse.SUPPRESS:
                assert action.help and action.help.strip(), f"{name} {action.option_strings[0]} has no help"
        assert parser.epilog and parser.epilog.startswith("example:"), name
        assert parser.epilog.splitlines()[-1].strip().startswith(f"carrier-sla {name} "), name


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_help_prints_the_example_last(name, capsys):
    assert main([name, "--help"]) == 0
    printed = capsys.readouterr().out.rstrip().splitlines()
    assert printed[-2:] == ["example:", f"  {EXAMPLES[name]}"]


def test_retract_waits_for_no_one_while_a_run_holds_the_lock(store, capsys):
    """A retract under a held lock is refused at once (exit 4, store busy), the view unchanged."""
    before = current_files(store)
    with layout.StoreLock(store, "a run in progress"):
        assert main(["retract", "--store", str(store), "--period", "2026-10"]) == 4
    assert "store busy" in capsys.readouterr().err
    assert current_files(store) == before
