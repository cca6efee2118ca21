"""The command line end to end: commands, exit codes, the run manifest, Parquet metadata,
re-runs of a period, and a few real subprocess calls."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import PLAIN_STATISTICS, example_document, keep_measures, write_csv, write_inputs

import carrier_sla
from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.plan.load import load_plan

PERIOD = "2026-10"
BIN = Path(sys.executable).parent

GOOD_ORDERS = [
    {},
    {"completed_at": "2026-10-09 12:00:00"},
    {"carrier_id": "ILEC", "product": "pots"},
    {"carrier_id": "ILEC", "product": "pots", "completed_at": "2026-10-07 12:00:00"},
]
GOOD_TROUBLES = [
    {},
    {"carrier_id": "ILEC", "product": "pots"},
    {"carrier_id": "ILEC", "product": "pots", "cleared_at": "2026-10-13 15:00:00"},
]
GOOD_LINES = [{}, {"carrier_id": "ILEC", "product": "pots", "lines_in_service": "1000"}]


STAGE_LINE = re.compile(r"^\[ *\d+\.\ds\] [a-z_]+: ")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """main() in-process: (exit code, stdout, stderr without the run's stage log lines, which
    test_store checks on their own)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    err = "".join(line for line in captured.err.splitlines(keepends=True) if not STAGE_LINE.match(line))
    return code, captured.out, err


def good_data(folder: Path) -> Path:
    return write_inputs(folder, GOOD_ORDERS, GOOD_TROUBLES, GOOD_LINES)


def manifests(store: Path) -> list[dict]:
    """Every run manifest of a store, oldest first."""
    found = [json.loads(p.read_text()) for p in (store / "runs").glob("*/manifest.json")]
    return sorted(found, key=lambda m: m["started_at"])


