"""Plan versions in force by month: a folder of versions, validate's coverage checks, each month
judged and priced under its own version (also after a restatement), plans --versions, diff --plan.

The two versions (versions_folder) differ on 2026-10-01: v2 judges at a critical value of 1.04
instead of 1.645 and pays $2,000, $2,500, $3,000 ... per high occurrence instead of $150, $250,
$500 ... OP-3 per month (test_remedy_runs.month_orders): 100 retail orders, 5 late (95%), and 20
CLEC01 orders. se = sqrt(0.95 x 0.05 x (1/20 + 1/100)) = 0.0533854.
- 10 late (50%): threshold 0.95 - 1.645 se = 0.862181, occurrences (0.862181 - 0.5) x 20 = 7.24 -> 8.
- 4 late (80%): under v1 (0.862181 - 0.8) x 20 = 1.24 -> 2; under v2 0.95 - 1.04 se = 0.894479,
  (0.894479 - 0.8) x 20 = 1.89 -> 2. z = 0.15 / se = 2.81: a miss under both.
- 1 late (95%): z = 0: met.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import PLAIN_STATISTICS, example_document, keep_measures
from test_remedy_runs import data_folder

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline, remedies
from carrier_sla.errors import PlanError, StoreError, UsageError
from carrier_sla.plan.versions import load_versions
from carrier_sla.store.view import read_table, recorded_plan

D = Decimal
MONTHS = ("2026-08", "2026-09", "2026-10")
TODAY = dt.date(2026, 12, 4)


def version_documents() -> tuple[dict, dict]:
    """v1 (to 2026-09-30) and v2 (from 2026-10-01) of example-qc cut to OP-3, plain modified z."""
    v1 = keep_measures(example_document(), ("OP-3",))
    v1["statistics"] = dict(PLAIN_STATISTICS)
    v1["version"], v1["effective_to"] = "1.0.0", "2026-09-30"
    v2 = json.loads(json.dumps(v1))
    v2["version"], v2["effective_from"], v2["effective_to"] = "2.0.0", "2026-10-01", None
    v2["statistics"]["critical_value"] = 1.04
    v2["remedies"]["tiers"]["tier1"]["amounts"]["high"] = [2000, 2500, 3000, 3500, 4000, 4500]
    return v1, v2


def versions_folder(tmp_path: Path, v1: dict | None = None, v2: dict | None = None) -> Path:
    docs = version_documents()
    folder = tmp_path / "plans"
    folder.mkdir(exist_ok=True)
    (folder / "v1.json").write_text(json.dumps(v1 or docs[0]))
    (folder / "v2.json").write_text(json.dumps(v2 or docs[1]))
    return folder


def run_months(versions, data: Path, out: Path, months=MONTHS) -> list[pipeline.RunResult]:
    return [pipeline.run(versions.for_period(p), data, p, out, max_reject_rate=1.0, today=TODAY) for p in months]


def line(out: Path, period: str, tier: str = "tier1") -> dict | None:
    ledger = read_table(out, "remedies", period).to_pandas()
    rows = ledger[(ledger["measure_id"] == "OP-3") & (ledger["tier"] == tier)]
    return None if rows.empty else rows.iloc[0].to_dict()


def test_each_month_is_judged_and_priced_under_the_version_in_force(tmp_path):
    """August and September under v1, October under v2: its critical value (1.04), its amounts
    (month 3 of escalation: 2 occurrences x $3,000), and the store records the version per month."""
    versions = load_versions(versions_folder(tmp_path))
    data = data_folder(tmp_path, "data", {"2026-08": 10, "2026-09": 10, "2026-10": 4})
    out = tmp_path / "store"
    runs = run_months(versions, data, out)
    assert [r.manifest["plan"]["version"] for r in runs] == ["1.0.0", "1.0.0", "2.0.0"]
    for period, version, cv in zip(MONTHS, ["1.0.0", "1.0.0", "2.0.0"], [1.645, 1.645, 1.04], strict=True):
        results = read_table(out, "results", period).to_pandas()
        assert set(results["plan_version"]) == {version} and set(results["critical_value"]) == {cv}
        assert recorded_plan(out, period).version == version
    assert (line(out, "2026-08")["occurrences"], line(out, "2026-08")["amount"]) == (8, D("1200.00"))  # 8 x 150
    assert (line(out, "2026-09")["occurrences"], line(out, "2026-09")["amount"]) == (8, D("2000.00"))  # 8 x 250
    october = line(out, "2026-10")
    assert (october["consecutive_months"], october["occurrences"], october["amount"]) == (3, 2, D("6000.00"))
    assert runs[2].manifest["remedies"]["periods"]["2026-10"]["plan"]["version"] == "2.0.0"


def test_a_restatement_of_september_leaves_october_priced_under_v2(tmp_path):
    """Restating September (now met) under v1 recomputes October as month 1 of escalation under
    October's own v2: 2 occurrences x $2,000 = $4,000, not v1's 2 x $150 = $300."""
    versions = load_versions(versions_folder(tmp_path))
    out = tmp_path / "store"
    run_months(versions, data_folder(tmp_path, "filed", {"2026-08": 10, "2026-09": 10, "2026-10": 4}), out)
    restated = data_folder(tmp_path, "restated", {"2026-08": 10, "2026-09": 1, "2026-10": 4})
    result = pipeline.run(versions.for_period("2026-09"), restated, "2026-09", out, max_reject_rate=1.0, today=TODAY)
    assert result.manifest["plan"]["version"] == "1.0.0" and line(out, "2026-09") is None
    october = line(out, "2026-10")
    assert (october["consecutive_months"], october["occurrences"]) == (1, 2)
    assert (october["unit_amount"], october["amount"]) == (D("2000.00"), D("4000.00"))
    months = result.manifest["remedies"]["periods"]
    assert months["2026-10"]["recomputed_after_restatement"] and months["2026-10"]["plan"]["version"] == "2.0.0"
    metadata = read_table(out, "remedies", "2026-10").schema.metadata
    assert metadata[b"carrier_sla.plan_version"] == b"2.0.0"
    # the case the issue reproduced: the same October results priced under the restating run's v1 pay $300
    frame = read_table(out, "results", "2026-10").to_pandas().assign(period="2026-10")
    escalation = read_table(out, "escalation", "2026-09").to_pandas()
    under_v1 = remedies.period_remedies(versions.versions[0], "2026-10", frame, escalation, {})
    assert list(under_v1.ledger[under_v1.ledger["tier"] == "tier1"]["amount"]) == [D("300.00")]


def test_validate_reports_a_gap_between_versions_naming_the_months(tmp_path, capsys):
    """v1 ends 2026-09-30 and v2 begins 2026-11-01: validate exits 2 and names 2026-10, at v1's effective_to."""
    v1, v2 = version_documents()
    v2["effective_from"] = "2026-11-01"
    folder = versions_folder(tmp_path, v1, v2)
    with pytest.raises(PlanError) as raised:
        load_versions(folder)
    [problem] = raised.value.problems
    assert problem.pointer == "v1.json#/effective_to"
    assert "no version is in force in 2026-10" in problem.message
    assert main(["validate", "--plan", str(folder)]) == 2
    assert "v1.json#/effective_to: gap between versions" in capsys.readouterr().err


