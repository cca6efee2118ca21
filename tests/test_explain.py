"""carrier-sla explain: one verdict reconstructed end to end, checked against numbers known by hand.

The hand-made store (example-qc with the plain modified z at 1.645, as conftest's `plan` fixture),
period 2026-10, Colorado:
- CLEC01 resale_pots: 10 orders counted, 4 of them late (O7, O8 completed 10-09, O9 10-13, O10 10-14),
  plus O11 cancelled, O12 a test order and O13 a customer-caused miss (excluded): 6 of 10 = 60%.
- retail ILEC pots: 60 orders, 5 late (55 of 60 = 91.67%), plus one cancelled.
- CLEC01 ubl_2w: one order on time (a second OP-3 cell of CLEC01 in CO, met).
OP-3: p = 55/60, se = sqrt(p(1-p)(1/10 + 1/60)) = 0.0944036, z = (0.916667 - 0.6) / 0.0944036 = 3.3544 > 1.645: miss.
Threshold 0.916667 - 1.645 x 0.0944036 = 76.1373%; occurrences (0.761373 - 0.60) x 10 = 1.6137 -> 2;
tier1 high, month 1: 2 x 150.00 = 300.00 to CLEC01. Tier 2 (all CLECs) pays only from month 3.
The store holds a first run of the month (3 late instead of 4) that the second run restated.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pandas as pd
import pytest
from conftest import PLAIN_STATISTICS, example_document, write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.plan.load import plan_from_document

PERIOD = "2026-10"
LATE = {
    "O7": "2026-10-09 12:00:00",
    "O8": "2026-10-09 13:00:00",
    "O9": "2026-10-13 12:00:00",
    "O10": "2026-10-14 12:00:00",
}


def orders(late: int) -> list[dict]:
    """The scenario's orders; `late` of the CLEC's first ten complete after the due date (10-08)."""
    clec = [{} for _ in range(6)] + [{"completed_at": t} for t in LATE.values()]
    for row in clec[10 - len(LATE) : 10 - late]:  # the run to be restated had fewer late orders
        row["completed_at"] = "2026-10-08 12:00:00"
    clec += [
        {"cancelled": "true"},
        {"test": "true"},
        {"miss_reason": "customer", "completed_at": "2026-10-12 12:00:00"},
    ]
    retail = [{"carrier_id": "ILEC", "product": "pots"} for _ in range(55)]
    retail += [{"carrier_id": "ILEC", "product": "pots", "completed_at": "2026-10-09 12:00:00"} for _ in range(5)]
    retail += [{"carrier_id": "ILEC", "product": "pots", "cancelled": "true"}]
    return clec + retail + [{"product": "ubl_2w"}]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The hand-made store: a first run of 2026-10 with 3 late CLEC orders, restated with 4 late."""
    doc = example_document()
    doc["statistics"] = dict(PLAIN_STATISTICS)  # as conftest's `plan` fixture
    plan = plan_from_document(doc, "example-qc (plain modified z)")
    root = tmp_path_factory.mktemp("explain")
    out = root / "store"
    first = pipeline.run(
        plan, write_inputs(root / "data1", orders(3)), PERIOD, out, max_reject_rate=1.0, allow_empty=True
    )
    second = pipeline.run(
        plan, write_inputs(root / "data2", orders(4)), PERIOD, out, max_reject_rate=1.0, allow_empty=True
    )
    return out, first.run_id, second.run_id