def snapshot(store: Path) -> dict[str, str]:
    """sha256 of every published file of the store (results, records, rejects)."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for table in ("results", "records", "rejects")
        if (store / table).exists()
        for p in sorted((store / table).rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def small_plan(tmp_path) -> Path:
    """The example plan cut down to its two order measures PO-5 and OP-3 (fast, orders only)."""
    doc = example_document()
    doc["statistics"] = dict(PLAIN_STATISTICS)  # no benchmark allowance: one late FOC is a miss
    keep_measures(doc, ("PO-5", "OP-3"))
    path = tmp_path / "small-plan.json"
    path.write_text(json.dumps(doc))
    return path


def plan_file(tmp_path: Path, change) -> Path:
    doc = example_document()
    doc["statistics"] = dict(PLAIN_STATISTICS)
    keep_measures(doc, ("PO-5", "OP-3"))
    change(doc)
    path = tmp_path / "changed-plan.json"
    path.write_text(json.dumps(doc))
    return path


# ----------------------------------------------------------------------------------- run


def test_run_completes_with_exit_0_and_prints_a_summary(tmp_path, capsys):
    """run on good data exits 0, prints the run summary and publishes results, records and rejects."""
    data = good_data(tmp_path / "data")
    code, out, err = cli(
        capsys, "run", "--plan", "example-qc", "--data", data, "--period", PERIOD, "--out", tmp_path / "store"
    )
    assert (code, err) == (0, "")
    assert "period 2026-10, plan example-qc 1.0.0" in out
    assert "inputs: 9 rows read, 0 rejected" in out
    for table in ("results", "rejects"):
        assert (tmp_path / "store" / table / f"period={PERIOD}" / "part-0.parquet").is_file()
    assert (tmp_path / "store" / "records" / f"period={PERIOD}" / "measure_id=MR-8" / "part-0.parquet").is_file()


def test_run_quiet_prints_nothing(tmp_path, capsys, small_plan):
    """--quiet prints nothing on success."""
    data = good_data(tmp_path / "data")
    assert cli(
        capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", tmp_path / "store", "--quiet"
    ) == (0, "", "")


LATE_FOC = {"received_at": "2026-10-05 09:00:00", "foc_at": "2026-10-08 10:00:00"}  # 3 business days: > 24 h


def test_fail_on_miss_exits_1_only_when_there_is_a_miss(tmp_path, capsys, small_plan):
    """With --fail-on miss a run with a missed verdict exits 1; without the flag, or without misses, it exits 0."""
    late = write_inputs(tmp_path / "late", [LATE_FOC, {}], [], [])
    args = ["run", "--plan", small_plan, "--data", late, "--period", PERIOD, "--quiet"]
    assert cli(capsys, *args, "--out", tmp_path / "s1")[0] == 0
    assert cli(capsys, *args, "--out", tmp_path / "s2", "--fail-on", "miss")[0] == 1
    assert manifests(tmp_path / "s2")[0]["verdicts"]["miss"] == 2  # the CLEC cell and the all-CLEC aggregate
    on_time = write_inputs(tmp_path / "on_time", [{}, {}], [], [])
    code = cli(
        capsys,
        "run",
        "--plan",
        small_plan,
        "--data",
        on_time,
        "--period",
        PERIOD,
        "--quiet",
        "--out",
        tmp_path / "s3",
        "--fail-on",
        "miss",
    )[0]
    assert code == 0
    assert "miss" not in manifests(tmp_path / "s3")[0]["verdicts"]


@pytest.mark.parametrize("period", ["2026-13", "oct", "2026-1", "2026/10", "26-10", "2026-10-01", ""])
def test_bad_period_is_a_usage_error_exit_2(tmp_path, capsys, small_plan, period):
    """A --period that is not YYYY-MM exits 2 naming the period, before anything is read or written."""
    data = good_data(tmp_path / "data")
    code, _, err = cli(
        capsys, "run", "--plan", small_plan, "--data", data, "--period", period, "--out", tmp_path / "store"
    )
    assert code == 2
    assert f"period {period!r} is not YYYY-MM" in err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("period", ["9999-12", "2061-01", "1994-12", "0001-01"])
def test_a_period_outside_the_supported_years_is_a_usage_error_exit_2(tmp_path, capsys, small_plan, period):
    """--period 9999-12 crashed (exit 5): a period outside the calendars' years 1995-2060 exits 2
    naming the period and the supported range, before anything is read or written; generate and
    history say the same."""
    data = good_data(tmp_path / "data")
    code, _, err = cli(
        capsys, "run", "--plan", small_plan, "--data", data, "--period", period, "--out", tmp_path / "store"
    )
    assert code == 2
    assert f"period {period!r} is outside the supported years 1995-2060" in err and "Traceback" not in err
    assert not (tmp_path / "store").exists()
    for args in (["generate", "--out", tmp_path / "g"], ["history", "--store", tmp_path / "store"]):
        code, _, err = cli(capsys, *args, "--period", period)
        assert code == 2 and "outside the supported years 1995-2060" in err


@pytest.mark.parametrize("rate", ["nan", "NaN", "inf", "-inf", "-0.01", "1.5", "one"])
def test_a_max_reject_rate_that_is_not_a_share_is_a_usage_error_exit_2(tmp_path, capsys, small_plan, rate):
    """--max-reject-rate nan disabled the reject gate (every comparison with NaN is false): NaN,
    infinities, negative shares and shares above 1 exit 2 naming the argument, and nothing runs."""
    data = good_data(tmp_path / "data")
    code, _, err = cli(
        capsys,
        "run",
        "--plan",
        small_plan,
        "--data",
        data,
        "--period",
        PERIOD,
        "--out",
        tmp_path / "store",
        f"--max-reject-rate={rate}",  # the = form: argparse would take a separate -inf for an option
    )
    assert code == 2
    assert "argument --max-reject-rate" in err and repr(rate) in err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), -0.5, 2.0])
def test_the_library_refuses_a_max_reject_rate_that_is_not_a_share(tmp_path, rate):
    """pipeline.run checks the share too (UsageError), for callers that do not go through the CLI."""
    from carrier_sla.errors import UsageError

    with pytest.raises(UsageError, match="is not a share between 0 and 1"):
        pipeline.run(load_plan("example-qc"), tmp_path, PERIOD, tmp_path / "store", max_reject_rate=rate)
    assert not (tmp_path / "store").exists()


def test_unknown_option_exits_2(capsys):
    """An unknown option is a usage error: main returns 2 (it never calls sys.exit) with a usage line."""
    code = main(["run", "--plan", "example-qc", "--data", "d", "--period", PERIOD, "--out", "o", "--frobnicate"])
    assert code == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_missing_required_option_and_unknown_command_exit_2(capsys):
    """run without --period, or a command that does not exist, exits 2."""
    for argv in (["run", "--plan", "example-qc", "--data", "d", "--out", "o"], ["frobnicate"], []):
        assert main(argv) == 2, argv
    assert "error:" in capsys.readouterr().err


def test_version_option_prints_the_package_version(capsys):
    """--version prints the package version and returns 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"carrier-sla {carrier_sla.__version__}"


