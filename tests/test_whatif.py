"""`carrier-sla what-if`: a published month recomputed under a changed plan, with nothing published.

The store: one month (2026-10) under the bundled example-qc plan (remedies on), from hand-made
orders in Colorado. Retail (ILEC, pots): 20 orders, all on time. CLEC01 (resale_pots): 6 on
time and 4 late for a customer reason (miss_reason "customer": excluded by the OP-3 and OP-4
rule customer_caused_miss). The late orders had an earlier due date, not a longer interval, so
OP-4 (installation interval, 3 business days for every order) does not move.

Hand check of OP-3 CLEC01 with customer_caused_miss off: 6 of 10 on time (60%) against 20 of 20
(100%); n = 10 <= 30 routes it to Fisher's exact test, one-tailed p = C(10,4)/C(30,4) = 210/27405
= 0.0077, below the tail area 0.149 of the critical value 1.04 (n <= 10): a miss. Occurrences
(small_sample "threshold"): threshold = 100% (the retail variance p(1-p) is 0), (1.00 - 0.60) x 10
= 4; tier 1 "high", first consecutive month: 4 x $150 = $600. Before: 6 of 6 on time, met, $0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.errors import UsageError
from carrier_sla.plan import whatif_spec
from carrier_sla.plan.load import load_plan
from tests.conftest import example_document, write_inputs

PERIOD = "2026-10"
RETAIL = [{"carrier_id": "ILEC", "product": "pots"} for _ in range(20)]
ON_TIME = [{} for _ in range(6)]
LATE_CUSTOMER = [{"due_date": "2026-10-07", "miss_reason": "customer"} for _ in range(4)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(store, data): the month run under the bundled example-qc."""
    root = tmp_path_factory.mktemp("whatif")
    data = write_inputs(root / "data", orders=RETAIL + ON_TIME + LATE_CUSTOMER)
    store = root / "store"
    plan = load_plan("example-qc")
    pipeline.run(plan, data, PERIOD, store, max_reject_rate=1.0, today=dt.date(2026, 11, 30), allow_empty=True)
    return store, data


def tree_digest(root: Path) -> dict[str, str]:
    """Every file (sha256) and symbolic link (target) under `root`, the lock file included."""
    digest = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                digest[key] = "link:" + os.readlink(path)
            elif path.is_file():
                digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                digest[key] = "dir"
    return digest


