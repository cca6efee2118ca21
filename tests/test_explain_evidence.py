"""explain's evidence: the CLEC's excluded records of the cell, and each listed record's input as written.

The scenario is fixtures/explain-evidence (its README gives the rows and the numbers by hand): CLEC01's
OP-4 cell of CO resale_pots, dispatch=false, includes A1, A2, A3 (3, 4 and 3 business days) and excludes
X1 (test order, row 4), X3 (cancelled, row 11), X2 (customer-caused miss, row 8) and X4 (requested due
date beyond the standard interval, row 13); CLEC02's B1-B3 and the ILEC's R1-R5 share the state and
product, and X5 (a dispatched test order) is CLEC01's record of the dispatch=true cell.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import PLAIN_STATISTICS, example_document

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.plan.load import plan_from_document

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "explain-evidence"
PERIOD = "2026-10"
ORDERS = str(FIXTURE / "orders.csv")
CELL = ("--state", "CO", "--product", "resale_pots")
OP4 = ("--measure", "OP-4", "--carrier", "CLEC01", *CELL, "--submeasure", "dispatch=false")
CLEC01 = {"A1", "A2", "A3", "X1", "X2", "X3", "X4", "X5"}
CLEC02 = {"B1", "B2", "B3"}
ILEC = {"R1", "R2", "R3", "R4", "R5"}


def _plan():
    doc = example_document()
    doc["statistics"] = dict(PLAIN_STATISTICS)  # as conftest's `plan` fixture
    return plan_from_document(doc, "example-qc (plain modified z)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The fixture run once, its input read where it lies."""
    out = tmp_path_factory.mktemp("evidence") / "store"
    pipeline.run(_plan(), FIXTURE, PERIOD, out, allow_empty=True)
    return out