@pytest.mark.parametrize(("field", "value"), [("effective_from", "2026-11-01"), ("effective_to", "2026-09-30")])
def test_plan_not_in_force_for_the_period_exits_2(tmp_path, capsys, field, value):
    """A plan that starts after, or ends before, the period exits 2 and writes nothing."""
    plan = plan_file(tmp_path, lambda doc: doc.update({field: value}))
    data = good_data(tmp_path / "data")
    code, _, err = cli(capsys, "run", "--plan", plan, "--data", data, "--period", PERIOD, "--out", tmp_path / "store")
    assert code == 2
    assert "not in period 2026-10" in err
    assert not (tmp_path / "store").exists()


def test_plan_in_force_for_part_of_the_period_runs(tmp_path, capsys):
    """A plan that takes effect mid-month is in force for that month."""
    plan = plan_file(tmp_path, lambda doc: doc.update(effective_from="2026-10-15"))
    data = good_data(tmp_path / "data")
    code, _, _ = cli(
        capsys, "run", "--plan", plan, "--data", data, "--period", PERIOD, "--out", tmp_path / "s", "--quiet"
    )
    assert code == 0


def test_unknown_plan_id_exits_2(tmp_path, capsys):
    """--plan with neither a file nor a bundled id exits 2 naming the bundled plans."""
    code, _, err = cli(
        capsys, "run", "--plan", "qwest-2031", "--data", tmp_path, "--period", PERIOD, "--out", tmp_path / "store"
    )
    assert code == 2
    assert "qwest-2031" in err and "example-qc" in err


def test_plan_with_problems_exits_2_listing_every_problem(tmp_path, capsys):
    """A plan with several problems exits 2 and prints each one with its pointer, sorted."""

    def break_it(doc):
        doc["measures"][0]["value"]["from"] = "sent_at"
        doc["measures"][1]["period_by"] = "due_date"
        doc["products"][3]["retail_analog"] = "pots2"

    plan = plan_file(tmp_path, break_it)
    code, _, err = cli(
        capsys, "run", "--plan", plan, "--data", tmp_path, "--period", PERIOD, "--out", tmp_path / "store"
    )
    assert code == 2
    lines = [line.strip() for line in err.splitlines()]
    assert lines[0] == f"carrier-sla: plan {plan}: 3 problem(s)"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "/measures/0/value/from",
        "/measures/1/period_by",
        "/products/3/retail_analog",
    ]


