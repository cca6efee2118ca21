"""Approved exclusions (excusals): an excused cell keeps its verdict and pays nothing; an excused
record is excluded as approved:REFERENCE; an excusal that matches nothing is an input error (exit 3).

OP-3 every month (test_remedy_runs.month_orders, test_trueup's arithmetic): CLEC01 10 of 20 late is a
miss of 8 occurrences; Tier 1 pays $150, $250, $500 in consecutive months 1, 2, 3; Tier 2 (the
all-CLEC aggregate, CLEC01 alone here) $500 from month 3. Orders are numbered in month order, 100
retail then 20 CLEC01 orders a month: October's CLEC01 orders are O341..O360, the late ones O341..O350.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_csv
from test_remedy_runs import data_folder
from test_trueup import op3_plan

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.errors import InputDataError
from carrier_sla.inputs import excusals
from carrier_sla.readers import package
from carrier_sla.store import layout as store
from carrier_sla.store.view import read_table

D = Decimal
MONTHS = ("2026-08", "2026-09", "2026-10")
TODAY = dt.date(2026, 12, 4)
STORM = {"reason": "force majeure: ice storm of 2026-09-14", "reference": "PUC-26-0417", "approved_on": "2026-11-02"}
CELL = {"measure_id": "OP-3", "state": "CO", "product": "resale_pots", "submeasure": "all"}
COLUMNS = ["period", "measure_id", "state", "product", "submeasure", "carrier_id", "record_type", "record_id",
           "reason", "reference", "approved_on"]  # fmt: skip


def with_excusals(folder: Path, rows: list[dict]) -> Path:
    write_csv(folder / "excusals.csv", rows, COLUMNS)
    return folder


def run_all(plan, data: Path, out: Path, months=MONTHS, **options) -> list[pipeline.RunResult]:
    return [pipeline.run(plan, data, p, out, max_reject_rate=1.0, today=TODAY, **options) for p in months]


def ledger(out: Path, period: str) -> dict[tuple[str, str], tuple[int, D]]:
    frame = read_table(out, "remedies", period).to_pandas()
    return {(r.tier, r.payee): (int(r.consecutive_months), r.amount) for r in frame.itertuples()}


def cell(out: Path, period: str, scope: str = "clec") -> dict:
    results = read_table(out, "results", period).to_pandas()
    return results[(results["measure_id"] == "OP-3") & (results["scope"] == scope)].iloc[0].to_dict()


@pytest.fixture(scope="module")
def excused_store(tmp_path_factory):
    """September's CLEC01 cell and its all-CLEC aggregate excused; October's late orders but one excused."""
    tmp = tmp_path_factory.mktemp("excusals")
    data = data_folder(tmp, "data", dict.fromkeys(MONTHS, 10))
    rows = [{"period": "2026-09", **CELL, "carrier_id": c, **STORM} for c in ("CLEC01", "all")]
    rows += [
        {"period": "2026-10", "record_type": "orders", "record_id": f"O{i}", "reason": "CLEC's own conduct: "
         "customer not ready", "reference": "PUC-26-0500", "approved_on": "2026-11-20"}
        for i in range(341, 350)
    ]  # fmt: skip
    with_excusals(data, rows)
    out = tmp / "store"
    return out, data, run_all(op3_plan(), data, out)


def test_an_excused_cell_keeps_its_verdict_and_figures_and_pays_nothing(excused_store):
    """September's cells stay missed with their figures, marked excused with the reference; they pay
    nothing, and escalation counts the excused month as no verdict: August is month 1 ($1,200), and
    without October's excused records it would be month 2."""
    out, _, runs = excused_store
    for scope in ("clec", "clec_aggregate"):
        september = cell(out, "2026-09", scope)
        assert (september["status"], september["clec_n"], september["clec_value"]) == ("miss", 20, 50.0)
        assert september["excused"] and september["excusal_reference"] == "PUC-26-0417"
        assert september["excusal_reason"] == STORM["reason"]
    assert ledger(out, "2026-08") == {("tier1", "CLEC01"): (1, D("1200.00"))}
    assert ledger(out, "2026-09") == {}
    escalation = read_table(out, "escalation", "2026-09").to_pandas().set_index("tier")["consecutive_months"]
    assert escalation.to_dict() == {"tier1": 1, "tier2": 1}  # August's miss, September's excused: unchanged
    assert not cell(out, "2026-08")["excused"]
    assert runs[1].manifest["excusals"]["cells"][0]["reference"] == "PUC-26-0417"


