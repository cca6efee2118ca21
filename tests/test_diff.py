"""carrier-sla diff: verdict, figure, payment and record differences between two runs or two stores."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.plan.load import load_plan
from carrier_sla.readers.diff import CELL_KEY, diff_figures, diff_payments

PERIOD = "2026-10"


def order(order_id: str, carrier: str, product: str, due: str = "08", completed: str = "08") -> dict:
    return {
        "order_id": order_id,
        "carrier_id": carrier,
        "product": product,
        "received_at": f"{PERIOD}-05 09:00:00",
        "foc_at": f"{PERIOD}-05 10:00:00",
        "due_date": f"{PERIOD}-{due}",
        "completed_at": f"{PERIOD}-{completed} 12:00:00",
    }


# 40 retail orders, all on time, half with a 3-day and half with a 4-day interval (so that a CLEC order
# taking 4 days leaves OP-4 met); CLEC01: four orders on time (run A), then O4 removed, O5 added and O2
# completed a day after its due date (run B): OP-3 75% against 100% retail, Fisher p = 4/44 < 0.149: a miss.
RETAIL = [order(f"R{i}", "ILEC", "pots", *(("08", "08") if i % 2 else ("09", "09"))) for i in range(1, 41)]
ORDERS_A = RETAIL + [order(f"O{i}", "CLEC01", "resale_pots") for i in (1, 2, 3, 4)]
ORDERS_B = RETAIL + [order(f"O{i}", "CLEC01", "resale_pots", completed="09" if i == 2 else "08") for i in (1, 2, 3, 5)]
EXPECTED_RECORDS = {
    (measure, kind, record_id)
    for measure in ("PO-5", "OP-3", "OP-4")
    for kind, record_id in (("added", "O5"), ("removed", "O4"))
} | {("OP-3", "changed", "O2"), ("OP-4", "changed", "O2")}


@pytest.fixture(scope="module")
def restated(tmp_path_factory) -> dict:
    """One store: run A, then run B restating the month with changed data, then run C with B's data again;
    and B's data in two more stores, under example-qc and under example-ca."""
    tmp = tmp_path_factory.mktemp("diff")
    qc = load_plan("example-qc")
    data_a, data_b = write_inputs(tmp / "a", orders=ORDERS_A), write_inputs(tmp / "b", orders=ORDERS_B)
    store = tmp / "store"
    runs = [
        pipeline.run(qc, data, PERIOD, store, max_reject_rate=1.0, allow_empty=True).run_id
        for data in (data_a, data_b, data_b)
    ]
    for name, plan in (("qc", qc), ("ca", load_plan("example-ca"))):
        pipeline.run(plan, data_b, PERIOD, tmp / name, max_reject_rate=1.0, allow_empty=True)
    return {"tmp": tmp, "store": store, "runs": runs}