def test_yaml_plan_path_is_accepted(tmp_path, capsys):
    """--plan accepts a YAML file."""
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "plan.yaml"
    doc = example_document()
    keep_measures(doc, (doc["measures"][0]["id"],))
    path.write_text(yaml.safe_dump(doc))
    data = good_data(tmp_path / "data")
    code, _, _ = cli(
        capsys, "run", "--plan", path, "--data", data, "--period", PERIOD, "--out", tmp_path / "s", "--quiet"
    )
    assert code == 0
    assert manifests(tmp_path / "s")[0]["plan"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------- input errors


def test_missing_input_file_exits_3_and_keeps_the_published_period(tmp_path, capsys):
    """Without troubles.csv the run exits 3 with one message naming the file, and the period's earlier outputs stay."""
    store = tmp_path / "store"
    data = good_data(tmp_path / "data")
    assert (
        cli(capsys, "run", "--plan", "example-qc", "--data", data, "--period", PERIOD, "--out", store, "--quiet")[0]
        == 0
    )
    before = snapshot(store)
    (data / "troubles.csv").unlink()
    code, _, err = cli(capsys, "run", "--plan", "example-qc", "--data", data, "--period", PERIOD, "--out", store)
    assert code == 3
    assert err.count("carrier-sla: input error:") == 1
    assert "troubles.csv" in err and str(data) in err
    assert snapshot(store) == before
    assert manifests(store)[-1]["exit_code"] == 3


def test_missing_required_column_exits_3_naming_file_and_column(tmp_path, capsys, small_plan):
    """An orders file without due_date exits 3 with one message naming file and column; nothing is published."""
    data = good_data(tmp_path / "data")
    columns = ["order_id", "carrier_id", "state", "product", "order_type", "dispatch", "received_at", "completed_at"]
    write_csv(
        data / "orders.csv",
        [
            {
                "order_id": "O1",
                "carrier_id": "CLEC01",
                "state": "CO",
                "product": "resale_pots",
                "order_type": "new",
                "dispatch": "false",
                "received_at": "2026-10-05 09:00:00",
                "completed_at": "",
            }
        ],
        columns,
    )
    code, _, err = cli(
        capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", tmp_path / "store"
    )
    assert code == 3
    assert err.strip().splitlines() == [
        f"carrier-sla: input error: {data / 'orders.csv'}: missing required column due_date for orders"
    ]
    assert snapshot(tmp_path / "store") == {}


def test_missing_data_directory_exits_3(tmp_path, capsys, small_plan):
    """A --data directory that does not exist is an input error, exit 3."""
    code, _, err = cli(
        capsys,
        "run",
        "--plan",
        small_plan,
        "--data",
        tmp_path / "nowhere",
        "--period",
        PERIOD,
        "--out",
        tmp_path / "store",
    )
    assert code == 3
    assert "nowhere" in err


def test_reject_rate_above_the_limit_exits_3_and_the_option_raises_the_limit(tmp_path, capsys, small_plan):
    """1 bad order of 4 fails at the default 1% (exit 3, rejects under runs/RUN_ID/); --max-reject-rate 0.5 passes."""
    data = write_inputs(tmp_path / "data", [{}, {}, {}, {"state": "TX"}], [], [])
    store = tmp_path / "store"
    code, _, err = cli(capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", store)
    assert code == 3
    assert "orders: 1 of 4 rows rejected (25.00%)" in err
    assert snapshot(store) == {}
    failed = manifests(store)[0]
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    assert pq.read_table(store / "runs" / failed["run_id"] / "rejects.parquet").num_rows == 1

    code, _, _ = cli(
        capsys,
        "run",
        "--plan",
        small_plan,
        "--data",
        data,
        "--period",
        PERIOD,
        "--out",
        store,
        "--max-reject-rate",
        "0.5",
        "--quiet",
    )
    assert code == 0
    assert pq.read_table(store / "rejects" / f"period={PERIOD}" / "part-0.parquet").num_rows == 1


def test_unexpected_error_exits_5(tmp_path, capsys, small_plan, monkeypatch):
    """An exception the library did not mean to raise is reported with its traceback and exit 5."""

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "compute", boom)
    data = good_data(tmp_path / "data")
    code, _, err = cli(
        capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", tmp_path / "store"
    )
    assert code == 5
    assert "RuntimeError: boom" in err and "unexpected internal error (exit 5)" in err
    assert manifests(tmp_path / "store")[-1]["exit_code"] == 5
    assert snapshot(tmp_path / "store") == {}


def test_store_that_cannot_be_written_exits_5(tmp_path, capsys, small_plan):
    """An --out that is a regular file cannot hold a store: a store error, exit 5."""
    data = good_data(tmp_path / "data")
    out = tmp_path / "store"
    out.write_text("not a folder")
    code, _, err = cli(capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", out)
    assert code == 5
    assert err.startswith("carrier-sla: store error:")
    assert out.read_text() == "not a folder"


def test_period_without_records_completes_and_says_so(tmp_path, capsys):
    """Inputs with headers and no rows, run with --allow-empty, give a completed run (exit 0) that
    prints 'no results'."""
    data = write_inputs(tmp_path / "data", [], [], [])
    code, out, _ = cli(
        capsys,
        "run",
        "--plan",
        "example-qc",
        "--data",
        data,
        "--period",
        PERIOD,
        "--out",
        tmp_path / "store",
        "--allow-empty",
    )
    assert code == 0
    assert "inputs: 0 rows read, 0 rejected" in out and "no results" in out
    assert manifests(tmp_path / "store")[0]["verdicts"] == {}


# ------------------------------------------------------------------------------ validate


def test_validate_plan_only_exits_0(capsys):
    """validate --plan reports the plan's id, version and sizes and exits 0."""
    code, out, _ = cli(capsys, "validate", "--plan", "example-qc")
    assert code == 0
    assert out.startswith("plan example-qc 1.0.0 OK: 8 measures, 8 products, 5 states")


def test_validate_checks_columns_without_computing(tmp_path, capsys, monkeypatch):
    """validate --data checks every input file's columns, and the years of holidays its accepted records
    need (here none: the one order is rejected), and never runs the pipeline."""

    def forbidden(*args, **kwargs):
        raise AssertionError("validate must not compute")

    monkeypatch.setattr(pipeline, "run", forbidden)
    monkeypatch.setattr(pipeline, "compute", forbidden)
    data = write_inputs(tmp_path / "data", [{"state": "TX", "received_at": "garbage"}], [{}], [{}])
    code, out, _ = cli(capsys, "validate", "--plan", "example-qc", "--data", data)
    assert code == 0
    assert out.splitlines()[1:] == [
        *(f"{t}: {data / (t + '.csv')} has every required column" for t in ("orders", "troubles", "lines")),
        "holidays: no record's business days to count",
    ]
    assert not list(tmp_path.glob("**/*.parquet"))


def test_validate_reports_a_missing_column_with_exit_3(tmp_path, capsys):
    """validate --data exits 3 naming the file and the missing column."""
    data = good_data(tmp_path / "data")
    write_csv(data / "lines.csv", [{"period": PERIOD, "carrier_id": "CLEC01", "state": "CO", "product": "resale_pots"}])
    code, _, err = cli(capsys, "validate", "--plan", "example-qc", "--data", data)
    assert code == 3
    assert f"{data / 'lines.csv'}: missing required column(s) lines_in_service" in err


def test_validate_reads_parquet_schemas_and_partition_columns(tmp_path, capsys, small_plan):
    """validate accepts a Hive-partitioned Parquet folder whose partition supplies a required column."""
    import pyarrow as pa

    data = tmp_path / "data"
    folder = data / "orders" / "state=CO"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            c: pa.array(["x"], pa.string())
            for c in (
                "order_id",
                "carrier_id",
                "product",
                "order_type",
                "dispatch",
                "received_at",
                "due_date",
                "completed_at",
            )
        }
    )
    pq.write_table(table, folder / "part.parquet")
    code, out, _ = cli(capsys, "validate", "--plan", small_plan, "--data", data)
    assert code == 0
    assert f"orders: {folder / 'part.parquet'} has every required column" in out
    pq.write_table(table.drop_columns(["due_date"]), folder / "part.parquet")
    assert cli(capsys, "validate", "--plan", small_plan, "--data", data)[0] == 3


