"""Ranges of months: run --period FIRST..LAST runs the months in order under one lock, stops at the
first failure with its exit code, and publishes what the months run one by one would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_csv
from test_plan_versions import version_documents, versions_folder
from test_remedy_runs import data_folder

from carrier_sla.cli.main import main
from carrier_sla.engine import months, pipeline
from carrier_sla.errors import StoreBusy, UsageError
from carrier_sla.plan.versions import load_versions
from carrier_sla.store import layout as store
from carrier_sla.store.view import read_table

MONTHS = ("2026-08", "2026-09", "2026-10")
TODAY = "2026-12-04"


def tables(out: Path, period: str) -> dict[str, pd.DataFrame]:
    """The published tables of a month, without what names the run (run ids live in metadata and manifests)."""
    frames = {t: read_table(out, t, period).to_pandas() for t in ("results", "remedies", "escalation")}
    frames["statements"] = pd.concat(
        [
            pd.read_csv(p, dtype=str).assign(file=p.name)
            for p in sorted((out / "statements" / f"period={period}").glob("*"))
        ]
    )
    return frames


def test_parse_range():
    """FIRST..LAST gives the months in order, across a year end; a reversed or malformed range is refused."""
    assert months.parse_range("2025-11..2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert months.parse_range("2026-10..2026-10") == ["2026-10"]
    with pytest.raises(UsageError, match="ends before it begins"):
        months.parse_range("2026-10..2026-08")
    with pytest.raises(UsageError, match="not YYYY-MM"):
        months.parse_range("2026-10..")


def test_a_range_run_equals_the_same_months_run_one_by_one(tmp_path, capsys):
    """run --period 2026-08..2026-10 under a folder of versions publishes the very results, ledgers,
    escalation and statements of three runs one by one, each month under its own version."""
    folder = versions_folder(tmp_path)
    data = data_folder(tmp_path, "data", {"2026-08": 10, "2026-09": 10, "2026-10": 4})
    common = ["--plan", str(folder), "--data", str(data), "--max-reject-rate", "1", "--today", TODAY]
    ranged, single = tmp_path / "ranged", tmp_path / "single"
    assert main(["run", *common, "--period", "2026-08..2026-10", "--out", str(ranged)]) == 0
    err = capsys.readouterr().err
    assert "--period 2026-08..2026-10: 3 month(s) in order, one lock" in err
    assert [line.split()[1] for line in err.splitlines() if line.endswith(")") and "completed (run" in line] == list(
        MONTHS
    )
    for period in MONTHS:
        assert main(["run", *common, "--period", period, "--out", str(single), "--quiet"]) == 0
    for period in MONTHS:
        a, b = tables(ranged, period), tables(single, period)
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    versions = {p: set(read_table(ranged, "results", p).to_pandas()["plan_version"]) for p in MONTHS}
    assert versions == {"2026-08": {"1.0.0"}, "2026-09": {"1.0.0"}, "2026-10": {"2.0.0"}}


def test_a_range_stops_at_the_first_failing_month_with_its_exit_code(tmp_path, capsys):
    """An unmatched excusal of September: August is published, September fails with exit 3 (input),
    October is not run, and the message says so."""
    data = data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10))
    write_csv(
        data / "excusals.csv",
        [{"period": "2026-09", "measure_id": "OP-3", "state": "CO", "product": "resale_pots", "submeasure": "all",
          "carrier_id": "CLEC99", "reason": "storm", "reference": "PUC-1", "approved_on": "2026-10-20"}],
    )  # fmt: skip
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(data), "--out", str(out), "--max-reject-rate", "1"]
    args.append("--allow-empty")  # orders only: the repair measures have no troubles
    assert main([*args, "--period", "2026-08..2026-10", "--quiet", "--today", TODAY]) == 3
    err = capsys.readouterr().err
    assert "stopped at 2026-09; completed: 2026-08; not run: 2026-10" in err
    assert "CLEC99" in err
    assert store.published_periods(out, "results") == ["2026-08"]


def test_a_range_holds_the_lock_between_its_months(tmp_path):
    """Between two months of a range no other run can take the store: it is busy (exit 4)."""
    data = data_folder(tmp_path, "data", {"2026-08": 10, "2026-09": 10})
    out = tmp_path / "store"
    plan = load_versions("example-qc").for_period("2026-08")
    refused = []

    def other_run(result: pipeline.RunResult) -> None:
        with pytest.raises(StoreBusy, match=r"range 2026-08\.\.2026-09"):
            pipeline.run(plan, data, "2026-09", out, max_reject_rate=1.0)
        refused.append(result.period)

    months.run_months(
        load_versions("example-qc"),
        data,
        ["2026-08", "2026-09"],
        out,
        done=other_run,
        max_reject_rate=1.0,
        today=dt.date(2026, 12, 4),
        allow_empty=True,  # orders only
    )
    assert refused == ["2026-08", "2026-09"]
    assert store.published_periods(out, "results") == ["2026-08", "2026-09"]


def test_a_range_with_a_month_no_version_covers_runs_nothing(tmp_path, capsys):
    """Every month needs a version before anything runs: exit 2, nothing published."""
    v1, v2 = version_documents()
    v1["effective_from"] = "2026-09-01"
    folder = versions_folder(tmp_path, v1, v2)
    data = data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10))
    out = tmp_path / "store"
    args = ["run", "--plan", str(folder), "--data", str(data), "--out", str(out), "--period", "2026-08..2026-10"]
    assert main([*args, "--quiet"]) == 2
    assert "no version of plan example-qc" in capsys.readouterr().err
    assert store.published_periods(out, "results") == []