def diff_json(capsys, *args: str) -> dict:
    assert main(["diff", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def results(store: Path, run_id: str | None = None) -> pd.DataFrame:
    view = store / "runs" / run_id / "view" if run_id else store / "current"
    frame = pd.read_parquet(view / "results" / f"period={PERIOD}")
    frame["carrier_id"] = frame["carrier_id"].astype(object).where(frame["carrier_id"].notna(), None)
    return frame


def cell_key(row: dict) -> tuple:
    return tuple(row[k] for k in CELL_KEY)


def test_restatement_reports_the_record_changes_by_id(restated, capsys):
    """Diffing the two runs of a restated month lists exactly the added, removed and changed orders per measure."""
    store, (a, b, _) = restated["store"], restated["runs"]
    report = diff_json(capsys, "--store", str(store), "--run", a, "--run", b)
    assert report["periods"] == [PERIOD] and not report["identical"]
    records = report["by_period"][PERIOD]["records"]
    found = {
        (measure, kind, record_id)
        for measure, kinds in records["by_measure"].items()
        for kind, entry in kinds.items()
        for _, record_id in entry["first"]
    }
    assert found == EXPECTED_RECORDS
    assert (records["added"], records["removed"], records["changed"]) == (3, 3, 2)
    assert records["by_measure"]["OP-3"]["changed"] == {"count": 1, "first": [["orders", "O2"]]}


def test_restatement_reports_the_verdict_flip_and_the_figures(restated, capsys):
    """OP-3 of CLEC01 flips met->miss; the verdict changes are exactly the cells whose status differs
    between the two runs' results, and the changed figures carry the difference."""
    store, (a, b, _) = restated["store"], restated["runs"]
    day = diff_json(capsys, "--store", str(store), "--run", a, "--run", b)["by_period"][PERIOD]
    cells = {cell_key(c): (c["status_a"], c["status_b"]) for c in day["verdicts"]["cells"]}
    assert cells[("OP-3", "all", "CO", "resale_pots", "clec", "CLEC01")] == ("met", "miss")
    merged = results(store, a).merge(results(store, b), on=CELL_KEY, suffixes=("_a", "_b"))
    flipped = merged[merged["status_a"] != merged["status_b"]]
    assert set(cells) == {cell_key(r) for r in flipped.to_dict("records")}
    assert day["verdicts"]["transitions"]["met->miss"] == (flipped["status_b"] == "miss").sum()
    figures = {f["figure"]: f for f in day["figures"]["changes"] if cell_key(f)[:1] == ("OP-3",) and f["carrier_id"]}
    assert figures["clec_value"]["a"] == 100.0 and figures["clec_value"]["b"] == 75.0
    assert figures["clec_value"]["difference"] == -25.0
    assert {"p_value", "statistic"} <= set(figures) and not {"clec_n", "method"} & set(figures)


def test_restatement_reports_the_payment_that_appears(restated, capsys):
    """The OP-3 miss adds one Tier 1 ledger line paid to CLEC01, with its amount from run B's ledger, exactly."""
    store, (a, b, _) = restated["store"], restated["runs"]
    pay = diff_json(capsys, "--store", str(store), "--run", a, "--run", b)["by_period"][PERIOD]["payments"]
    ledger = pd.read_parquet(store / "runs" / b / "view" / "remedies" / f"period={PERIOD}")
    paid = ledger[(ledger["measure_id"] == "OP-3") & (ledger["payee"] == "CLEC01")]["amount"].iloc[0]
    assert paid > 0
    clec01 = [line for line in pay["lines"] if line["payee"] == "CLEC01" and line["measure_id"] == "OP-3"]
    assert len(clec01) == 1 and clec01[0]["change"] == "added" and clec01[0]["tier"] == "tier1"
    assert (clec01[0]["amount_a"], Decimal(clec01[0]["amount_b"]), Decimal(clec01[0]["difference"])) == (
        None,
        paid,
        paid,
    )
    totals = {t["payee"]: t for t in pay["by_payee"]}
    assert (Decimal(totals["CLEC01"]["total_a"]), Decimal(totals["CLEC01"]["difference"])) == (0, paid)
    assert Decimal(pay["difference"]) == ledger["amount"].sum() and pay["currency"] == "USD"


def test_text_json_and_out_carry_the_same_facts(restated, capsys, tmp_path):
    """--out writes summary.json equal to the --json object and CSVs with the same rows; the text leads with them."""
    store, (a, b, _) = restated["store"], restated["runs"]
    args = ["--store", str(store), "--run", a, "--run", b]
    report = diff_json(capsys, *args)
    assert main(["diff", *args, "--out", str(tmp_path / "d")]) == 0
    text = capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "summary.json").read_text()) == report
    day = report["by_period"][PERIOD]
    rows = {
        name: list(csv.DictReader((tmp_path / "d" / f"{name}.csv").open()))
        for name in ("verdicts", "figures", "payments", "records")
    }
    assert {(r["measure_id"], r["change"], r["record_id"]) for r in rows["records"]} == EXPECTED_RECORDS
    changed = {r["record_id"]: r for r in rows["records"] if r["change"] == "changed" and r["measure_id"] == "OP-3"}
    assert (changed["O2"]["changed_fields"], changed["O2"]["value_a"], changed["O2"]["value_b"]) == (
        "value",
        "1.0",
        "0.0",
    )
    assert {(r["measure_id"], r["carrier_id"], r["status_a"], r["status_b"]) for r in rows["verdicts"]} == {
        (c["measure_id"], c["carrier_id"] or "", c["status_a"], c["status_b"]) for c in day["verdicts"]["cells"]
    }
    assert [(r["payee"], r["amount_b"]) for r in rows["payments"]] == [
        (p["payee"], p["amount_b"]) for p in day["payments"]["lines"]
    ]
    assert len(rows["figures"]) == len(day["figures"]["changes"])
    assert (
        text.index("met->miss") < text.index("payments: USD ") < text.index("figures:") < text.index("input records:")
    )
    assert "changed 1: O2" in text and "wrote verdicts.csv" in text


