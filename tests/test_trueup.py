"""Restatement true-up: adjustment lines when a month is published final over final.

Filed: OP-3 missed in August, September and October (CLEC01 10 of 20 late: 8 occurrences, see
test_plan_versions): Tier 1 8 x $150 = $1,200, 8 x $250 = $2,000, 8 x $500 = $4,000, and Tier 2
(from month 3) 8 x $500 = $4,000 to state_fund:CO in October (CLEC01 is the only CLEC, so the
aggregate is its cell). Restated: August met (1 late), so September is month 1 ($1,200), October
month 2 ($2,000) and Tier 2 pays nothing. Adjustments, new minus paid:
    August CLEC01 0 - 1,200 = -1,200; September CLEC01 1,200 - 2,000 = -800;
    October CLEC01 2,000 - 4,000 = -2,000, state_fund:CO 0 - 4,000 = -4,000.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from conftest import PLAIN_STATISTICS, example_document, keep_measures
from test_remedy_runs import data_folder

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.plan.load import plan_from_document
from carrier_sla.readers import history, package
from carrier_sla.store.view import read_table

D = Decimal
MONTHS = ("2026-08", "2026-09", "2026-10")
TODAY = dt.date(2026, 12, 4)
FILED = {"2026-08": 10, "2026-09": 10, "2026-10": 10}
RESTATED = {"2026-08": 1, "2026-09": 10, "2026-10": 10}


def op3_plan(lookback: int | None = None):
    doc = keep_measures(example_document(), ("OP-3",))
    doc["statistics"] = dict(PLAIN_STATISTICS)
    if lookback is not None:
        doc["restatement"] = {"lookback_months": lookback}
    return plan_from_document(doc, "example-qc OP-3")


def filed_then_restated(tmp_path: Path, plan, today: dt.date = TODAY) -> tuple[Path, list, pipeline.RunResult]:
    out = tmp_path / "store"
    filed = data_folder(tmp_path, "filed", FILED)
    runs = [pipeline.run(plan, filed, p, out, max_reject_rate=1.0, today=today) for p in MONTHS]
    restated = data_folder(tmp_path, "restated", RESTATED)
    return out, runs, pipeline.run(plan, restated, "2026-08", out, max_reject_rate=1.0, today=today)


def adjustments(out: Path, period: str) -> pd.DataFrame:
    return read_table(out, "adjustments", period).to_pandas()


def statement(out: Path, period: str, payee: str) -> pd.DataFrame:
    name = "statement-" + payee.replace(":", "-") + ".csv"
    return pd.read_csv(out / "statements" / f"period={period}" / name, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def restated_store(tmp_path_factory):
    return filed_then_restated(tmp_path_factory.mktemp("trueup"), op3_plan())


def test_adjustments_are_new_minus_last_published_per_payee_and_cell(restated_store):
    """Every republished month gets one line per payee and cell, restated - paid, naming both runs."""
    out, runs, restatement = restated_store
    expected = {
        "2026-08": {("tier1", "CLEC01"): (D("1200.00"), D("0.00"))},
        "2026-09": {("tier1", "CLEC01"): (D("2000.00"), D("1200.00"))},
        "2026-10": {("tier1", "CLEC01"): (D("4000.00"), D("2000.00")), ("tier2", "state_fund:CO"): (D("4000.00"), D("0.00"))},
    }  # fmt: skip
    for period, filed_run in zip(MONTHS, runs, strict=True):
        lines = adjustments(out, period)
        found = {(r.tier, r.payee): (r.paid, r.restated) for r in lines.itertuples()}
        assert found == expected[period]
        assert (lines["adjustment"] == lines["restated"] - lines["paid"]).all()
        assert set(lines["paid_run_id"]) == {filed_run.run_id}
        assert set(lines["restated_run_id"]) == {restatement.run_id}
        # paid is what the filed run published, restated what the store's ledger now says, per payee
        before = read_table(out / "runs" / filed_run.run_id / "view", "remedies", period).to_pandas()
        now = read_table(out, "remedies", period).to_pandas()
        for payee, rows in lines.groupby("payee"):
            assert sum(rows["paid"], D(0)) == sum(before[before["payee"] == payee]["amount"], D(0))
            assert sum(rows["restated"], D(0)) == sum(now[now["payee"] == payee]["amount"], D(0))
    summary = restatement.manifest["remedies"]["periods"]["2026-10"]["restatement"]
    assert summary["adjustment_by_payee"] == {"CLEC01": "-2000.00", "state_fund:CO": "-4000.00"}
    assert summary["paid_run_id"] == runs[2].run_id and summary["within_lookback"]


def test_statement_totals_reconcile_paid_plus_adjustments_equal_restated(restated_store):
    """Each payee's statement of a restated month: per line and in total, paid + adjustment = restated;
    a cell no longer paid keeps its line (amount 0.00); the total equals the ledger's."""
    out, _, _ = restated_store
    for period, payees in {
        "2026-08": ["CLEC01"],
        "2026-09": ["CLEC01"],
        "2026-10": ["CLEC01", "state_fund:CO"],
    }.items():
        for payee in payees:
            sheet = statement(out, period, payee)
            body, total = sheet[sheet["line"] != "total"], sheet[sheet["line"] == "total"].iloc[0]
            for row in [*body.to_dict("records"), total]:
                assert D(row["paid"]) + D(row["adjustment"]) == D(row["restated"])
            assert sum(map(D, body["adjustment"])) == D(total["adjustment"])
            assert D(total["restated"]) == D(total["amount"])
    tier2 = statement(out, "2026-10", "state_fund:CO")
    assert list(tier2["amount"]) == ["0.00", "0.00"] and list(tier2["paid"]) == ["4000.00", "4000.00"]