def test_escalation_after_an_excused_month_continues_from_before_it(tmp_path):
    """Only September's cells excused: October is month 2 of escalation (8 x $250 = $2,000), and Tier 2,
    from month 3, pays nothing; without the excusal October is month 3 ($4,000 and $4,000)."""
    rows = [{"period": "2026-09", **CELL, "carrier_id": c, **STORM} for c in ("CLEC01", "all")]
    excused = with_excusals(data_folder(tmp_path, "excused", dict.fromkeys(MONTHS, 10)), rows)
    run_all(op3_plan(), excused, tmp_path / "excused-store")
    assert ledger(tmp_path / "excused-store", "2026-10") == {("tier1", "CLEC01"): (2, D("2000.00"))}
    run_all(op3_plan(), data_folder(tmp_path, "plain", dict.fromkeys(MONTHS, 10)), tmp_path / "plain-store")
    assert ledger(tmp_path / "plain-store", "2026-10") == {
        ("tier1", "CLEC01"): (3, D("4000.00")),
        ("tier2", "state_fund:CO"): (3, D("4000.00")),
    }


def test_record_excusals_exclude_the_records_as_approved(excused_store):
    """October: 9 of the 10 late CLEC01 orders excluded as approved:PUC-26-0500, before the plan's rules;
    10 of 11 on time (90.91%) against 95%: z = 0.0409 / 0.0692 = 0.59, met, nothing paid."""
    out, _, runs = excused_store
    october = cell(out, "2026-10")
    assert (october["clec_n"], october["clec_numerator"], october["status"]) == (11, 10, "met")
    assert october["statistic"] == pytest.approx(0.5909, abs=1e-4)
    records = pd.read_parquet(out / "records" / "period=2026-10" / "measure_id=OP-3")
    approved = records[records["exclusion_reason"] == "approved:PUC-26-0500"]
    assert sorted(approved["record_id"]) == sorted(f"O{i}" for i in range(341, 350))
    assert not approved["included"].any()
    assert ledger(out, "2026-10") == {}
    assert runs[2].manifest["excusals"]["records"] == {"approved:PUC-26-0500": 9}


def test_record_excusals_in_a_partitioned_run_are_those_of_a_whole_run(excused_store, tmp_path):
    """The approved exclusions apply partition by partition: the same records and verdicts."""
    out, data, _ = excused_store
    spread = tmp_path / "spread"
    run_all(op3_plan(), data, spread, partition_rows=100)
    for period in MONTHS:
        a = read_table(out, "results", period).to_pandas()
        b = read_table(spread, "results", period).to_pandas()
        pd.testing.assert_frame_equal(a.drop(columns="seed"), b.drop(columns="seed"))
    reasons = pd.read_parquet(spread / "records" / "period=2026-10" / "measure_id=OP-3")["exclusion_reason"]
    assert (reasons == "approved:PUC-26-0500").sum() == 9


def test_an_excusal_that_matches_no_cell_is_an_input_error_naming_it(tmp_path, capsys):
    """A cell excusal of a carrier without a cell, and a record excusal of an unknown order: exit 3,
    each named with its file and row; nothing of the month is published."""
    data = data_folder(tmp_path, "data", {"2026-10": 10})
    with_excusals(
        data,
        [
            {"period": "2026-10", **CELL, "carrier_id": "CLEC09", **STORM},
            {"period": "2026-10", "record_id": "O999", **STORM},
        ],
    )
    out = tmp_path / "store"
    with pytest.raises(InputDataError, match=r"excusals.csv row 1: cell OP-3 CO resale_pots submeasure all CLEC09"):
        pipeline.run(op3_plan(), data, "2026-10", out, max_reject_rate=1.0, today=TODAY)
    assert store.published_periods(out, "results") == []
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", "2026-10", "--out", str(out), "--quiet"]
    assert main([*args, "--max-reject-rate", "1", "--allow-empty"]) == 3  # orders only
    err = capsys.readouterr().err
    assert (
        "row 1: cell OP-3 CO resale_pots submeasure all CLEC09 of 2026-10 (reference PUC-26-0417): no such cell" in err
    )
    only_record = with_excusals(
        data_folder(tmp_path, "record", {"2026-10": 10}), [{"period": "2026-10", "record_id": "O999", **STORM}]
    )
    assert main([*args[:4], str(only_record), *args[5:], "--max-reject-rate", "1", "--allow-empty"]) == 3
    assert (
        "row 1: record O999 in every measure of 2026-10 (reference PUC-26-0417): no such record"
        in capsys.readouterr().err
    )