def test_validate_bad_plan_exits_2(tmp_path, capsys):
    """validate of a plan with problems exits 2 listing them."""
    plan = plan_file(tmp_path, lambda doc: doc["states"][0].update(time_zone="Mars/Olympus"))
    code, _, err = cli(capsys, "validate", "--plan", plan)
    assert code == 2
    assert "/states/0/time_zone: unknown IANA time zone 'Mars/Olympus'" in err


# ------------------------------------------------------------------------------ holidays

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def interval_plan(tmp_path: Path, without_years: tuple[str, ...]) -> Path:
    """example-qc cut down to PO-5 and OP-4 (the measures counting business days), its holidays
    leaving out some years."""
    doc = keep_measures(example_document(), ("PO-5", "OP-4"))
    doc["statistics"] = dict(PLAIN_STATISTICS)
    for year in without_years:
        del doc["calendar"]["holidays"][year]
    path = tmp_path / "interval-plan.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_run_needing_a_year_of_holidays_the_plan_does_not_list_exits_2_naming_it(tmp_path, capsys):
    """OP-4 of January 2026 counts business days of orders received in December 2025: a plan without
    2025's holidays exits 2 naming 2025 and its pointer; the manifest records exit 2; nothing is published."""
    plan = interval_plan(tmp_path, ("2025",))
    data = FIXTURES / "op4-year-end"
    code, _, err = cli(capsys, "run", "--plan", plan, "--data", data, "--period", "2026-01", "--out", tmp_path / "out")
    assert code == 2
    assert "/calendar/holidays: no holidays listed for 2025, a year OP-4's business days reach for 2 record(s)" in err
    [manifest] = manifests(tmp_path / "out")
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 2)
    assert "no holidays listed for 2025" in manifest["error"]
    assert not (tmp_path / "out" / "current").exists()


def test_validate_data_names_the_years_of_holidays_the_records_need_and_the_plan_does_not_list(tmp_path, capsys):
    """validate --data reads the records: with every year listed it says which years they reach (exit 0);
    without 2025 it names 2025 for each measure and exits 2."""
    data = FIXTURES / "op4-year-end"
    code, out, _ = cli(capsys, "validate", "--plan", interval_plan(tmp_path, ()), "--data", data)
    assert code == 0
    assert out.splitlines()[-1] == "holidays: the records' business days reach 2025-2026, each listed by the plan"
    code, _, err = cli(capsys, "validate", "--plan", interval_plan(tmp_path, ("2025",)), "--data", data)
    assert code == 2
    assert "plan " in err and "2 problem(s)" in err
    for measure in ("OP-4", "PO-5"):
        assert (
            f"no holidays listed for 2025, a year {measure}'s business days reach for 2 record(s) of the input" in err
        )


