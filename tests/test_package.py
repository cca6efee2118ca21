"""carrier-sla package: one CLEC's confidential package of one month, isolated from every other carrier."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carrier_sla.cli.main import main
from carrier_sla.errors import StoreError
from carrier_sla.readers import package
from carrier_sla.store import layout as store
from carrier_sla.store.view import read_table
from carrier_sla.vocabulary import AGGREGATE

MONTHS = ("2026-08", "2026-09", "2026-10")
C, P = "CLEC03", "2026-10"


@pytest.fixture(scope="module")
def built(generated_store, tmp_path_factory):
    """The shared generated store (three months under example-qc) and the package of CLEC03 for 2026-10."""
    store_dir = generated_store[0]
    pkg = tmp_path_factory.mktemp("package") / "pkg"
    assert main(["package", "--store", str(store_dir), "--period", P, "--carrier", C, "--out", str(pkg)]) == 0
    return store_dir, pkg


def _package(out: Path, target: Path, *extra: str, carrier: str = C, period: str = P) -> int:
    return main(
        ["package", "--store", str(out), "--period", period, "--carrier", carrier, "--out", str(target), *extra]
    )


def _store_records(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "records" / f"period={P}").astype({"carrier_id": str, "measure_id": str})


def _texts(pkg: Path) -> dict[str, str]:
    """Every string a package file holds: text files whole; for Parquet, its column names, key-value
    metadata and the distinct values of every string or dictionary column."""
    texts = {}
    for path in sorted(p for p in pkg.rglob("*") if p.is_file()):
        name = str(path.relative_to(pkg))
        if path.suffix != ".parquet":
            texts[name] = path.read_text()
            continue
        table = pq.read_table(path)
        parts = [*table.column_names, *(f"{k!r}{v!r}" for k, v in (table.schema.metadata or {}).items())]
        for field in table.schema:
            if (
                pa.types.is_string(field.type)
                or pa.types.is_large_string(field.type)
                or pa.types.is_dictionary(field.type)
            ):
                parts += [str(v) for v in table[field.name].cast(pa.string()).unique().to_pylist() if v is not None]
        texts[name] = "\n".join(parts)
    return texts


def test_package_holds_the_clec_results_records_remedies_and_statement(built):
    """The package lists C's result rows with the aggregate rows of the same cells, its records per
    measure, its ledger lines and an exact copy of its statement."""
    out, pkg = built
    names = {str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file()}
    assert {
        "results.parquet",
        "results.csv",
        "remedies.parquet",
        "remedies.csv",
        "statement.csv",
        "records.csv",
        "manifest.json",
        "README.txt",
    } <= names
    assert any(n.startswith("records/measure_id=") for n in names)
    stored = read_table(out, "results", P).to_pandas()
    own = stored[(stored["scope"] == "clec") & (stored["carrier_id"] == C)]
    results = pd.read_parquet(pkg / "results.parquet")
    assert len(results[results["scope"] == "clec"]) == len(own) > 0
    key = ["measure_id", "submeasure", "state", "product"]
    cells = set(map(tuple, own[key].to_numpy()))
    aggregate = results[results["scope"] == "clec_aggregate"]
    assert set(map(tuple, aggregate[key].to_numpy())) == cells
    assert (aggregate["carrier_id"] == AGGREGATE).all()
    assert list(results.columns) == [c for c in stored.columns]  # every result column, in the store's order
    assert len(pd.read_csv(pkg / "results.csv")) == len(results)
    statement = out / "statements" / f"period={P}" / f"statement-{C}.csv"
    assert (pkg / "statement.csv").read_bytes() == statement.read_bytes()
    readme = (pkg / "README.txt").read_text()
    assert f"contains only data of CLEC {C} and all-CLEC aggregate figures" in readme
    rejects = read_table(out, "rejects", P).to_pandas()
    own_rejects = rejects[rejects["carrier_id"] == C]
    assert len(own_rejects) > 0  # the generator writes some bad rows for every carrier
    packaged = pd.read_parquet(pkg / "rejects.parquet")
    assert (packaged["carrier_id"] == C).all()
    assert sorted(packaged["record_id"].astype(str)) == sorted(own_rejects["record_id"].astype(str))


def test_no_other_carrier_appears_anywhere_in_the_package(built):
    """ISOLATION: no carrier id but C (other CLECs, the retail and test carriers, state funds) appears
    in any string of any file, and every record row, result row and ledger line is C's."""
    out, pkg = built
    records = _store_records(out)
    results = read_table(out, "results", P).to_pandas()
    ledger = read_table(out, "remedies", P).to_pandas()
    carriers = set(records["carrier_id"]) | set(results["carrier_id"].dropna()) | set(ledger["payee"])
    others = carriers - {C, AGGREGATE}  # the aggregate names no CLEC (it was null, dropped, before)
    assert {"ILEC", "CLEC01", "CLEC02", "CLEC05"} <= others  # the scan has something to find
    texts = _texts(pkg)
    assert len(texts) >= 10
    leaks = {(name, other) for name, text in texts.items() for other in others if other in text}
    assert not leaks, f"other carriers in the package: {sorted(leaks)}"
    assert all(C in texts[name] for name in ("results.parquet", "remedies.csv", "records.csv", "README.txt"))
    for path in [*sorted((pkg / "records").glob("*.parquet")), pkg / "records.csv"]:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
        assert len(frame) and (frame["carrier_id"] == C).all(), path
    package_results = pd.read_parquet(pkg / "results.parquet")
    assert set(package_results["carrier_id"]) == {C, AGGREGATE}  # its own rows and the aggregate rows of its cells
    remedies = pd.read_parquet(pkg / "remedies.parquet")
    assert set(remedies["payee"]) == {C} and set(remedies["tier"]) == {"tier1"}