def what_if(capsys, built, *extra: str) -> tuple[int, str, str]:
    store, data = built
    code = main(["what-if", "--store", str(store), "--period", PERIOD, "--data", str(data), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(capsys, built, *extra: str) -> dict:
    code, out, err = what_if(capsys, built, *extra, "--json")
    assert code == 0, err
    return json.loads(out)


def op3_clec01(summary: dict) -> dict:
    [change] = [
        c
        for c in summary["status_changes"]
        if c["measure_id"] == "OP-3" and c["carrier_id"] == "CLEC01" and c["scope"] == "clec"
    ]
    return change


def test_baseline_is_met_and_pays_nothing(built):
    """The store's OP-3 CLEC01 cell is met with the customer-caused misses excluded, and pays nothing."""
    store, _ = built
    results = pd.read_parquet(store / "results" / f"period={PERIOD}")
    cell = results[(results["measure_id"] == "OP-3") & (results["carrier_id"] == "CLEC01")].iloc[0]
    assert (cell["status"], cell["clec_n"], cell["clec_value"]) == ("met", 6, 100.0)
    assert len(pd.read_parquet(store / "remedies" / f"period={PERIOD}")) == 0


def test_exclusion_off_turns_the_cell_into_a_paid_miss(capsys, built):
    """exclusion.customer_caused_miss=off: OP-3 CLEC01 goes met -> miss (6 of 10 on time) and pays 4 x $150."""
    summary = as_json(capsys, built, "--set", "exclusion.customer_caused_miss=off")
    assert summary["published"] is False
    change = op3_clec01(summary)
    assert (change["status_before"], change["status_after"]) == ("met", "miss")
    assert (change["clec_n_before"], change["clec_n_after"]) == (6, 10)
    assert change["clec_value_after"] == pytest.approx(60.0)
    assert change["p_value_after"] == pytest.approx(210 / 27405)
    assert summary["remedies"]["total"] == {"before": "0.00", "after": "600.00", "difference": "600.00"}
    assert summary["remedies"]["by_payee"] == [
        {"payee": "CLEC01", "before": "0.00", "after": "600.00", "difference": "600.00"}
    ]
    assert summary["remedies"]["by_measure"][0] == {
        "measure_id": "OP-3",
        "before": "0.00",
        "after": "600.00",
        "difference": "600.00",
    }
    assert {"measure_id": "OP-3", "code": "customer_caused_miss", "before": 4, "after": 0} in summary["exclusions"]
    assert summary["verdicts"]["miss"]["after"] - summary["verdicts"]["miss"]["before"] == 2  # CLEC01 and all-CLEC


def test_text_says_nothing_was_published_and_shows_the_money(capsys, built):
    """The text output starts by saying nothing was published, and shows the status change and the $600."""
    code, out, _ = what_if(capsys, built, "--set", "OP-3.exclusion.customer_caused_miss=off")
    assert code == 0
    assert out.splitlines()[0].startswith("WHAT-IF ONLY: nothing was published")
    assert "met -> miss" in out
    assert "remedies: total USD 0.00 -> USD 600.00 (difference USD +600.00)" in out
    assert "CLEC01" in out


def test_sets_apply_in_order_with_a_pointer_into_the_amounts(capsys, built):
    """A pointer set of the tier-1 first-month amount after the exclusion change pays 4 x $200."""
    summary = as_json(
        capsys,
        built,
        "--set",
        "OP-3.exclusion.customer_caused_miss=off",
        "--set",
        "/remedies/tiers/tier1/amounts/high/0=200",
    )
    assert summary["remedies"]["total"]["after"] == "800.00"
    assert summary["what_if"]["changes"][1] == "/remedies/tiers/tier1/amounts/high/0=200"


def test_pointer_into_the_critical_value_table_changes_the_verdict(capsys, built):
    """Raising the critical value for 10 or fewer CLEC records to 3.0 (tail 0.00135 < p 0.0077) keeps the cell met."""
    summary = as_json(
        capsys,
        built,
        "--set",
        "exclusion.customer_caused_miss=off",
        "--set",
        "/statistics/critical_values/clec/0/value=3.0",
    )
    assert not [c for c in summary["status_changes"] if c["measure_id"] == "OP-3" and c["carrier_id"] == "CLEC01"]
    assert summary["remedies"]["total"]["after"] == "0.00"


def test_replacing_the_statistics_object_changes_the_method(capsys, built):
    """A JSON object value replaces /statistics: a plain modified z that leaves undefined statistics undetermined
    makes the cell undetermined (zero retail variance)."""
    summary = as_json(
        capsys,
        built,
        "--set",
        "exclusion.customer_caused_miss=off",
        "--set",
        '/statistics={"parity_method": "modified_z", "critical_value": 1.645, '
        '"routing": {"undefined_statistic": "undetermined"}}',
    )
    change = op3_clec01(summary)
    assert (change["status_before"], change["status_after"]) == ("met", "undetermined")
    assert (change["method_before"], change["method_after"]) == ("fisher_exact", "modified_z")
    assert summary["remedies"]["total"]["after"] == "0.00"


def test_other_plan_shows_method_changes(capsys, tmp_path):
    """--plan example-ca against the example-qc store: OP-4's permutation test becomes the modified t
    (on logs), and the benchmark allowance goes (example-ca has none). The retail intervals vary (3 and 2
    business days): with every retail interval equal the modified t is undefined and the permutation test stays."""
    varied = RETAIL[:15] + [{"carrier_id": "ILEC", "product": "pots", "completed_at": "2026-10-07 12:00:00"}] * 5
    data = write_inputs(tmp_path / "data", orders=varied + ON_TIME + LATE_CUSTOMER)
    built = (tmp_path / "store", data)
    pipeline.run(
        load_plan("example-qc"),
        data,
        PERIOD,
        built[0],
        max_reject_rate=1.0,
        today=dt.date(2026, 11, 30),
        allow_empty=True,
    )
    summary = as_json(capsys, built, "--plan", "example-ca")
    assert summary["what_if"]["plan"]["id"] == "example-ca"
    moves = {(m["from"], m["to"]) for m in summary["method_changes"]}
    assert any(a == "permutation_exact" and b.startswith("modified_t") for a, b in moves), moves
    assert ("stare_and_compare_with_allowance", "stare_and_compare") in moves
    code, out, _ = what_if(capsys, built, "--plan", "example-ca")
    assert code == 0 and "permutation_exact -> modified_t" in out


def test_other_plan_keeps_the_exact_test_where_the_modified_t_is_undefined(capsys, built):
    """With every retail OP-4 interval equal, example-ca's modified t is undefined: the permutation test decides
    under both plans, so OP-4 shows no method change."""
    summary = as_json(capsys, built, "--plan", "example-ca")
    moves = {(m["from"], m["to"]) for m in summary["method_changes"]}
    assert not any(a.startswith("permutation") and not b.startswith("permutation") for a, b in moves), moves


def test_the_baseline_plan_reproduces_the_baseline(capsys, built):
    """The run's own plan.json as --plan changes no cell and no payment (the recomputation matches the run)."""
    store, _ = built
    [run_id] = os.listdir(store / "runs")
    summary = as_json(capsys, built, "--plan", str(store / "runs" / run_id / "plan.json"))
    assert summary["cells_changed"] == 0 and summary["status_changes"] == []
    assert summary["remedies"]["total"]["difference"] == "0.00"
    assert summary["data"]["same_inputs_as_baseline"] is True


def test_the_store_is_unchanged(capsys, built, tmp_path):
    """After what-if runs (text, JSON, --out, another plan) every file, link and the lock of the store are as before."""
    store, _ = built
    before = tree_digest(store)
    assert what_if(capsys, built, "--set", "exclusion.customer_caused_miss=off")[0] == 0
    assert what_if(capsys, built, "--plan", "example-ca", "--json", "--out", str(tmp_path / "o"))[0] == 0
    assert what_if(capsys, built, "--set", "exclusion.nope=off")[0] == 2
    assert tree_digest(store) == before


def test_out_writes_csv_and_summary(capsys, built, tmp_path):
    """--out writes verdicts.csv (changed cells), payments.csv (ledger lines before/after) and summary.json."""
    folder = tmp_path / "whatif-out"
    code, out, _ = what_if(capsys, built, "--set", "exclusion.customer_caused_miss=off", "--out", str(folder))
    assert code == 0 and str(folder / "summary.json") in out
    verdicts = pd.read_csv(folder / "verdicts.csv", keep_default_na=False)
    row = verdicts[(verdicts["measure_id"] == "OP-3") & (verdicts["carrier_id"] == "CLEC01")].iloc[0]
    assert (row["status_before"], row["status_after"], row["clec_n_after"]) == ("met", "miss", 10)
    payments = pd.read_csv(folder / "payments.csv", dtype=str)
    assert payments[
        ["payee", "measure_id", "occurrences_after", "amount_before", "amount_after", "difference"]
    ].to_dict("records") == [
        {
            "payee": "CLEC01",
            "measure_id": "OP-3",
            "occurrences_after": "4.0",
            "amount_before": "0.00",
            "amount_after": "600.00",
            "difference": "600.00",
        }
    ]
    assert json.loads((folder / "summary.json").read_text())["remedies"]["total"]["after"] == "600.00"


def test_out_inside_the_store_is_refused(capsys, built):
    """--out inside the store exits 2: what-if never writes into a store."""
    store, _ = built
    code, _, err = what_if(capsys, built, "--set", "exclusion.cancelled=off", "--out", str(store / "whatif"))
    assert code == 2 and "inside the store" in err
    assert not (store / "whatif").exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("exclusion.no_such_code=off", "no exclusion rule 'no_such_code' in any measure"),
        ("OP-3.exclusion.no_circuit_id=off", "no exclusion rule 'no_circuit_id' in measure OP-3"),
        ("XX-1.exclusion.cancelled=off", "no measure XX-1"),
        ("exclusion.cancelled=on", "can only be turned off"),
        ("critical_value=2", "expected exclusion.CODE=off"),
        ("/statistics/nothing/here=1", "nothing at /statistics/nothing"),
        ("/statistics/critical_values/clec/9/value=1", "nothing at /statistics/critical_values/clec/9"),
        ("/measures/0/id/x=1", "is a value"),
        ("/statistics", "expected /json/pointer=VALUE"),
    ],
)
def test_bad_set_exits_2_with_a_clear_message(capsys, built, spec, message):
    """A --set that cannot be applied exits 2 naming the spec and the problem."""
    code, out, err = what_if(capsys, built, "--set", spec)
    assert code == 2 and message in err and repr(spec) in err
    assert out == ""