def test_a_malformed_excusal_row_is_an_input_error_naming_file_row_and_column(tmp_path):
    """Every bad row at once: a period not YYYY-MM, a missing reference, a record excusal naming a
    cell, a cell excusal without its carrier, an approval date that is no date, a repeated cell."""
    data = data_folder(tmp_path, "data", {"2026-10": 10})
    rows = [
        {"period": "2026-13", **CELL, "carrier_id": "CLEC01", **STORM},
        {"period": "2026-10", **CELL, "carrier_id": "CLEC01", **STORM, "reference": ""},
        {"period": "2026-10", "record_id": "O1", "state": "CO", **STORM},
        {"period": "2026-10", **CELL, **STORM},
        {"period": "2026-10", **CELL, "carrier_id": "CLEC01", **STORM, "approved_on": "2026-02-30"},
        {"period": "2026-10", **CELL, "carrier_id": "all", **STORM},
        {"period": "2026-10", **CELL, "carrier_id": "all", **STORM},
    ]
    with pytest.raises(InputDataError) as raised:
        excusals.read(with_excusals(data, rows))
    text = str(raised.value)
    assert "row 1: period: '2026-13' does not match" in text
    assert "row 2: 'reference' is a required property" in text
    assert "row 3: a record excusal (record_id) names no cell: leave state empty" in text
    assert "row 4: 'carrier_id' is a required property" in text
    assert "row 5: approved_on: '2026-02-30' is not a 'date'" in text
    assert (
        "row 7: cell OP-3 CO resale_pots submeasure all the all-CLEC aggregate of 2026-10 is excused already by" in text
    )


def test_excusals_of_other_months_are_left_to_their_runs(tmp_path):
    """August's run uses none of October's excusals (and does not call them unmatched)."""
    data = with_excusals(
        data_folder(tmp_path, "data", {"2026-08": 10}), [{"period": "2026-10", **CELL, "carrier_id": "CLEC77", **STORM}]
    )
    result = pipeline.run(op3_plan(), data, "2026-08", tmp_path / "store", max_reject_rate=1.0, today=TODAY)
    assert not result.results["excused"].any()
    assert result.manifest["excusals"]["rows"] == 1 and result.manifest["excusals"]["rows_of_period"] == 0


def test_validate_data_checks_the_excusals(tmp_path, capsys):
    """validate --data: the excusals file's rows, each well-formed and naming what the plan knows; an
    unknown measure is an input error (exit 3) naming the row."""
    data = with_excusals(
        data_folder(tmp_path, "data", {"2026-10": 10}), [{"period": "2026-10", **CELL, "carrier_id": "CLEC01", **STORM}]
    )
    assert main(["validate", "--plan", "example-qc", "--data", str(data)]) == 0
    assert "excusals.csv: 1 row(s) (1 cell(s), 0 record(s)), each well-formed" in capsys.readouterr().out
    with_excusals(data, [{"period": "2026-10", **CELL, "measure_id": "OP-33", "carrier_id": "CLEC01", **STORM}])
    assert main(["validate", "--plan", "example-qc", "--data", str(data)]) == 3
    assert "row 1: measure_id 'OP-33' is not in plan example-qc 1.0.0" in capsys.readouterr().err