def test_validate_lists_every_problem_of_a_folder_at_once(tmp_path):
    """Overlapping months, a mid-month start, another plan id, a repeated version and a schema error of
    one file: all reported together, each at FILE#/pointer."""
    v1, v2 = version_documents()
    v1["effective_to"] = "2026-10-31"  # overlaps v2's October
    v2["id"], v2["version"] = "example-other", "1.0.0"
    v3 = json.loads(json.dumps(version_documents()[1]))
    v3["version"], v3["effective_from"], v3["statistics"]["critical_value"] = "3.0.0", "2027-01-15", "high"
    folder = versions_folder(tmp_path, v1, v2)
    (folder / "v3.json").write_text(json.dumps(v3))
    with pytest.raises(PlanError) as raised:
        load_versions(folder)
    problems = {(p.pointer, p.message.split(":")[0]) for p in raised.value.problems}
    pointers = {p for p, _ in problems}
    assert {"v1.json#/effective_to", "v2.json#/id", "v2.json#/version", "v3.json#/effective_from"} <= pointers
    assert "v3.json#/statistics/critical_value" in pointers
    overlap = next(p for p in raised.value.problems if "overlaps" in p.message)
    assert "in 2026-10" in overlap.message


def test_a_month_no_version_covers_is_refused(tmp_path, capsys):
    """A folder whose versions begin in 2026-09: running August exits 2 naming the months they cover."""
    v1, v2 = version_documents()
    v1["effective_from"] = "2026-09-01"
    folder = versions_folder(tmp_path, v1, v2)
    with pytest.raises(UsageError, match=r"in force in 2026-08 \(its versions cover 2026-09\.\.\)"):
        load_versions(folder).for_period("2026-08")
    data = data_folder(tmp_path, "data", {"2026-08": 10})
    args = ["run", "--plan", str(folder), "--data", str(data), "--period", "2026-08", "--out", str(tmp_path / "s")]
    assert main([*args, "--quiet"]) == 2
    assert "no version of plan example-qc" in capsys.readouterr().err


def test_a_single_plan_file_still_works_as_before(tmp_path):
    """--plan FILE: one version, judged for any month it is in force (part of a month is enough)."""
    versions = load_versions("example-qc")
    assert not versions.folder and versions.for_period("2026-10").version == "1.0.0"