def test_plan_errors_exit_2_with_pointers(capsys, built):
    """A set that breaks the plan (critical_value next to critical_values; a text where a number goes) lists pointers."""
    code, _, err = what_if(capsys, built, "--set", "/statistics/critical_value=2.0", "--set", "/statistics/seed=abc")
    assert code == 2
    assert "/statistics: give exactly one of critical_value, critical_values, alpha" in err
    assert "/statistics/seed" in err


def test_unknown_period_and_missing_arguments_exit_2(capsys, built):
    """A period the store has not published, a malformed period, and no --plan/--set all exit 2."""
    store, data = built
    base = ["what-if", "--store", str(store), "--data", str(data)]
    assert main([*base, "--period", "2026-09", "--set", "exclusion.cancelled=off"]) == 2
    assert "period 2026-09 is not published" in capsys.readouterr().err
    assert main([*base, "--period", "2026-13", "--set", "exclusion.cancelled=off"]) == 2
    assert main([*base, "--period", PERIOD]) == 2
    assert "--plan OTHER or at least one --set" in capsys.readouterr().err


def test_input_errors_exit_3(capsys, built, tmp_path):
    """A missing input directory is an input data error: exit 3."""
    store, _ = built
    code = main(
        [
            "what-if",
            "--store",
            str(store),
            "--period",
            PERIOD,
            "--data",
            str(tmp_path / "none"),
            "--set",
            "exclusion.cancelled=off",
        ]
    )
    assert code == 3 and "does not exist" in capsys.readouterr().err