def test_holidays_prints_a_list_that_pastes_into_a_plan_that_validates(tmp_path, capsys):
    """`holidays --country US --years 2025-2026` prints the holidays package's dates per year as JSON;
    pasted as calendar.holidays the plan validates, and it lists exactly those dates."""
    import holidays

    code, out, err = cli(capsys, "holidays", "--country", "US", "--years", "2025-2026")
    assert code == 0 and "paste as calendar.holidays" in err
    listed = json.loads(out)
    assert list(listed) == ["2025", "2026"]
    assert {"date": "2026-10-12", "name": "Columbus Day"} in listed["2026"]
    package = sorted(d.isoformat() for d in holidays.country_holidays("US", years=range(2024, 2028)))
    assert [h["date"] for year in listed.values() for h in year] == [d for d in package if d[:4] in ("2025", "2026")]
    plan = plan_file(tmp_path, lambda doc: doc["calendar"].update(holidays=listed))
    code, out, _ = cli(capsys, "validate", "--plan", plan)
    assert code == 0 and " OK: " in out
    assert load_plan(plan).states[0].holidays.listed_years == (2025, 2026)


def test_a_run_and_validate_never_import_the_holidays_package(tmp_path):
    """Verdicts depend on the plan's list only: a run and validate --data, in a fresh interpreter, leave the
    holidays package unimported (only the holidays command and the generator use it)."""
    script = (
        "import sys\n"
        "from carrier_sla.cli.main import main\n"
        f"data = {str(FIXTURES / 'op4-year-end')!r}\n"
        "assert main(['validate', '--plan', 'example-qc', '--data', data]) == 0\n"
        f"assert main(['run', '--plan', 'example-qc', '--data', data, '--period', '2026-01', '--out', {str(tmp_path / 'out')!r}, '--quiet', '--allow-empty']) == 0\n"
        "assert 'holidays' not in sys.modules, 'the holidays package was imported'\n"
    )
    root = Path(carrier_sla.__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--country", "US", "--years", "2026-2025"],
        ["--country", "US", "--years", "26"],
        ["--country", "US", "--years", "1990"],
        ["--country", "XX", "--years", "2026"],
        ["--country", "US"],
    ],
)
def test_holidays_with_bad_arguments_exits_2(capsys, args):
    """Years reversed, not a year, outside the calendars, an unknown country or no years: exit 2."""
    code, out, err = cli(capsys, "holidays", *args)
    assert code == 2 and out == "" and err


# --------------------------------------------------------------------------------- plans


def test_plans_lists_the_bundled_plans(capsys):
    """plans prints one line per bundled plan: id, version, title."""
    code, out, _ = cli(capsys, "plans")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("example-ca\t1.0.0\tExample plan modelled on the California")
    assert lines[1].startswith("example-qc\t1.0.0\tExample plan modelled on the CenturyLink QC")


# ------------------------------------------------------------------------------ generate


def test_generate_writes_data_that_runs(tmp_path, capsys):
    """generate writes the three inputs deterministically, and run accepts them."""
    pytest.importorskip("carrier_sla.synthetic.generate")
    args = ["generate", "--period", PERIOD, "--periods", "1", "--scale", "200", "--seed", "7"]
    code, out, _ = cli(capsys, *args, "--out", tmp_path / "g1")
    assert code == 0 and out.startswith("wrote ")
    assert cli(capsys, *args, "--out", tmp_path / "g2")[0] == 0
    for name in ("orders.csv", "troubles.csv", "lines.csv"):
        assert (tmp_path / "g1" / name).read_bytes() == (tmp_path / "g2" / name).read_bytes()
    code, _, err = cli(
        capsys,
        "run",
        "--plan",
        "example-qc",
        "--data",
        tmp_path / "g1",
        "--period",
        PERIOD,
        "--out",
        tmp_path / "store",
        "--quiet",
    )
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    "args",
    [
        ["--period", "2026-13"],
        ["--period", PERIOD, "--scale", "0"],
        ["--period", PERIOD, "--periods", "0"],
        ["--period", PERIOD, "--format", "xlsx"],
    ],
)
def test_generate_with_bad_arguments_exits_2(tmp_path, capsys, args):
    """generate with a bad period, scale, number of periods or format exits 2."""
    pytest.importorskip("carrier_sla.synthetic.generate")
    assert cli(capsys, "generate", "--out", tmp_path / "g", *args)[0] == 2


# ------------------------------------------------------------------- manifest and store


def _finished_run(folder: Path) -> tuple[Path, Path, dict]:
    """A completed CLI run of example-qc over data with one rejected row: (store, data, manifest)."""
    data = write_inputs(folder / "data", [*GOOD_ORDERS, {"product": "fiber"}], GOOD_TROUBLES, GOOD_LINES)
    store = folder / "store"
    code = main(
        [
            "run",
            "--plan",
            "example-qc",
            "--data",
            str(data),
            "--period",
            PERIOD,
            "--out",
            str(store),
            "--max-reject-rate",
            "0.5",
            "--quiet",
        ]
    )
    assert code == 0
    (manifest,) = manifests(store)
    return store, data, manifest


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory):
    """One finished run shared by the tests that only read it."""
    return _finished_run(tmp_path_factory.mktemp("finished"))