def test_report_package_explain_and_diff_show_excusals(excused_store, tmp_path, capsys):
    """The report lists the excused cells (excusals.csv, HTML section); the CLEC package marks its rows;
    explain says the cell is excused and why nothing is paid, and shows approved exclusions; diff
    against a run without excusals shows the excusal and the money."""
    out, data, runs = excused_store
    assert main(["report", "--store", str(out), "--period", "2026-09", "--out", str(tmp_path / "report")]) == 0
    assert "2 cell(s) excused" in capsys.readouterr().out
    listed = pd.read_csv(tmp_path / "report" / "excusals.csv")
    assert list(listed["excusal_reference"]) == ["PUC-26-0417", "PUC-26-0417"] and set(listed["status"]) == {"miss"}
    assert 'id="excusals"' in (tmp_path / "report" / "report.html").read_text()
    manifest = package.build_package(out, "2026-09", "CLEC01", tmp_path / "package")
    results = pd.read_csv(tmp_path / "package" / "results.csv")
    assert (
        results["excused"].all()
        and "2 of the result rows are excused" in (tmp_path / "package" / "README.txt").read_text()
    )
    assert manifest["remedies"]["total"] == "0.00"
    args = ["explain", "--store", str(out), "--measure", "OP-3", "--carrier", "CLEC01"]
    assert main([*args, "--period", "2026-09"]) == 0
    text = capsys.readouterr().out
    assert f"excused by PUC-26-0417: {STORM['reason']} (the verdict stands; nothing is paid)" in text
    assert "none: excused by PUC-26-0417" in text
    assert main([*args, "--period", "2026-10", "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["population"]["clec"]["excluded"] == {"approved:PUC-26-0500": 9}
    # September again without the excusals: diff shows the excusal gone and the money it saved
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("orders.csv", "troubles.csv", "lines.csv"):
        (plain / name).write_bytes((data / name).read_bytes())
    copy = tmp_path / "store"  # the module's store stays as the other tests expect it
    shutil.copytree(out, copy, symlinks=True)
    again = pipeline.run(op3_plan(), plain, "2026-09", copy, max_reject_rate=1.0, today=TODAY)
    assert main(["diff", "--store", str(copy), "--run", runs[1].run_id, "--run", again.run_id, "--json"]) == 0
    september = json.loads(capsys.readouterr().out)["by_period"]["2026-09"]
    assert september["figures"]["counts"] == {"excusal_reference": 2}
    assert september["payments"]["total_a"] == "0.00" and september["payments"]["total_b"] == "2000.00"


def test_what_if_applies_the_months_excusals_as_a_run_does(excused_store, capsys):
    """what-if recomputes September with its excusals: an unchanged plan changes no verdict and no money."""
    out, data, _ = excused_store
    args = ["what-if", "--store", str(out), "--period", "2026-09", "--data", str(data), "--set", "/statistics/seed=0"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "cells whose status changed: 0 (with any figure changed: 0)" in text
    assert "(difference USD +0.00)" in text


def test_an_excused_miss_still_counts_as_last_months_miss_for_alpha_after_miss(tmp_path):
    """alpha_after_miss reads last month's verdicts, and an excused cell keeps its verdict: October's
    CLEC01 cell is judged at the stricter alpha after September's excused miss (the excusal takes the
    payment away, and escalation counts no month, but the cell did miss). README: Excusals."""
    from conftest import example_document, keep_measures

    from carrier_sla.plan.load import plan_from_document

    doc = keep_measures(example_document(), ("OP-3",))
    doc["statistics"] = {"parity_method": "modified_z", "alpha": 0.05, "alpha_after_miss": 0.2}
    plan = plan_from_document(doc, "example-qc OP-3, alpha after a miss")
    rows = [{"period": "2026-09", **CELL, "carrier_id": "CLEC01", **STORM}]
    data = with_excusals(data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10)), rows)
    run_all(plan, data, tmp_path / "store")
    august, september, october = (cell(tmp_path / "store", p) for p in MONTHS)
    assert (august["status"], august["alpha"]) == ("miss", 0.05)
    assert (september["status"], september["alpha"], september["excused"]) == ("miss", 0.2, True)
    assert (october["status"], october["alpha"], october["excused"]) == ("miss", 0.2, False)