def test_changed_input_files_are_flagged(capsys, built, tmp_path):
    """Input files other than the baseline run's are flagged: the differences are then not only the plan's."""
    store, _ = built
    data = write_inputs(tmp_path / "other", orders=[*RETAIL, *ON_TIME, *LATE_CUSTOMER, {"carrier_id": "CLEC02"}])
    code, out, _ = what_if(capsys, (store, data), "--set", "exclusion.cancelled=off")
    assert code == 0 and "WARNING: the input files" in out


# ------------------------------------------------------------------------ apply_sets (pure)


def test_apply_sets_parses_json_else_text_and_leaves_the_input_alone():
    """Values parse as JSON (numbers, objects), otherwise (NaN included) stay text; the input document is not changed."""
    doc = {"a": {"b": 1, "c": [1, 2]}, "x/y": {"~k": 0}}
    out = whatif_spec.apply_sets(doc, ["/a/b=2.5", "/a/c/-=3", '/a/new={"k": [true]}', "/a/c/0=NaN", "/x~1y/~0k=hello"])
    assert out == {"a": {"b": 2.5, "c": ["NaN", 2, 3], "new": {"k": [True]}}, "x/y": {"~k": "hello"}}
    assert doc == {"a": {"b": 1, "c": [1, 2]}, "x/y": {"~k": 0}}


def test_apply_sets_exclusion_off_everywhere_or_in_one_measure():
    """exclusion.CODE=off removes the rule from every measure; MEASURE.exclusion.CODE=off from that measure only."""
    doc = example_document()
    every = whatif_spec.apply_sets(doc, ["exclusion.cancelled=off"])
    one = whatif_spec.apply_sets(doc, ["OP-4.exclusion.cancelled=off"])

    def having(d: dict) -> list[str]:
        return [m["id"] for m in d["measures"] if any(e["code"] == "cancelled" for e in m["exclusions"])]

    assert having(doc) == ["OP-3", "OP-4", "OP-5"]
    assert having(every) == []
    assert having(one) == ["OP-3", "OP-5"]
    with pytest.raises(UsageError, match="no exclusion rule"):
        whatif_spec.apply_sets(doc, ["exclusion.cancelled=off", "exclusion.cancelled=off"])


def test_a_folder_of_plan_versions_uses_the_version_in_force_in_the_month(capsys, built, tmp_path):
    """--plan may be a folder of plan versions, as for run: the version in force in the month is the what-if
    plan (here the bundled plan itself from October on, so nothing changes); a month no version covers exits 2."""
    earlier, current = example_document(), example_document()
    earlier["version"], earlier["effective_to"] = "0.9.0", "2026-09-30"
    earlier["statistics"]["seed"] = earlier["statistics"].get("seed", 0) + 1  # another version, another hash
    current["effective_from"] = "2026-10-01"
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / "v0.9.json").write_text(json.dumps(earlier))
    (folder / "v1.json").write_text(json.dumps(current))
    summary = as_json(capsys, built, "--plan", str(folder))
    assert summary["what_if"]["plan"]["version"] == "1.0.0"
    assert summary["cells_changed"] == 0 and summary["remedies"]["total"]["difference"] == "0.00"
    (folder / "v1.json").unlink()
    code, _, err = what_if(capsys, built, "--plan", str(folder))
    assert code == 2 and "in force in 2026-10" in err