def test_identical_runs_give_an_empty_diff(restated, capsys, tmp_path):
    """Two runs of the same data (and a run with itself) differ in nothing; the command still exits 0."""
    store, (_, b, c) = restated["store"], restated["runs"]
    for pair in ((b, c), (b, b)):
        report = diff_json(capsys, "--store", str(store), "--run", pair[0], "--run", pair[1], "--out", str(tmp_path))
        day = report["by_period"][PERIOD]
        assert report["identical"] and day["identical"]
        assert day["verdicts"]["cells"] == day["figures"]["changes"] == day["payments"]["lines"] == []
        assert day["records"]["by_measure"] == {} and Decimal(day["payments"]["difference"]) == 0
        assert len(pd.read_csv(tmp_path / "records.csv")) == 0
    assert main(["diff", "--store", str(store), "--run", b, "--run", c]) == 0
    assert "no differences" in capsys.readouterr().out


def test_two_stores_under_two_plans_show_method_changes(restated, capsys):
    """The same data under example-qc and example-ca: the diff of the two stores lists every cell whose method
    differs (e.g. OP-4 permutation against modified t), and no record changed its inclusion or value."""
    tmp = restated["tmp"]
    report = diff_json(capsys, "--store", str(tmp / "qc"), "--store", str(tmp / "ca"), "--period", PERIOD)
    day = report["by_period"][PERIOD]
    assert day["plans"] == {"a": "example-qc 1.0.0", "b": "example-ca 1.0.0"}
    methods = {cell_key(f): (f["a"], f["b"]) for f in day["figures"]["changes"] if f["figure"] == "method"}
    merged = results(tmp / "qc").merge(results(tmp / "ca"), on=CELL_KEY, suffixes=("_a", "_b"))
    differ = merged[merged["method_a"].fillna("") != merged["method_b"].fillna("")]
    assert methods and set(methods) == {cell_key(r) for r in differ.to_dict("records")}
    assert methods[("OP-4", "dispatch=false", "CO", "resale_pots", "clec", "CLEC01")][1] == "modified_t"
    assert report["a"]["run_id"] is None and report["a"]["store"] == str(tmp / "qc")


def test_a_period_in_one_view_only_is_reported_added(tmp_path, capsys):
    """Runs of different months compare the months both views hold (unchanged: no differences); asked for a
    month only the later run's view holds, every cell and record of it is added."""
    orders = ORDERS_A + [
        {
            **o,
            "order_id": o["order_id"] + "n",
            "received_at": "2026-11-05 09:00:00",
            "foc_at": "2026-11-05 10:00:00",
            "due_date": "2026-11-09",
            "completed_at": "2026-11-09 12:00:00",
        }
        for o in ORDERS_A
    ]
    data, store, plan = write_inputs(tmp_path / "data", orders=orders), tmp_path / "store", load_plan("example-qc")
    a, b = (
        pipeline.run(plan, data, p, store, max_reject_rate=1.0, allow_empty=True).run_id for p in (PERIOD, "2026-11")
    )
    report = diff_json(capsys, "--store", str(store), "--run", a, "--run", b)
    assert report["periods"] == [PERIOD] and report["identical"]
    day = diff_json(capsys, "--store", str(store), "--run", a, "--run", b, "--period", "2026-11")["by_period"][
        "2026-11"
    ]
    assert day["presence"] == "added" and day["verdicts"]["changed"] == day["verdicts"]["removed"] == 0
    assert day["verdicts"]["added"] == len(pd.read_parquet(store / "results" / "period=2026-11"))
    assert day["records"]["added"] > 0 and day["records"]["removed"] == 0