def test_package_records_are_exactly_the_records_of_the_clec(built):
    """The (measure, record id) pairs of the package equal those of C in the store's records tables,
    in the per-measure Parquet files and in records.csv alike."""
    out, pkg = built
    records = _store_records(out)
    expected = sorted(map(tuple, records.loc[records["carrier_id"] == C, ["measure_id", "record_id"]].to_numpy()))
    parts = pd.concat([pd.read_parquet(p) for p in sorted((pkg / "records").glob("measure_id=*.parquet"))])
    assert sorted(map(tuple, parts[["measure_id", "record_id"]].to_numpy())) == expected
    csv = pd.read_csv(pkg / "records.csv", dtype=str)
    assert sorted(map(tuple, csv[["measure_id", "record_id"]].to_numpy())) == expected
    assert "lines" in set(parts.loc[parts["measure_id"] == "MR-8", "record_type"])  # the rate's base rows


def test_remedies_total_equals_statement_and_store_manifest(built):
    """The package's ledger adds up to the statement's total line and to the run manifest's total for C."""
    out, pkg = built
    remedies = pd.read_parquet(pkg / "remedies.parquet")
    total = sum(remedies["amount"], Decimal("0.00"))
    assert total > 0
    statement = pd.read_csv(pkg / "statement.csv", dtype=str)
    assert Decimal(statement.loc[statement["line"] == "total", "amount"].item()) == total
    run_id = store.current_provenance(out)["remedies"][f"period={P}"]
    run_manifest = json.loads((out / "runs" / run_id / "manifest.json").read_text())
    assert Decimal(run_manifest["remedies"]["periods"][P]["totals_by_payee"][C]) == total
    assert Decimal(json.loads((pkg / "manifest.json").read_text())["remedies"]["total"]) == total
    csv = pd.read_csv(pkg / "remedies.csv", dtype=str)
    assert sum(map(Decimal, csv["amount"]), Decimal("0.00")) == total