@pytest.fixture
def finished(tmp_path):
    """A finished run of the test's own, for tests that run again into its store."""
    return _finished_run(tmp_path)


def test_manifest_records_the_run(finished_once):
    """The manifest names the run, its times, the package and plan, and the exit code of a completed run."""
    store, _, manifest = finished_once
    assert (store / "runs" / manifest["run_id"] / "manifest.json").is_file()
    started = datetime.fromisoformat(manifest["started_at"])
    assert started <= datetime.fromisoformat(manifest["finished_at"])
    assert manifest["package_version"] == carrier_sla.__version__
    plan = load_plan("example-qc")
    assert manifest["plan"]["id"] == "example-qc" and manifest["plan"]["version"] == "1.0.0"
    assert manifest["plan"]["sha256"] == plan.sha256
    assert manifest["period"] == PERIOD
    assert (manifest["status"], manifest["exit_code"]) == ("completed", 0)


def test_manifest_lists_each_input_with_hash_and_row_counts(finished_once):
    """Each input file is listed with its sha256 and rows read = accepted + rejected."""
    _, data, manifest = finished_once
    inputs = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert set(inputs) == {"orders.csv", "troubles.csv", "lines.csv"}
    for name, entry in inputs.items():
        assert entry["sha256"] == hashlib.sha256((data / name).read_bytes()).hexdigest()
        assert entry["rows_read"] == entry["rows_accepted"] + entry["rows_rejected"]
    assert (inputs["orders.csv"]["rows_read"], inputs["orders.csv"]["rows_rejected"]) == (5, 1)
    assert (inputs["troubles.csv"]["rows_read"], inputs["troubles.csv"]["rows_rejected"]) == (3, 0)


def test_manifest_lists_each_output_with_its_row_count_and_the_verdict_counts(finished_once):
    """Each output's row count matches its Parquet file, and the verdict counts match the results table."""
    store, _, manifest = finished_once
    names = [o["table"] for o in manifest["outputs"]]
    measures = load_plan("example-qc").measures
    statements = [n for n in names if n.startswith("statements/")]
    assert sorted(set(names) - set(statements)) == sorted(
        ["results", "rejects", "remedies", "escalation", "adjustments", *(f"records/{m.id}" for m in measures)]
    )
    for output in manifest["outputs"]:
        if output["table"].startswith("statements/"):  # CSV: its lines and a total line
            assert len(pd.read_csv(output["path"])) == output["rows"] + 1, output["table"]
        else:
            assert pq.read_metadata(output["path"]).num_rows == output["rows"], output["table"]
    rejects = next(o for o in manifest["outputs"] if o["table"] == "rejects")
    assert rejects["rows"] == 1
    results = pq.read_table(store / "results" / f"period={PERIOD}" / "part-0.parquet").to_pandas()
    assert manifest["verdicts"] == dict(Counter(results["status"]))
    assert sum(manifest["verdicts"].values()) == len(results) > 0


def test_parquet_outputs_carry_key_value_metadata(finished_once):
    """Every Parquet output carries the run id, plan id/version/sha256, package version and period."""
    _, _, manifest = finished_once
    for output in manifest["outputs"]:
        if not output["path"].endswith(".parquet"):
            continue
        meta = {k.decode(): v.decode() for k, v in pq.read_schema(output["path"]).metadata.items()}
        assert meta["carrier_sla.run_id"] == manifest["run_id"]
        assert meta["carrier_sla.plan_sha256"] == manifest["plan"]["sha256"]
        assert meta["carrier_sla.plan_id"] == "example-qc" and meta["carrier_sla.plan_version"] == "1.0.0"
        assert meta["carrier_sla.version"] == carrier_sla.__version__
        assert meta["carrier_sla.period"] == PERIOD


def _tables(store: Path) -> dict[str, object]:
    """Every published Parquet table of the store without its key-value metadata."""
    return {
        str(p.relative_to(store)): pq.read_table(p).replace_schema_metadata(None)
        for table in ("results", "records", "rejects", "remedies", "escalation")
        for p in sorted((store / table).rglob("*.parquet"))
    }