def test_figures_compare_floats_with_a_relative_tolerance():
    """A float within 1e-9 relative is unchanged, one beyond it is a change; two nulls are equal, null to a value is not."""
    a = pd.DataFrame(
        [
            {
                **dict.fromkeys(CELL_KEY, "x"),
                "clec_n": 5,
                "clec_value": 1.0,
                "retail_value": None,
                "statistic": 2.0,
                "p_value": 0.5,
                "critical_value": 1.645,
                "method": "modified_z",
            }
        ]
    )
    b = a.assign(clec_value=1.0 + 1e-12, retail_value=None, statistic=2.0 + 1e-6, p_value=None, method="modified_t")
    changed = diff_figures(a, b).set_index("figure")
    assert set(changed.index) == {"statistic", "p_value", "method"}
    assert changed.loc["statistic", "difference"] == pytest.approx(1e-6)


def test_payment_differences_are_exact_decimals():
    """Changed and removed ledger lines and payee totals are differenced in Decimal, to the cent."""
    key = {"tier": "tier1", "measure_id": "OP-3", "submeasure": "all", "state": "CO", "product": "resale_pots"}
    a = pd.DataFrame(
        [
            {**key, "payee": "CLEC01", "occurrences": 1.0, "amount": Decimal("0.10")},
            {**key, "payee": "CLEC02", "occurrences": 1.0, "amount": Decimal("0.20")},
        ]
    )
    b = pd.DataFrame([{**key, "payee": "CLEC01", "occurrences": 1.0, "amount": Decimal("0.30")}])
    lines, totals = diff_payments(a, b)
    assert dict(zip(lines["payee"], lines["difference"], strict=True)) == {
        "CLEC01": Decimal("0.20"),
        "CLEC02": Decimal("-0.20"),
    }
    assert dict(zip(totals["payee"], totals["total_b"], strict=True)) == {
        "CLEC01": Decimal("0.30"),
        "CLEC02": Decimal("0.00"),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "{a}"], "two --run"),
        (["--run", "{a}", "--run", "{b}", "--store", "{store}"], "two --run"),
        ([], "two --run"),
        (["--run", "{a}", "--run", "nope"], "unknown run 'nope'"),
        (["--run", "{a}", "--run", "{b}", "--period", "2026-09"], "period 2026-09 is in neither view"),
        (["--run", "{a}", "--run", "{b}", "--period", "2026-13"], "not YYYY-MM"),
        (["--run", "{a}", "--run", "{b}", "--top", "-1"], "--top"),
    ],
)
def test_usage_errors_exit_2(restated, capsys, args, message):
    """Wrong argument combinations, an unknown run and an unknown or malformed period exit 2 with a message."""
    values = {"store": str(restated["store"]), "a": restated["runs"][0], "b": restated["runs"][1]}
    code = main(["diff", "--store", values["store"], *(a.format(**values) for a in args)])
    assert code == 2 and message in capsys.readouterr().err


def test_unknown_store_exits_2(tmp_path, capsys):
    """A folder that is not a store, or a store without a published view, exits 2."""
    (tmp_path / "empty").mkdir()
    assert main(["diff", "--store", str(tmp_path / "nothing"), "--store", str(tmp_path / "empty")]) == 2
    assert "no such store" in capsys.readouterr().err
    (tmp_path / "runs").mkdir()
    assert main(["diff", "--store", str(tmp_path), "--store", str(tmp_path)]) == 2
    assert "nothing published" in capsys.readouterr().err