def test_manifest_lists_every_file_with_its_sha256_and_rows(built):
    """manifest.json names carrier, period, source run and plan, and the sha256 and rows of every other file."""
    out, pkg = built
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert (manifest["carrier_id"], manifest["period"]) == (C, P)
    assert manifest["source"]["runs"]["results"] == store.current_provenance(out)["results"][f"period={P}"]
    assert manifest["plan"]["id"] == "example-qc" and len(manifest["plan"]["sha256"]) == 64
    assert manifest["created_at"] and manifest["package_format_version"]
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = {str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(files) == on_disk
    for name, item in files.items():
        assert hashlib.sha256((pkg / name).read_bytes()).hexdigest() == item["sha256"], name
        if name.endswith(".parquet"):
            assert pq.read_metadata(pkg / name).num_rows == item["rows"], name
        elif name.endswith(".csv") and name != "statement.csv":
            assert len(pd.read_csv(pkg / name)) == item["rows"], name


@pytest.mark.parametrize(
    ("carrier", "period", "extra"),
    [
        ("CLEC99", P, ()),  # unknown carrier
        ("ILEC", P, ()),  # the retail carrier has records but no CLEC results
        ("state_fund:CO", P, ()),  # a payee, not a carrier id
        (C, "2026-07", ()),  # a period the store does not hold
        (C, "2026-13", ()),  # not a month
        (C, P, ("--run", "20990101T000000Z-000000")),  # unknown run
    ],
)
def test_refusals_exit_2_and_write_nothing(built, tmp_path, capsys, carrier, period, extra):
    """An unknown carrier, period or run exits 2 and creates no package folder."""
    out, _ = built
    assert _package(out, tmp_path / "pkg", *extra, carrier=carrier, period=period) == 2
    assert "carrier-sla:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_folder_and_fills_an_empty_one(built, tmp_path):
    """A destination holding a file exits 2 and is left as it was; an empty folder receives the package."""
    out, _ = built
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert _package(out, full) == 2
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _package(out, empty) == 0
    assert (empty / "manifest.json").exists()


@pytest.mark.parametrize("failure", ["readme", "copy"])
def test_a_failed_package_leaves_nothing_behind(built, tmp_path, monkeypatch, failure):
    """A failure after data files were written (an exception, or an OSError of the file system) leaves
    neither the package folder nor the temporary folder; the command exits 5."""
    out, _ = built

    def boom(*args, **kwargs):
        if failure == "readme":
            raise RuntimeError("simulated failure")
        raise OSError(28, "No space left on device")

    if failure == "readme":
        monkeypatch.setattr(package, "readme", boom)
    else:
        monkeypatch.setattr(package.shutil, "copyfile", boom)  # the statement copy, after the tables
    assert _package(out, tmp_path / "pkg") == 5
    assert list(tmp_path.iterdir()) == []


def test_run_option_reads_that_runs_view(built, tmp_path):
    """--run packages the month from the named run's view and records that run; a run whose view does
    not hold the month exits 2."""
    out, _ = built
    runs = {m: store.current_provenance(out)["results"][f"period={m}"] for m in MONTHS}
    assert _package(out, tmp_path / "sep", "--run", runs["2026-09"], period="2026-09") == 0
    manifest = json.loads((tmp_path / "sep" / "manifest.json").read_text())
    assert manifest["source"]["view"] == f"runs/{runs['2026-09']}/view"
    assert set(manifest["source"]["runs"].values()) == {runs["2026-09"]}
    assert _package(out, tmp_path / "oct", "--run", runs["2026-08"]) == 2  # the August view has no October


def test_selections_leave_out_other_carriers_and_other_cells():
    """select_results keeps C's rows and the aggregate rows of C's cells only; select_remedies keeps
    C's lines (no Tier 2); select_rejects keeps C's rows when the table names carriers, else None."""
    cell = {"submeasure": "all", "state": "CO", "product": "p"}
    results = pa.Table.from_pylist(
        [
            {"measure_id": "OP-3", **cell, "scope": "clec", "carrier_id": C},
            {"measure_id": "OP-3", **cell, "scope": "clec", "carrier_id": "CLEC01"},
            {"measure_id": "OP-3", **cell, "scope": "clec_aggregate", "carrier_id": AGGREGATE},
            {"measure_id": "OP-4", **cell, "scope": "clec", "carrier_id": "CLEC01"},
            {"measure_id": "OP-4", **cell, "scope": "clec_aggregate", "carrier_id": AGGREGATE},
        ]
    )
    kept = package.select_results(results, C).to_pylist()
    assert [(r["measure_id"], r["scope"], r["carrier_id"]) for r in kept] == [
        ("OP-3", "clec", C),
        ("OP-3", "clec_aggregate", AGGREGATE),
    ]
    ledger = pa.table({"payee": [C, "CLEC01", "state_fund:CO"], "tier": ["tier1", "tier1", "tier2"]})
    assert package.select_remedies(ledger, C)["payee"].to_pylist() == [C]
    rejects = pa.table({"record_id": ["a", "b", "c"], "carrier_id": [C, "CLEC01", None]})
    selected = package.select_rejects(rejects, C)
    assert selected is not None and selected["record_id"].to_pylist() == ["a"]
    assert package.select_rejects(rejects.drop(["carrier_id"]), C) is None
    with pytest.raises(StoreError):
        package.check_isolated("results", pa.table({"carrier_id": [C, "CLEC01"]}), C)


def test_a_ledger_that_disagrees_with_its_run_manifest_is_not_packaged(built, tmp_path, monkeypatch, capsys):
    """When C's ledger lines do not add up to the total its run manifest published, the command exits 5
    naming both sums, and writes nothing."""
    out, _ = built
    monkeypatch.setattr(package, "ledger_total", lambda remedies: Decimal("0.01"))
    assert _package(out, tmp_path / "pkg") == 5
    assert "the run manifest says" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