def test_a_first_publication_has_no_adjustments_and_a_plain_statement(tmp_path):
    """A month published for the first time: an empty adjustments table, the statement as before."""
    out = tmp_path / "store"
    data = data_folder(tmp_path, "data", {"2026-08": 10})
    result = pipeline.run(op3_plan(), data, "2026-08", out, max_reject_rate=1.0, today=TODAY)
    assert adjustments(out, "2026-08").empty
    assert "paid" not in statement(out, "2026-08", "CLEC01").columns
    assert result.manifest["remedies"]["periods"]["2026-08"]["restatement"] is None


def test_lookback_months_limits_how_far_back_money_changes(tmp_path):
    """lookback_months 1 on 2026-11-10: October (1 month back) is adjusted; August and September are
    recomputed and published for the record with adjustments of 0.00 and a note."""
    out, _, restatement = filed_then_restated(tmp_path, op3_plan(lookback=1), today=dt.date(2026, 11, 10))
    for period in ("2026-08", "2026-09"):
        lines = adjustments(out, period)
        assert (lines["adjustment"] == D("0.00")).all() and not lines["within_lookback"].any()
        assert "restatement.lookback_months" in lines["note"].iloc[0]
        assert lines["paid"].sum() != lines["restated"].sum()  # the restated amount is on record all the same
    october = adjustments(out, "2026-10")
    assert list(october["adjustment"]) == [D("-2000.00"), D("-4000.00")] and october["within_lookback"].all()
    assert read_table(out, "remedies", "2026-09").to_pandas()["amount"].sum() == D("1200.00")
    assert not restatement.manifest["remedies"]["periods"]["2026-08"]["restatement"]["within_lookback"]


def test_validate_explains_a_bad_lookback_with_its_pointer(tmp_path, capsys):
    """restatement.lookback_months must be a whole number >= 0, and needs remedies: validate says where."""
    doc = example_document()
    doc["restatement"] = {"lookback_months": -1}
    (tmp_path / "bad.json").write_text(__import__("json").dumps(doc))
    del doc["remedies"]
    doc["restatement"] = {"lookback_months": 3}
    (tmp_path / "no-remedies.json").write_text(__import__("json").dumps(doc))
    assert main(["validate", "--plan", str(tmp_path / "bad.json")]) == 2
    assert "/restatement/lookback_months: -1 is less than the minimum of 0" in capsys.readouterr().err
    assert main(["validate", "--plan", str(tmp_path / "no-remedies.json")]) == 2
    assert "/restatement: a plan without remedies pays nothing" in capsys.readouterr().err


def test_a_final_run_adjusts_against_the_last_final_publication_not_a_provisional_one(tmp_path):
    """October final (8 x $150), then month to date as of 2026-10-15 (provisional: no adjustments),
    then final with 4 late (2 x $150): adjusted against the first final run, $300 - $1,200 = -$900."""
    out = tmp_path / "store"
    filed = data_folder(tmp_path, "filed", {"2026-10": 10})
    first = pipeline.run(op3_plan(), filed, "2026-10", out, max_reject_rate=1.0, today=TODAY)
    mtd = pipeline.run(op3_plan(), filed, "2026-10", out, max_reject_rate=1.0, today=TODAY, as_of=dt.date(2026, 10, 15))
    assert mtd.manifest["provisional"] and adjustments(out, "2026-10").empty
    corrected = data_folder(tmp_path, "corrected", {"2026-10": 4})
    pipeline.run(op3_plan(), corrected, "2026-10", out, max_reject_rate=1.0, today=TODAY)
    [row] = adjustments(out, "2026-10").to_dict("records")
    assert (row["paid"], row["restated"], row["adjustment"]) == (D("1200.00"), D("300.00"), D("-900.00"))
    assert row["paid_run_id"] == first.run_id


def test_history_report_explain_and_package_show_the_restatement(restated_store, tmp_path, capsys):
    """history marks the restating run with its adjustments per month; the report writes adjustments.csv
    and says so; explain gives paid, restated and adjustment of the cell; the package carries C's lines."""
    out, runs, restatement = restated_store
    row = next(r for r in history.runs(out) if r["run_id"] == restatement.run_id)
    assert row["adjustments"] == {"2026-08": "-1200.00", "2026-09": "-800.00", "2026-10": "-6000.00"}
    assert "restated, adjustments 2026-08 -1,200.00, 2026-09 -800.00, 2026-10 -6,000.00" in history.format_rows([row])
    assert main(["report", "--store", str(out), "--period", "2026-10", "--out", str(tmp_path / "report")]) == 0
    assert f"restated: adjustments USD -6,000.00 against run {runs[2].run_id}" in capsys.readouterr().out
    payees = pd.read_csv(tmp_path / "report" / "adjustments.csv", dtype=str).set_index("payee")
    assert payees.loc["state_fund:CO", "adjustment"] == "-4000.00" and payees.loc["CLEC01", "paid"] == "4000.00"
    assert 'id="restatement"' in (tmp_path / "report" / "report.html").read_text()
    args = ["explain", "--store", str(out), "--period", "2026-10", "--measure", "OP-3", "--carrier", "CLEC01"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"restated: tier1 to CLEC01: paid 4,000.00 (run {runs[2].run_id}), restated 2,000.00" in text
    assert "adjustment -2,000.00" in text
    manifest = package.build_package(out, "2026-10", "CLEC01", tmp_path / "package")
    assert manifest["adjustments"]["adjustment"] == "-2000.00"
    assert len(pd.read_csv(tmp_path / "package" / "adjustments.csv")) == 1
