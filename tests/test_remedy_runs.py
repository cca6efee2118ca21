"""Remedies across runs: escalation read from the store, refusals out of order, restatements, totals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.errors import UsageError
from carrier_sla.store import layout as store
from carrier_sla.store.view import read_table

D = Decimal
MONTHS = ("2026-08", "2026-09", "2026-10")


def month_orders(period: str, clec_late: int, retail_late: int = 5) -> list[dict]:
    """OP-3 in one month: 100 retail orders (`retail_late` completed after the due date) and
    20 CLEC01 orders (`clec_late` late). 10 of 20 late against 95% is an OP-3 miss; 1 of 20 is met."""

    def order(carrier: str, product: str, late: bool) -> dict:
        return {
            "order_id": None,
            "carrier_id": carrier,
            "product": product,
            "received_at": f"{period}-05 09:00:00",
            "foc_at": f"{period}-05 10:00:00",
            "due_date": f"{period}-08",
            "completed_at": f"{period}-{12 if late else 8:02d} 12:00:00",
        }

    rows = [order("ILEC", "pots", i < retail_late) for i in range(100)]
    rows += [order("CLEC01", "resale_pots", i < clec_late) for i in range(20)]
    return rows


def data_folder(tmp_path: Path, name: str, late_by_month: dict[str, int]) -> Path:
    orders = [o for period, late in late_by_month.items() for o in month_orders(period, late)]
    for i, o in enumerate(orders, start=1):
        o["order_id"] = f"O{i}"
    return write_inputs(tmp_path / name, orders=orders)


def op3_line(out: Path, period: str) -> pd.Series | None:
    ledger = read_table(out, "remedies", period).to_pandas()
    line = ledger[(ledger["measure_id"] == "OP-3") & (ledger["payee"] == "CLEC01")]
    return None if line.empty else line.iloc[0]


def test_escalation_counts_months_from_the_store(tmp_path, plan):
    """OP-3 missed three months running: months 1, 2, 3 of escalation, $150 / $250 / $500 per occurrence."""
    data = data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10))
    out = tmp_path / "store"
    for period in MONTHS:
        pipeline.run(plan, data, period, out, max_reject_rate=1.0, allow_empty=True)
    lines = [op3_line(out, p) for p in MONTHS]
    assert [int(line["consecutive_months"]) for line in lines] == [1, 2, 3]
    assert [line["unit_amount"] for line in lines] == [D("150.00"), D("250.00"), D("500.00")]
    # each payment is unit amount x rounded-up occurrences, to the cent
    assert all(line["amount"] == line["unit_amount"] * int(line["occurrences"]) for line in lines)


def test_restating_an_earlier_month_recomputes_the_later_months(tmp_path, plan):
    """Restating August as met resets the count: September becomes month 1 and October month 2,
    published with the restating run and listed in its manifest."""
    out = tmp_path / "store"
    missed = data_folder(tmp_path, "missed", dict.fromkeys(MONTHS, 10))
    for period in MONTHS:
        pipeline.run(plan, missed, period, out, max_reject_rate=1.0, allow_empty=True)
    assert int(op3_line(out, "2026-10")["consecutive_months"]) == 3
    restated = data_folder(tmp_path, "restated", {"2026-08": 1, "2026-09": 10, "2026-10": 10})
    result = pipeline.run(plan, restated, "2026-08", out, max_reject_rate=1.0, allow_empty=True)
    assert op3_line(out, "2026-08") is None
    assert int(op3_line(out, "2026-09")["consecutive_months"]) == 1
    assert int(op3_line(out, "2026-10")["consecutive_months"]) == 2
    months = result.manifest["remedies"]["periods"]
    assert [p for p, m in months.items() if m["recomputed_after_restatement"]] == ["2026-09", "2026-10"]


def test_running_in_order_equals_a_restatement_in_place(tmp_path, plan):
    """Escalation after a restatement equals escalation of a store that ran the restated months in order."""
    restated = data_folder(tmp_path, "restated", {"2026-08": 1, "2026-09": 10, "2026-10": 10})
    in_order = tmp_path / "in-order"
    for period in MONTHS:
        pipeline.run(plan, restated, period, in_order, max_reject_rate=1.0, allow_empty=True)
    replayed = tmp_path / "replayed"
    missed = data_folder(tmp_path, "missed", dict.fromkeys(MONTHS, 10))
    for period in MONTHS:
        pipeline.run(plan, missed, period, replayed, max_reject_rate=1.0, allow_empty=True)
    pipeline.run(plan, restated, "2026-08", replayed, max_reject_rate=1.0, allow_empty=True)
    for period in MONTHS:
        for table in ("remedies", "escalation"):
            a = read_table(in_order, table, period).to_pandas()
            b = read_table(replayed, table, period).to_pandas()
            pd.testing.assert_frame_equal(a, b)


def test_a_month_after_a_gap_is_refused_naming_the_month_to_run_first(tmp_path, plan):
    """August then October: the run refuses (exit 2) and says to run September first; nothing is published."""
    data = data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10))
    out = tmp_path / "store"
    pipeline.run(plan, data, "2026-08", out, max_reject_rate=1.0, allow_empty=True)
    with pytest.raises(UsageError, match="run period 2026-09 first"):
        pipeline.run(plan, data, "2026-10", out, max_reject_rate=1.0)
    assert store.published_periods(out, "results") == ["2026-08"]


def test_an_earlier_month_before_a_gap_is_refused(tmp_path, plan):
    """October alone, then August: September is missing between them, so August is refused too."""
    data = data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10))
    out = tmp_path / "store"
    pipeline.run(plan, data, "2026-10", out, max_reject_rate=1.0, allow_empty=True)
    with pytest.raises(UsageError, match="the store has 2026-10 but not 2026-09"):
        pipeline.run(plan, data, "2026-08", out, max_reject_rate=1.0)


def test_refusal_exit_code_and_message_on_the_cli(tmp_path, capsys):
    """The CLI maps the refusal to exit 2 with the month to run first on stderr."""
    data = data_folder(tmp_path, "data", dict.fromkeys(MONTHS, 10))
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(data), "--out", str(out), "--quiet", "--max-reject-rate", "1"]
    args.append("--allow-empty")  # orders only
    assert main([*args, "--period", "2026-08"]) == 0
    assert main([*args, "--period", "2026-10"]) == 2
    assert "run period 2026-09 first" in capsys.readouterr().err


def test_ledger_statements_and_manifests_agree_to_the_cent(generated_store):
    """Over the generated months: ledger sum = statements' sum = manifest totals, per payee and month."""
    out, _, manifests = generated_store
    grand = D("0.00")
    for period, manifest in zip(MONTHS, manifests, strict=True):
        ledger = read_table(out, "remedies", period).to_pandas()
        by_payee = ledger.groupby("payee")["amount"].sum()
        sheets = {}
        for path in (out / "statements" / f"period={period}").glob("*.csv"):
            sheet = pd.read_csv(path, dtype=str)
            lines, total = sheet[sheet["line"] != "total"], sheet[sheet["line"] == "total"].iloc[0]
            assert sum(map(D, lines["amount"])) == D(total["amount"])
            sheets[total["payee"]] = D(total["amount"])
        totals = {p: D(a) for p, a in manifest["remedies"]["periods"][period]["totals_by_payee"].items()}
        assert sheets == totals == {p: D(a) for p, a in by_payee.items()}
        assert D(manifest["remedies"]["periods"][period]["total"]) == sum(ledger["amount"], D("0.00"))
        grand += sum(ledger["amount"], D("0.00"))
    assert grand > 0  # the generator's worse-served CLECs are paid something