def explain(capsys, out, *args: str) -> tuple[int, str, str]:
    code = main(["explain", "--store", str(out), "--period", PERIOD, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


OP3 = ("--measure", "OP-3", "--carrier", "CLEC01", "--state", "CO", "--product", "resale_pots")


def test_text_states_figures_exclusions_test_and_worst_records(store, capsys):
    """The text gives the hand-computed figures, the exclusion counts, the method and critical value, the verdict
    and the late orders as the records behind the gap, in that order."""
    out, _, run_id = store
    code, text, _ = explain(capsys, out, *OP3)
    assert code == 0
    assert f"run         {run_id}" in text and "plan        example-qc 1.0.0, sha256" in text
    assert "6 of 10 = 60.00%" in text
    assert "55 of 60 = 91.67%" in text
    assert re.search(r"evaluated\s+13\s+61\n", text) and re.search(r"included\s+10\s+60\n", text)
    assert re.search(r"excluded: test_order\s+1\s+0\n", text)
    assert re.search(r"excluded: cancelled\s+1\s+1\n", text)
    assert re.search(r"excluded: customer_caused_miss\s+1\s+0\n", text)
    assert "method modified_z" in text and "z 3.3544; p-value 3.98e-04" in text
    assert "critical value 1.645: the plan's single critical value" in text
    assert "verdict: z = 3.3544 > critical value 1.645: miss" in text
    assert "cancelled                cancelled is true" in text  # the rule, code and condition
    sections = ["Plan rule", "Population", "Figures", "Test", "Remedies", "Records that contributed most"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    listed = re.findall(r"^  (O\d+)\s+0\s+\S+orders.csv\s+\d+$", text, flags=re.M)
    assert listed == ["O7", "O8", "O9", "O10"]  # the four late orders, in input order


def test_remedy_arithmetic_of_the_missed_cell(store, capsys):
    """The ledger line of the miss is written out: threshold, occurrences, rounding, 2 x 150.00 = 300.00."""
    out, _, _ = store
    _, text, _ = explain(capsys, out, *OP3)
    assert "tier1 to CLEC01: USD 300.00" in text
    assert "threshold 76.1373% (the result that would just have passed: retail at z* = 1.645)" in text
    assert "occurrences = (76.1373 - 60) / 100 x 10 = 1.6137" in text
    assert "rounded up: 1.6137 -> 2" in text
    assert "unit amount: tier1 high, consecutive missed month 1" in text
    assert "2 occurrences x 150.00 = 300.00" in text
    assert "paid USD 300.00 to CLEC01" in text


def test_json_carries_the_same_figures(store, capsys):
    """--json is one JSON object with the figures, counts, test, ledger line (money exact) and worst records."""
    out, _, run_id = store
    code, text, _ = explain(capsys, out, *OP3, "--json")
    assert code == 0
    e = json.loads(text)
    assert e["run"]["run_id"] == run_id and e["run"]["plan"]["source"].endswith("plan.json")
    assert e["cell"]["carrier_id"] == "CLEC01" and e["cell"]["scope"] == "clec"
    assert (e["figures"]["clec"]["n"], e["figures"]["clec"]["numerator"], e["figures"]["clec"]["value"]) == (10, 6, 60)
    assert e["figures"]["retail"]["value"] == pytest.approx(91.6667, abs=1e-4)
    assert e["population"]["clec"] == {
        "evaluated": 13,
        "included": 10,
        "excluded": {"test_order": 1, "cancelled": 1, "customer_caused_miss": 1},
    }
    assert e["test"]["statistic"] == pytest.approx(3.3544, abs=5e-5)
    assert (e["test"]["method"], e["test"]["critical_value"], e["test"]["status"]) == ("modified_z", 1.645, "miss")
    (line,) = e["remedies"]["lines"]
    assert Decimal(line["amount"]) == Decimal("300.00") and line["occurrences"] == 2
    assert "2 occurrences x 150.00 = 300.00" in line["arithmetic"]
    assert [r["record_id"] for r in e["top_records"]["records"]] == ["O7", "O8", "O9", "O10"]


def test_mean_lists_the_largest_values_first(store, capsys):
    """OP-4 (mean, lower is better): the CLEC's longest installations lead, --top limits the list."""
    out, _, _ = store
    _, text, _ = explain(
        capsys,
        out,
        "--measure",
        "OP-4",
        "--carrier",
        "CLEC01",
        "--state",
        "CO",
        "--product",
        "resale_pots",
        "--submeasure",
        "dispatch=false",
        "--json",
        "--top",
        "2",
    )
    top = json.loads(text)["top_records"]
    assert [r["record_id"] for r in top["records"]] == ["O10", "O9"]
    assert top["total"] == 10 and top["records"][0]["value"] > top["records"][1]["value"] > 3


def test_aggregate_says_why_tier2_did_not_pay(store, capsys):
    """The all-CLEC cell missed in its first month: Tier 2 pays from the third, and the text says so."""
    out, _, _ = store
    code, text, _ = explain(
        capsys, out, "--measure", "OP-3", "--carrier", "_all", "--state", "CO", "--product", "resale_pots"
    )
    assert code == 0
    assert "all CLECs" in text and "(scope clec_aggregate)" in text
    assert "tier2 pays from consecutive missed month 3; this cell is at month 1" in text


def test_met_cell_says_why_nothing_was_paid(store, capsys):
    """A met cell has no ledger line: 'only a miss pays'."""
    out, _, _ = store
    _, text, _ = explain(capsys, out, "--measure", "OP-3", "--carrier", "CLEC01", "--product", "ubl_2w")
    assert "verdict: z = " in text and ": met" in text
    assert "none: status met: only a miss pays" in text


def test_run_option_reads_the_restated_run(store, capsys):
    """--run shows the cell as the first run published it (3 late orders), from that run's view."""
    out, first, _ = store
    _, text, _ = explain(capsys, out, *OP3, "--run", first)
    assert f"run         {first}" in text and f"the view of run {first}" in text
    assert "7 of 10 = 70.00%" in text


def test_ambiguous_key_lists_the_cells_and_exits_2(store, capsys):
    """Without --product, CLEC01's two OP-3 cells in CO match: both listed, exit 2."""
    out, _, _ = store
    code, text, err = explain(capsys, out, "--measure", "OP-3", "--carrier", "CLEC01")
    assert code == 2 and text == ""
    assert "2 OP-3 cells of CLEC01 in 2026-10; narrow down with --state/--product/--submeasure" in err
    assert re.search(r"CO\s+resale_pots\s+all\s+miss", err) and re.search(r"CO\s+ubl_2w\s+all\s+met", err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--measure", "OP-3", "--carrier", "CLEC99"),
            "no OP-3 cells for carrier 'CLEC99' in 2026-10 (carriers: _all, CLEC01)",
        ),
        (("--measure", "OP-9", "--carrier", "CLEC01"), "no results for measure 'OP-9' in 2026-10 (measures: "),
        (("--measure", "OP-3", "--carrier", "CLEC01", "--state", "UT"), "no OP-3 cell of CLEC01 state=UT in 2026-10"),
        (("--measure", "OP-3", "--carrier", "CLEC01", "--run", "nope"), "no published run 'nope'"),
    ],
)
def test_unknown_key_exits_2_naming_what_exists(store, capsys, args, message):
    """An unknown carrier, measure, state or run is a usage error that names what the store holds."""
    out, _, _ = store
    code, _, err = explain(capsys, out, *args)
    assert code == 2 and message in err


def test_unknown_period_exits_2_naming_the_published_periods(store, capsys):
    """A period not in the store: exit 2 with the periods it has."""
    out, _, _ = store
    code = main(["explain", "--store", str(out), "--period", "2026-09", "--measure", "OP-3", "--carrier", "CLEC01"])
    err = capsys.readouterr().err
    assert code == 2 and "no results for period 2026-09" in err and "(periods: 2026-10)" in err


def test_plan_of_a_run_without_plan_json_is_found_by_its_sha256(tmp_path, capsys):
    """A run that kept no plan.json is explained with the plan file of its manifest when the sha256 matches;
    when no file matches, the store cannot be explained (store error, exit 5) rather than under another plan."""
    from carrier_sla.plan.load import load_plan

    out = tmp_path / "store"
    run = pipeline.run(
        load_plan("example-qc"),
        write_inputs(tmp_path / "data", orders(4)),
        PERIOD,
        out,
        max_reject_rate=1.0,
        allow_empty=True,
    )
    (out / "runs" / run.run_id / "plan.json").unlink()
    code, text, _ = explain(capsys, out, *OP3)
    assert code == 0 and "example-qc.json (the run kept no plan.json; same sha256 as its manifest)" in text
    manifest_path = out / "runs" / run.run_id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["plan"]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    code, _, err = explain(capsys, out, *OP3)
    assert code == 5 and f"run {run.run_id} kept no plan.json, and no plan file has its sha256 {'0' * 64}" in err


# ------------------------------------------------------------------------------- generated data


@pytest.fixture(scope="module")
def generated(generated_store):
    """The shared three generated months (CLEC03 served worse on CO resale installations), run in order."""
    return generated_store[0]


def test_generated_clec03_miss_is_explained(generated, capsys):
    """A CLEC03 miss of October: the explanation's figures, counts and payments agree with results/ and the ledger."""
    results = pd.read_parquet(generated / "results" / "period=2026-10")
    ledger = pd.read_parquet(generated / "remedies" / "period=2026-10")
    misses = results[(results["carrier_id"] == "CLEC03") & (results["status"] == "miss") & (results["state"] == "CO")]
    keys = ["measure_id", "submeasure", "state", "product", "carrier_id"]
    paid = misses.merge(ledger[keys], on=keys)
    assert len(paid), "the generator's CLEC03 misses in CO are paid (tier1 from month 1)"
    cell = paid.sort_values(["measure_id", "product", "submeasure"]).iloc[0]
    key = [
        "--measure",
        cell["measure_id"],
        "--carrier",
        "CLEC03",
        "--state",
        "CO",
        "--product",
        cell["product"],
        "--submeasure",
        cell["submeasure"],
    ]
    code = main(["explain", "--store", str(generated), "--period", "2026-10", *key, "--json"])
    e = json.loads(capsys.readouterr().out)
    assert code == 0 and e["test"]["status"] == "miss"
    assert e["figures"]["clec"]["n"] == cell["clec_n"]
    assert e["figures"]["clec"]["value"] == pytest.approx(cell["clec_value"])
    assert e["population"]["clec"]["included"] == cell["clec_n"]
    assert e["population"]["clec"]["evaluated"] == cell["clec_records_evaluated"]
    assert e["population"]["retail"]["included"] == cell["retail_n"]
    assert e["test"]["why"] and e["test"]["why"].startswith("critical value")
    lines = ledger[
        (ledger["measure_id"] == cell["measure_id"])
        & (ledger["carrier_id"] == "CLEC03")
        & (ledger["product"] == cell["product"])
        & (ledger["submeasure"] == cell["submeasure"])
        & (ledger["state"] == "CO")
    ]
    assert sorted(Decimal(x["amount"]) for x in e["remedies"]["lines"]) == sorted(lines["amount"])
    assert e["remedies"]["lines"] and all(
        any(re.match(r"\S+ (occurrences|measurement) x ", step) for step in x["arithmetic"])
        for x in e["remedies"]["lines"]
    )
    main(["explain", "--store", str(generated), "--period", "2026-10", *key])
    text = capsys.readouterr().out
    assert f"{cell['measure_id']} " in text and "verdict: " in text and ": miss" in text
    assert re.search(r"^    \S+ occurrences x [\d,]+\.\d\d = [\d,]+\.\d\d$", text, flags=re.M)


def test_the_related_record_rule_reads_in_calendar_days_and_names_every_match_field(make_plan):
    """OP-5's and MR-7's rule text says '30 calendar days' and the fields matched; a plan in hours still says hours."""
    from carrier_sla.plan.load import load_plan
    from carrier_sla.readers.explain_cell import value_text

    plan = load_plan("example-qc")
    assert value_text(plan.measure("OP-5")) == (
        "1 when a troubles record (received_at) with the same carrier_id and circuit_id is absent within "
        "30 calendar days after completed_at (counting only disposition = network and is_test is false)"
    )
    assert "with the same carrier_id and circuit_id is present within 30 calendar days before received_at" in (
        value_text(plan.measure("MR-7"))
    )

    def in_hours(doc):
        value = doc["measures"][6]["value"]
        del value["window_days"]
        value.update(match_on="circuit_id", window_hours=720)

    text = value_text(make_plan(in_hours).measure("MR-7"))
    assert "with the same circuit_id is present within 720 h before received_at" in text


def test_the_rule_says_when_an_undefined_modified_z_was_decided_by_the_exact_test():
    """A cell routed to the modified z but decided by Fisher (zero retail variance) says so in its rule."""
    from carrier_sla.plan.load import load_plan
    from carrier_sla.readers.explain_cell import rule

    plan = load_plan("example-qc")
    cell = {
        "state": "WA",
        "product": "lis_trunk",
        "clec_n": 31,
        "method": "fisher_exact",
        "status_reason": "zero retail variance: the modified z is undefined; decided by the exact test instead",
    }
    text = "\n".join(str(v) for v in rule(plan, plan.measure("OP-3"), cell).values())
    assert "routed to modified_z; undefined here, so fisher_exact decides (undefined_statistic: exact_test)" in text
