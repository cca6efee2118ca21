"""CSV outputs neutralise text a spreadsheet would run as a formula (OWASP: a quote in front of a text
cell starting with =, +, -, @, tab or carriage return); numbers stay numbers."""

from __future__ import annotations

import csv
import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from carrier_sla.cli.main import main
from carrier_sla.readers import report
from carrier_sla.store import csv_safe
from tests.conftest import write_inputs

PERIOD = "2026-10"
RISKY_IDS = ['=HYPERLINK("http://x.example","click")', "+1-555-1234", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]
PLAIN_IDS = ["-7", "+15551234", "O-12", "12.5"]  # a plain number is no formula; text not starting so is left alone


def test_text_cells_get_a_quote_and_numbers_stay_numbers():
    """Each risky start is quoted; plain numbers written as text ("-12.50", money in what-if and diff CSVs),
    numeric columns with negative values, nulls and other text are left as they are."""
    frame = pd.DataFrame(
        {
            "text": ["=1+2", "+x", "-2+3", "@A1", "\tx", "\rx", "-12.50", "ok", None],
            "number": [-1.5, -2, 0, 1, 2, 3, 4, 5, 6],
        }
    )
    out = csv_safe.frame(frame)
    assert out["text"].tolist()[:8] == ["'=1+2", "'+x", "'-2+3", "'@A1", "'\tx", "'\rx", "-12.50", "ok"]
    assert pd.isna(out["text"].iloc[8]) and out["number"].tolist() == frame["number"].tolist()
    assert frame["text"].iloc[0] == "=1+2"  # the input frame is not changed
    table = pa.table({"text": pa.array(["=1", "-5", None]).dictionary_encode(), "n": pa.array([-1, -2, -3])})
    assert csv_safe.table(table).to_pydict() == {"text": ["'=1", "-5", None], "n": [-1, -2, -3]}


def test_mixed_columns_keep_every_value_that_is_not_risky_text():
    """A column is checked value by value through its distinct values: equal values of other types
    (Decimal 1.0 and 1.00, 1 and True), both kinds of missing value and repeated risky text keep
    exactly what they were, and every copy of a risky text is quoted; string columns keep their dtype."""
    values = ["=x", Decimal("1.00"), Decimal("1.0"), 1, True, None, float("nan"), "=x", "-3", "@y"]
    out = csv_safe.frame(
        pd.DataFrame({"mixed": values, "typed": pd.array(["=a", None, "b", "=a"] * 2 + ["c", "d"], dtype="string")})
    )
    got = out["mixed"].tolist()
    assert got[0] == got[7] == "'=x" and got[9] == "'@y" and got[8] == "-3"
    assert [repr(x) for x in got[1:5]] == ["Decimal('1.00')", "Decimal('1.0')", "1", "True"]
    assert got[5] is None and got[6] != got[6]  # None and NaN as they were
    assert out["typed"].dtype == "string" and out["typed"].tolist()[:4] == ["'=a", pd.NA, "b", "'=a"]
    unhashable = csv_safe.frame(pd.DataFrame({"cells": [["=x"], "=y", None]}))["cells"].tolist()
    assert unhashable == [["=x"], "'=y", None]  # a list is no text: left as it is


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A month whose CLEC01 orders carry risky ids, and one rejected row of CLEC01 with a risky state;
    then the month again with one more risky order (for diff). (store, run ids)."""
    root = tmp_path_factory.mktemp("csv")
    orders = [{"order_id": i} for i in RISKY_IDS + PLAIN_IDS] + [{"order_id": "R1", "state": "=STATE()"}]
    store = root / "store"
    for k, extra in enumerate(([], [{"order_id": "=EVIL()"}])):
        data = write_inputs(root / f"data{k}", orders=orders + extra)
        args = ["run", "--plan", "example-qc", "--data", str(data), "--period", PERIOD, "--out", str(store)]
        assert main([*args, "--quiet", "--max-reject-rate", "1", "--allow-empty"]) == 0
    manifests = [json.loads(p.read_text()) for p in (store / "runs").glob("*/manifest.json")]
    return store, [m["run_id"] for m in sorted(manifests, key=lambda m: m["started_at"])]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_package_csvs_quote_risky_input_text(published, tmp_path):
    """records.csv and rejects.csv of a package: every risky id and raw value quoted, plain numbers and
    numeric columns as written; the Parquet files keep the input as written."""
    store, _ = published
    out = tmp_path / "package"
    assert main(["package", "--store", str(store), "--period", PERIOD, "--carrier", "CLEC01", "--out", str(out)]) == 0
    records = rows(out / "records.csv")
    ids = {r["record_id"] for r in records}
    assert {"'" + i for i in [*RISKY_IDS, "=EVIL()"]} <= ids and set(PLAIN_IDS) <= ids
    assert not any(i in ids for i in RISKY_IDS)
    assert all(r["source_row"].isdigit() for r in records)
    (reject,) = [r for r in rows(out / "rejects.csv") if r["record_id"] == "R1"]
    assert reject["raw_value"] == "'=STATE()"
    parquet = pd.read_parquet(out / "records" / "measure_id=OP-3.parquet")
    assert set(RISKY_IDS) <= set(parquet["record_id"])


def test_diff_csvs_quote_risky_input_text(published, tmp_path):
    """The record added between the two runs appears quoted in diff's records.csv."""
    store, runs = published
    out = tmp_path / "diff"
    assert main(["diff", "--store", str(store), "--run", runs[0], "--run", runs[1], "--out", str(out), "--json"]) == 0
    added = {r["record_id"] for r in rows(out / "records.csv") if r["change"] == "added"}
    assert added == {"'=EVIL()"}


def test_report_csvs_quote_text_cells(published, tmp_path):
    """The report's CSV tables quote a risky text cell and leave negative numbers alone."""
    store, _ = published
    built = report.build(store, PERIOD)
    notes = pd.DataFrame([{"kind": "exclusion", "measure_id": "=cmd|' /C calc'!A0", "reason": "-1+1", "records": -3}])
    report.write(dataclasses.replace(built, notes=notes), tmp_path / "report")
    (row,) = rows(tmp_path / "report" / "notes.csv")
    assert row == {"kind": "exclusion", "measure_id": "'=cmd|' /C calc'!A0", "reason": "'-1+1", "records": "-3"}


def test_statements_are_neutralised_together_and_cut_apart_as_each_alone():
    """A month's statements are neutralised in one pass when they share their columns' types, then cut apart:
    each comes out as csv_safe.frame gives it alone; sheets of other types are neutralised one by one."""

    def sheet(payee: str, notes: list[object]) -> pd.DataFrame:
        return pd.DataFrame({"payee": payee, "note": pd.Series(notes, dtype=object), "amount": 1.5})

    same = [sheet("CLEC01", ["ok", RISKY_IDS[0]]), sheet("CLEC02", [RISKY_IDS[1], None, "-7"]), sheet("CLEC03", [])]
    mixed = [*same, pd.DataFrame({"payee": ["CLEC04"], "note": [3], "amount": [2.0]})]
    for sheets in (same, mixed):
        got = csv_safe.frames(sheets)
        assert len(got) == len(sheets)
        for alone, together in zip((csv_safe.frame(s) for s in sheets), got, strict=True):
            pd.testing.assert_frame_equal(together, alone)
    assert csv_safe.frames(same)[1]["note"].tolist()[0] == "'" + RISKY_IDS[1]