def test_ledger_money_columns_are_exact_decimals(generated_store):
    """Amounts are stored as decimal(14, 2), never binary floats; payments are never negative."""
    out, _, _ = generated_store
    schema = pq.read_schema(next((out / "remedies" / "period=2026-10").glob("*.parquet")))
    for column in ("unit_amount", "amount_uncapped", "amount"):
        assert str(schema.field(column).type) == "decimal128(14, 2)"
    ledger = pd.read_parquet(out / "remedies")
    assert (ledger["amount"] >= 0).all() and (ledger["amount"] <= ledger["amount_uncapped"]).all()
    assert set(ledger["period"].astype(str)) <= set(MONTHS)


def test_every_ledger_line_traces_to_a_missed_result_row(generated_store):
    """Each ledger line joins to exactly one result row of its period with status miss."""
    out, _, _ = generated_store
    for period in MONTHS:
        ledger = read_table(out, "remedies", period).to_pandas()
        results = read_table(out, "results", period).to_pandas()
        keys = ["measure_id", "submeasure", "state", "product", "scope", "carrier_id"]
        joined = ledger[keys].merge(results[[*keys, "status"]].astype({"carrier_id": object}), on=keys, how="left")
        assert len(joined) == len(ledger) and (joined["status"] == "miss").all()


def test_an_amount_beyond_the_ledger_fails_the_run_naming_the_plans_amount(tmp_path, make_plan):
    """Each plan amount fits the ledger's decimal(14,2), but a unit amount times the occurrences of a miss may not:
    the run fails as a plan error (exit 2 on the CLI) naming the amount's JSON pointer and the cell, publishing
    nothing, instead of failing on the ledger's write."""
    from carrier_sla.errors import PlanError

    def huge(doc):
        category = doc["remedies"]["measures"]["OP-3"]["category"]
        doc["remedies"]["tiers"]["tier1"]["amounts"][category] = ["999999999999.00"]

    plan = make_plan(huge)
    category = dict(plan.remedies.measures)["OP-3"].category
    data = data_folder(tmp_path, "data", {"2026-08": 10})
    out = tmp_path / "store"
    with pytest.raises(PlanError) as caught:
        pipeline.run(plan, data, "2026-08", out, max_reject_rate=1.0, allow_empty=True)
    [problem] = caught.value.problems
    assert problem.pointer == f"/remedies/tiers/tier1/amounts/{category}/0"
    assert (
        "OP-3" in problem.message and "CLEC01" in problem.message and "beyond what the ledger holds" in problem.message
    )
    assert store.published_periods(out, "results") == []
    [manifest] = [json.loads(p.read_text()) for p in (out / "runs").glob("*/manifest.json")]
    assert manifest["status"] == "failed" and manifest["exit_code"] == 2