def test_plans_versions_lists_each_version_and_its_months(tmp_path, capsys):
    """plans --versions DIR: one line per version with its dates, months, file and sha256."""
    folder = versions_folder(tmp_path)
    assert main(["plans", "--versions", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:5] == ["example-qc", "1.0.0", "2020-01-01..2026-09-30", "months", "2020-01..2026-09"]
    assert lines[1].split()[:5] == ["example-qc", "2.0.0", "2026-10-01..open", "months", "2026-10.."]
    assert lines[1].split()[5] == "v2.json"


def test_validate_a_folder_prints_each_version(tmp_path, capsys):
    """validate --plan DIR: the folder's months and every version OK."""
    assert main(["validate", "--plan", str(versions_folder(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "2 version(s) of example-qc, in force 2020-01.. without gaps or overlaps" in out
    assert "plan example-qc 2.0.0 OK: 1 measures" in out and "in force 2026-10.. (v2.json)" in out


def test_diff_plan_lists_what_changed_in_words(tmp_path, capsys):
    """diff --plan A --plan B: the dates, the critical value and the tier 1 amounts, each in words."""
    folder = versions_folder(tmp_path)
    assert main(["diff", "--plan", str(folder / "v1.json"), "--plan", str(folder / "v2.json")]) == 0
    out = capsys.readouterr().out
    assert "in force: 2020-01-01..2026-09-30 -> 2026-10-01..open" in out
    assert "critical value: 1.645 -> 1.04" in out
    assert "tier1 amounts high" in out and "150.00, 250.00, 500.00" in out and "2,000.00, 2,500.00" in out
    assert "4 change(s)" in out


def test_diff_plan_names_measures_exclusions_standards_and_holidays(tmp_path, capsys):
    """A measure removed, an exclusion added, a benchmark changed, a holiday moved: each said."""
    a = example_document()
    b = json.loads(json.dumps(a))
    b["measures"] = [m for m in b["measures"] if m["id"] != "MR-8"]
    del b["remedies"]["measures"]["MR-8"]
    op3 = next(m for m in b["measures"] if m["id"] == "OP-3")
    op3["exclusions"].append({"code": "storm", "when": [{"field": "state", "op": "eq", "value": "CO"}]})
    po5 = next(m for m in b["measures"] if m["id"] == "PO-5")
    po5["standards"][0]["target"] = 92
    days = b["calendar"]["holidays"]["2026"]
    columbus = next(d for d in days if d["name"] == "Columbus Day")
    days.remove(columbus)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main(["diff", "--plan", str(tmp_path / "a.json"), "--plan", str(tmp_path / "b.json"), "--json"]) == 0
    texts = [c["text"] for c in json.loads(capsys.readouterr().out)["changes"]]
    assert any(t.startswith("MR-8 removed: Trouble rate") for t in texts)
    assert "OP-3 exclusion storm added: state eq CO" in texts
    assert any(
        t.startswith("PO-5 standards: benchmark 95 (channel electronic)") and "-> benchmark 92" in t for t in texts
    )
    assert f"2026: removed {columbus['date']} (Columbus Day)" in texts
    assert "MR-8: low per occurrence, tier1, tier2 -> pays nothing" in texts


def test_a_later_month_whose_run_kept_no_plan_json_is_priced_under_its_plan_file(tmp_path):
    """Runs of versions before plan.json was kept: October's version is read from its manifest's plan
    file while that file's sha256 is unchanged; once it changed, the restatement refuses (exit 5)
    rather than price October under another version."""
    folder = versions_folder(tmp_path)
    versions = load_versions(folder)
    out = tmp_path / "store"
    runs = run_months(versions, data_folder(tmp_path, "filed", {"2026-08": 10, "2026-09": 10, "2026-10": 4}), out)
    (out / "runs" / runs[2].run_id / "plan.json").unlink()
    restated = data_folder(tmp_path, "restated", {"2026-08": 10, "2026-09": 1, "2026-10": 4})
    pipeline.run(versions.for_period("2026-09"), restated, "2026-09", out, max_reject_rate=1.0, today=TODAY)
    assert (line(out, "2026-10")["unit_amount"], line(out, "2026-10")["amount"]) == (D("2000.00"), D("4000.00"))
    (folder / "v2.json").write_text((folder / "v2.json").read_text() + "\n")  # same plan, another sha256
    with pytest.raises(StoreError, match="cannot be read back"):
        pipeline.run(versions.for_period("2026-09"), restated, "2026-09", out, max_reject_rate=1.0, today=TODAY)
    assert line(out, "2026-10")["amount"] == D("4000.00")  # nothing published