def test_rerunning_a_period_replaces_its_outputs_with_identical_tables(finished, capsys):
    """Running the same period again replaces its outputs (new run id) with tables holding the same data."""
    store, data, first = finished
    before = _tables(store)
    code = cli(
        capsys,
        "run",
        "--plan",
        "example-qc",
        "--data",
        data,
        "--period",
        PERIOD,
        "--out",
        store,
        "--max-reject-rate",
        "0.5",
        "--quiet",
    )[0]
    assert code == 0
    second = manifests(store)[-1]
    assert second["run_id"] != first["run_id"]
    after = _tables(store)
    assert sorted(after) == sorted(before)
    for name, table in after.items():
        assert table.equals(before[name]), name
    results = store / "results" / f"period={PERIOD}" / "part-0.parquet"
    assert pq.read_schema(results).metadata[b"carrier_sla.run_id"].decode() == second["run_id"]
    assert not (store / ".staging").exists() or not any((store / ".staging").iterdir())


def test_rerunning_with_changed_data_leaves_nothing_of_the_old_outputs(finished, capsys):
    """A re-run over changed data replaces the period's records and rejects: nothing of the old run remains."""
    store, data, _ = finished
    write_inputs(data, GOOD_ORDERS[:3], GOOD_TROUBLES, GOOD_LINES)
    assert (
        cli(capsys, "run", "--plan", "example-qc", "--data", data, "--period", PERIOD, "--out", store, "--quiet")[0]
        == 0
    )
    records = pq.read_table(store / "records" / f"period={PERIOD}" / "measure_id=OP-3").to_pandas()
    assert sorted(records["record_id"]) == ["O1", "O2", "O3"]
    assert pq.read_table(store / "rejects" / f"period={PERIOD}" / "part-0.parquet").num_rows == 0


def test_another_period_leaves_the_first_one_in_place(finished, capsys):
    """Publishing 2026-11 does not touch the outputs of 2026-10."""
    store, data, _ = finished
    before = snapshot(store)
    november = write_inputs(
        data.parent / "november",
        [
            {
                "received_at": "2026-11-02 09:00:00",
                "foc_at": "2026-11-02 10:00:00",
                "due_date": "2026-11-05",
                "completed_at": "2026-11-05 10:00:00",
            }
        ],
        [],
        [],
    )
    assert (
        cli(
            capsys,
            "run",
            "--plan",
            "example-qc",
            "--data",
            november,
            "--period",
            "2026-11",
            "--out",
            store,
            "--quiet",
            "--allow-empty",
        )[0]
        == 0
    )
    after = snapshot(store)
    assert {k: v for k, v in after.items() if "period=2026-10" in k} == before
    assert any("period=2026-11" in k for k in after)


# ------------------------------------------------------------------------- subprocesses


def test_installed_console_script_lists_plans():
    """The installed carrier-sla script runs as a real process and exits 0."""
    done = subprocess.run([str(BIN / "carrier-sla"), "plans"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "example-qc\t" in done.stdout


def test_python_dash_m_runs_and_maps_errors_to_exit_codes(tmp_path, small_plan):
    """python -m carrier_sla exits 0 on a good run and 2 on an unknown option, as a real process."""
    data = good_data(tmp_path / "data")
    base = [
        sys.executable,
        "-m",
        "carrier_sla",
        "run",
        "--plan",
        str(small_plan),
        "--period",
        PERIOD,
        "--out",
        str(tmp_path / "store"),
    ]
    done = subprocess.run([*base, "--data", str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "inputs: 4 rows read, 0 rejected" in done.stdout
    done = subprocess.run([*base, "--data", str(data), "--bogus"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stderr


def test_a_second_run_on_a_store_in_use_exits_4_at_once(tmp_path, capsys, small_plan):
    """While another run holds the store, run exits 4 with a message naming the holder; afterwards it runs."""
    from carrier_sla.store.layout import StoreLock

    data = good_data(tmp_path / "data")
    out = tmp_path / "store"
    with StoreLock(out, "RUN-A"):
        code, _, err = cli(capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", out)
        assert code == 4
        assert "in use by another run (run RUN-A" in err
        assert not (out / "results").exists()
    assert cli(capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", out, "--quiet")[0] == 0


def test_a_lock_left_by_a_killed_run_is_recovered_and_its_leftovers_cleared(tmp_path, capsys, small_plan):
    """A run killed with SIGKILL while holding the lock leaves no stale lock; the next run clears its staging."""
    import signal
    import time

    out = tmp_path / "store"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom carrier_sla.store.layout import StoreLock\n"
            f"lock = StoreLock({str(out)!r}, 'KILLED').__enter__()\nprint('locked', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    (out / ".staging" / "KILLED" / "results").mkdir(parents=True)
    data = good_data(tmp_path / "data")
    assert cli(capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", out)[0] == 4
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    time.sleep(0.1)
    assert cli(capsys, "run", "--plan", small_plan, "--data", data, "--period", PERIOD, "--out", out, "--quiet")[0] == 0
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())