def explain(capsys, out: Path, *args: str) -> tuple[int, str, str]:
    code = main(["explain", "--store", str(out), "--period", PERIOD, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _ids(text: str) -> set[str]:
    """Every record id of the scenario that a text mentions."""
    return set(re.findall(r"\b([ABRX]\d)\b", text)) & (CLEC01 | CLEC02 | ILEC)


def test_excluded_records_are_listed_with_rule_file_and_row(store, capsys):
    """OP-4's text lists CLEC01's four excluded records with their exclusion code, source file and row, in the
    plan's exclusion order, beside the three included records."""
    code, text, _ = explain(capsys, store, *OP4)
    assert code == 0
    assert "Excluded CLEC records of the cell: 4 of 4 shown" in text
    listed = re.findall(rf"^  (X\d)\s+(\S+)\s+{re.escape(ORDERS)}\s+(\d+)$", text, flags=re.M)
    assert listed == [
        ("X1", "test_order", "4"),
        ("X3", "cancelled", "11"),
        ("X2", "customer_caused_miss", "8"),
        ("X4", "customer_requested_later_due_date", "13"),
    ]
    assert re.findall(r"^  (A\d)\s+(\d)\s+\S+orders.csv\s+(\d+)$", text, flags=re.M) == [
        ("A2", "4", "5"),
        ("A1", "3", "2"),
        ("A3", "3", "9"),
    ]


def test_input_timestamps_are_shown_as_written_next_to_the_derived_values(store, capsys):
    """Each listed record's timestamps appear exactly as the input holds them (an offset, a Z, a fraction,
    minutes only), next to the local time the engine read and the derived dates behind the value."""
    _, text, _ = explain(capsys, store, *OP4)
    section = text[text.index("Input of the listed records as written") :]
    sha = hashlib.sha256((FIXTURE / "orders.csv").read_bytes()).hexdigest()
    assert f"{ORDERS}: unchanged since the run (sha256 {sha}, as in the manifest)" in section
    assert f"  A2, included, value 4: {ORDERS} row 5\n" in section
    a2 = section[section.index("  A2, included") : section.index("  A1, included")]
    assert re.search(
        r"received_at\s+2026-10-01T16:30:00-04:00\s+local 2026-10-01 14:30:00-06:00; "
        r"effective_received_date 2026-10-01; standard_due_date 2026-10-06\n",
        a2,
    )
    assert re.search(
        r"completed_at\s+2026-10-07T15:00:00Z\s+local 2026-10-07 09:00:00-06:00; completed_date 2026-10-07", a2
    )
    a3 = section[section.index("  A3, included") : section.index("  X1, excluded")]
    assert re.search(
        r"received_at\s+2026-10-02 15:00:00.5\s+local 2026-10-02 15:00:00.5-06:00; effective_received_date 2026-10-05",
        a3,
    )
    assert re.search(r"completed_at\s+2026-10-08 10:00\s+local 2026-10-08 10:00:00-06:00", a3)
    x1 = section[section.index("  X1, excluded: test_order") : section.index("  X3, excluded")]
    assert re.search(r"test\s+true\s+is_test true", x1)  # the evidence of the exclusion
    x4 = section[section.index("  X4, excluded: customer_requested_later_due_date") :]
    assert re.search(r"received_at\s+2026-10-05 09:00:00\s+local .*; standard_due_date 2026-10-08", x4)
    assert re.search(r"requested_due_date\s+2026-10-20\n", x4 + "\n")


def test_json_has_the_same_evidence(store, capsys):
    """--json carries the excluded records (id, code, file, row) and each listed record's input as written
    with its derived values, and the check of the file they were re-read from."""
    code, text, _ = explain(capsys, store, *OP4, "--json")
    assert code == 0
    e = json.loads(text)
    excluded = e["excluded_records"]
    assert excluded["total"] == 4
    assert [
        (r["record_id"], r["exclusion_reason"], r["source_file"], r["source_row"]) for r in excluded["records"]
    ] == [
        ("X1", "test_order", ORDERS, 4),
        ("X3", "cancelled", ORDERS, 11),
        ("X2", "customer_caused_miss", ORDERS, 8),
        ("X4", "customer_requested_later_due_date", ORDERS, 13),
    ]
    assert excluded["records"][0]["input"]["test"] == "true"
    assert excluded["records"][0]["derived"]["test"] == {"is_test": True}
    assert excluded["records"][2]["input"]["miss_reason"] == "customer"
    a2 = e["top_records"]["records"][0]
    assert (a2["record_id"], a2["value"]) == ("A2", 4)
    assert a2["input"] == {
        "received_at": "2026-10-01T16:30:00-04:00",
        "completed_at": "2026-10-07T15:00:00Z",
        "requested_due_date": None,
    }
    assert a2["derived"] == {
        "received_at": {
            "local": "2026-10-01 14:30:00-06:00",
            "effective_received_date": "2026-10-01",
            "standard_due_date": "2026-10-06",
        },
        "completed_at": {"local": "2026-10-07 09:00:00-06:00", "completed_date": "2026-10-07"},
    }
    (check,) = e["inputs"]["files"]
    manifest = json.loads(Path(e["run"]["manifest"]).read_text())
    run_sha = next(i["sha256"] for i in manifest["inputs"] if i["path"] == ORDERS)
    assert (check["path"], check["status"], check["sha256_now"], check["sha256_run"]) == (
        ORDERS,
        "unchanged",
        run_sha,
        run_sha,
    )
    assert e["inputs"]["time_zone"] == "America/Denver"


@pytest.mark.parametrize(
    ("carrier", "measure", "submeasure", "own"),
    [
        ("CLEC01", "OP-4", "dispatch=false", {"A1", "A2", "A3", "X1", "X2", "X3", "X4"}),
        ("CLEC01", "OP-4", "dispatch=true", {"X5"}),
        ("CLEC01", "OP-3", "all", {"A2", "X1", "X2", "X3", "X5"}),  # a proportion lists the misses: A2
        ("CLEC02", "OP-4", "dispatch=false", CLEC02),
        ("CLEC02", "OP-3", "all", {"B2", "B3"}),
    ],
)
def test_a_clec_sees_only_its_own_records_of_the_cell(store, capsys, carrier, measure, submeasure, own):
    """A CLEC's explanation lists exactly its own records of the cell (the excluded ones, and the included ones
    that weigh most), in text and JSON: never another CLEC's, never the ILEC's, never its own of another cell."""
    key = ("--measure", measure, "--carrier", carrier, *CELL, "--submeasure", submeasure, "--top", "20")
    _, text, _ = explain(capsys, store, *key)
    _, as_json, _ = explain(capsys, store, *key, "--json")
    e = json.loads(as_json)
    listed = [*e["top_records"]["records"], *e["excluded_records"]["records"]]
    assert {r["record_id"] for r in listed} == own == _ids(text)
    assert {r["carrier_id"] for r in listed} == {carrier}
    assert _ids(json.dumps(e)) == own


def test_the_aggregate_lists_every_clec_but_not_the_ilec(store, capsys):
    """The all-CLEC cell lists both CLECs' excluded records, with their carriers, and none of the retail analog."""
    _, text, _ = explain(
        capsys, store, "--measure", "OP-4", "--carrier", "_all", *CELL, "--submeasure", "dispatch=false"
    )
    assert "Excluded CLEC records of the cell: 6 of 6 shown" in text
    assert re.search(rf"^  B2\s+CLEC02\s+test_order\s+{re.escape(ORDERS)}\s+7$", text, flags=re.M)
    assert _ids(text) == (CLEC01 | CLEC02) - {"X5"}


def test_a_record_with_an_unknown_dimension_value_is_listed_in_its_null_cell(store, capsys):
    """PO-5 splits by channel: A3 has none, so it is excluded (no_channel) in CLEC01's channel=null cell, listed
    there with its empty channel; the channel=electronic cell only says that such a record exists."""
    base = ("--measure", "PO-5", "--carrier", "CLEC01", *CELL)
    _, text, _ = explain(capsys, store, *base, "--submeasure", "channel=electronic")
    assert (
        "also 1 record(s) of CLEC01, CO, resale_pots with an unknown dimension value: submeasure channel=null" in text
    )
    assert _ids(text) == set()  # A1 met the benchmark: nothing weighs on a gap, nothing is excluded
    _, text, _ = explain(capsys, store, *base, "--submeasure", "channel=null")
    assert re.search(rf"^  A3\s+no_channel\s+{re.escape(ORDERS)}\s+9$", text, flags=re.M)
    assert re.search(r"^    channel\s+\(empty\)$", text, flags=re.M)


def test_a_changed_or_missing_input_is_said_and_its_rows_not_shown(tmp_path, capsys):
    """After the run, an input file that changed (or is gone) is named with both sha256 (or the read error);
    its rows are not shown, while the excluded records, from the store, are still listed."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    out = tmp_path / "store"
    pipeline.run(_plan(), data, PERIOD, out, allow_empty=True)
    orders = data / "orders.csv"
    run_sha = hashlib.sha256(orders.read_bytes()).hexdigest()
    orders.write_text(orders.read_text().replace("2026-10-01T16:30:00-04:00", "2026-10-01T16:30:00-06:00"))
    now_sha = hashlib.sha256(orders.read_bytes()).hexdigest()
    code, text, _ = explain(capsys, out, *OP4)
    assert code == 0
    assert (
        f"{orders}: changed since the run (sha256 now {now_sha}, the run read {run_sha}): its rows are not shown"
        in text
    )
    assert "2026-10-01T16:30:00" not in text and "input not shown: see the check of its file above" in text
    assert re.search(rf"^  X2\s+customer_caused_miss\s+{re.escape(str(orders))}\s+8$", text, flags=re.M)
    orders.unlink()
    _, as_json, _ = explain(capsys, out, *OP4, "--json")
    (check,) = json.loads(as_json)["inputs"]["files"]
    assert (check["status"], check["sha256_now"]) == ("unreadable", None) and "No such file" in check["detail"]


def test_rows_are_re_read_from_hive_partitioned_parquet_files(tmp_path, capsys):
    """The same orders as two Parquet files under orders/state=CO/ (the state only in the path): each listed
    record's row is read from its own file at its own row number, with the partition's value, as the run read it."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data, ignore=shutil.ignore_patterns("orders.csv", "README.md"))
    orders = pacsv.read_csv(FIXTURE / "orders.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    orders = orders.drop_columns(["state"]).cast(
        pa.schema([(n, pa.string()) for n in orders.drop_columns(["state"]).column_names])
    )
    folder = data / "orders" / "state=CO"
    folder.mkdir(parents=True)
    pq.write_table(orders.slice(0, 8), folder / "part-0.parquet")  # rows 1-8: R1 ... X2
    pq.write_table(orders.slice(8), folder / "part-1.parquet")  # rows 1-8 of the second file: A3 ... R5
    out = tmp_path / "store"
    pipeline.run(_plan(), data, PERIOD, out, allow_empty=True)
    _, as_json, _ = explain(capsys, out, *OP4, "--json")
    e = json.loads(as_json)
    records = {r["record_id"]: r for r in [*e["top_records"]["records"], *e["excluded_records"]["records"]]}
    first, second = str(folder / "part-0.parquet"), str(folder / "part-1.parquet")
    assert (records["A2"]["source_file"], records["A2"]["source_row"]) == (first, 5)
    assert (records["A3"]["source_file"], records["A3"]["source_row"]) == (second, 1)
    assert (records["X4"]["source_file"], records["X4"]["source_row"]) == (second, 5)
    assert records["A2"]["input"]["received_at"] == "2026-10-01T16:30:00-04:00"
    assert records["A3"]["derived"]["received_at"]["effective_received_date"] == "2026-10-05"
    assert records["X4"]["input"]["requested_due_date"] == "2026-10-20"
    assert sorted(f["status"] for f in e["inputs"]["files"]) == ["unchanged", "unchanged"]


def test_excluded_limits_the_listing_and_says_how_many_there_are(store, capsys):
    """--excluded 2 lists the first two of CLEC01's four excluded records, and says 2 of 4; --excluded 0 none."""
    _, text, _ = explain(capsys, store, *OP4, "--excluded", "2")
    assert "Excluded CLEC records of the cell: 2 of 4 shown" in text
    assert re.findall(rf"^  (X\d)\s+\S+\s+{re.escape(ORDERS)}\s+\d+$", text, flags=re.M) == ["X1", "X3"]
    _, as_json, _ = explain(capsys, store, *OP4, "--excluded", "0", "--top", "0", "--json")
    e = json.loads(as_json)
    assert e["excluded_records"]["total"] == 4 and e["excluded_records"]["records"] == []
    assert e["inputs"]["files"] == []  # nothing listed, nothing re-read
    code, _, err = explain(capsys, store, *OP4, "--excluded", "-1")
    assert code == 2 and "--top and --excluded must be 0 or more" in err


def test_a_run_given_a_relative_data_path_is_explained_from_another_directory(tmp_path, capsys, monkeypatch):
    """The demo runs with `--data demo-data`: the manifest keeps the path as given and where it resolved,
    so explain re-reads the rows from any working directory."""
    shutil.copytree(FIXTURE, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    pipeline.run(_plan(), Path("data"), PERIOD, tmp_path / "store", allow_empty=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, text, _ = explain(capsys, tmp_path / "store", *OP4)
    assert code == 0 and "2026-10-01T16:30:00-04:00" in text and "unreadable" not in text
