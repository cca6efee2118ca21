"""carrier_sla.vocabulary: one definition of the statuses and the cell key, tables every client
reads alike (pyarrow, DuckDB, polars, pandas), dimension columns typed as their input fields, the
aggregate's spelling, the output schema version, and the README generated from it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import carrier_sla
from carrier_sla import vocabulary
from carrier_sla.engine import pipeline
from carrier_sla.engine.period_results import previous_misses
from carrier_sla.errors import StoreError
from carrier_sla.plan.fields import dimension_types, record_schema
from carrier_sla.plan.load import plan_from_document
from carrier_sla.store import layout
from carrier_sla.store.view import open_store
from tests.conftest import example_document, keep_measures

PACKAGE = Path(carrier_sla.__file__).parent
PARQUET_TABLES = [t for t in vocabulary.TABLES.values() if t.file_format == "parquet"]


def _string_literals(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if values and len(values) == len(node.elts):
                yield node.lineno, values


def test_the_cell_key_and_the_status_list_are_defined_once():
    """No module but vocabulary spells a list of statuses or a cell key (columns among the key's,
    with measure_id, state and product) by hand."""
    key_columns = set(vocabulary.CELL_KEY) | {"tier", "payee"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "vocabulary.py":
            continue
        for line, values in _string_literals(ast.parse(path.read_text())):
            names = set(values)
            if len(names & set(vocabulary.STATUSES)) >= 3:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: statuses {values}")
            if {"measure_id", "state", "product"} <= names <= key_columns:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: cell key {values}")
    assert found == []
    text = (PACKAGE / "vocabulary.py").read_text()
    assert len(re.findall(r"^STATUSES = ", text, re.M)) == 1 and len(re.findall(r"^def cell_key\(", text, re.M)) == 1


def test_status_words_cover_every_status():
    """The report's words for statuses name exactly the vocabulary's statuses."""
    from carrier_sla.readers import report_words

    assert set(report_words.STATUS_WORDS) == set(vocabulary.STATUSES)


def test_cell_key_from_a_measures_dimensions():
    """A measure's key puts its own dimension fields where the submeasure label stands otherwise."""
    assert vocabulary.cell_key() == ("measure_id", "submeasure", "state", "product", "scope", "carrier_id")
    assert vocabulary.cell_key(["order_type", "dispatch"]) == (
        "measure_id", "order_type", "dispatch", "state", "product", "scope", "carrier_id",
    )  # fmt: skip
    a = {"scope": "clec", "carrier_id": "C1", "state": "AZ", "product": "p", "order_type": "new"}
    b = a | {"order_type": "change"}
    assert vocabulary.cell_id("OP-3", ["order_type"], a) != vocabulary.cell_id("OP-3", ["order_type"], b)
    # seeds keep their text: the aggregate's carrier reads 'None', a missing dimension value too
    agg = {"scope": "clec_aggregate", "carrier_id": vocabulary.AGGREGATE, "state": "AZ", "product": "p"}
    assert vocabulary.cell_id("OP-4", ["dispatch"], agg) == (
        "OP-4", "clec_aggregate", "None", "AZ", "p", "dispatch=None",
    )  # fmt: skip


def test_the_aggregate_can_never_be_a_carrier_id():
    """Every record type's carrier_id pattern refuses the aggregate's spelling."""
    for record_type in ("orders", "troubles", "lines"):
        pattern = record_schema(record_type)["properties"]["carrier_id"]["pattern"]
        assert re.match(pattern, "CLEC01") and not re.match(pattern, vocabulary.AGGREGATE)


def test_a_record_with_the_aggregates_carrier_id_is_rejected(run_checker):
    """An order whose carrier_id is the aggregate's spelling is rejected by the contract, naming the column."""
    from tests.test_contract import order

    run = run_checker(orders=[order("O1"), order("O2", carrier_id=vocabulary.AGGREGATE)])
    rejects = run.rejects()
    bad = rejects[rejects["record_id"] == "O2"].iloc[0]
    assert (bad["input_field"], bad["reason"]) == ("carrier_id", "invalid_format")
    assert vocabulary.AGGREGATE not in set(run.results["carrier_id"][run.results["scope"] == "clec"])


def test_no_column_is_an_sql_keyword():
    """No column of any table is a DuckDB reserved or column-name keyword (row, column, order ...)."""
    duckdb = pytest.importorskip("duckdb")
    kinds = ("reserved", "column_name", "type_function")
    words = {
        w
        for (w,) in duckdb.sql(
            f"SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category IN {kinds}"
        ).fetchall()
    }
    for table in vocabulary.TABLES.values():
        assert not set(table.names) & words, table.name


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """Two generated months under example-qc (remedies, escalation, statements, adjustments)."""
    from carrier_sla.plan.load import load_plan
    from carrier_sla.synthetic.generate import generate

    root = tmp_path_factory.mktemp("vocab")
    generate(root / "data", "2026-10", periods=2, scale=600, seed=11, fmt="parquet")
    plan = load_plan("example-qc")
    for period in ("2026-09", "2026-10"):
        pipeline.run(plan, root / "data", period, root / "store", max_reject_rate=1.0)
    return root / "store"


def _normal(frame: pd.DataFrame, sort: list[str]) -> pd.DataFrame:
    """Rows in one order, every value as Python text (None for null), to compare across clients."""
    frame = frame[sorted(frame.columns)].astype(object)
    frame = frame.where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    return frame.sort_values(sort, kind="stable", na_position="first").reset_index(drop=True)


@pytest.mark.parametrize("table", PARQUET_TABLES, ids=lambda t: t.name)
def test_every_client_reads_every_table_alike(demo_store, table):
    """pyarrow.dataset (hive), DuckDB, polars and pandas read a whole table of the store with the
    same columns, types and rows; `period` (and records' measure_id) come from the path only."""
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    folder = demo_store / table.name
    files = sorted(folder.rglob("*.parquet"))
    assert files
    for f in files:  # partition columns live in the path only
        assert not set(table.partitions) & set(pq.read_schema(f).names)
    arrow = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert arrow.num_rows > 0 or table.name == "adjustments"
    names = set(arrow.column_names)
    assert names == set(table.names) | set(table.partitions) | set(
        dimension_types(_plan()) if table.dimensions_after else []
    )
    glob = str(folder / "**" / "*.parquet")
    con = duckdb.connect()
    quoted = ", ".join(sorted(names))  # unquoted: no column is an SQL keyword
    duck = con.sql(f"SELECT {quoted} FROM read_parquet('{glob}', hive_partitioning=true)").arrow()
    if hasattr(duck, "read_all"):
        duck = duck.read_all()
    polars = pl.scan_parquet(glob, hive_partitioning=True).collect().to_arrow()
    panda = pd.read_parquet(folder, dtype_backend="pyarrow")
    types = {f.name: f.type for f in arrow.schema}
    for name, other in (("duckdb", duck), ("polars", polars)):
        assert set(other.column_names) == names, name
        for f in other.schema:
            got, want = f.type, types[f.name]
            if pa.types.is_dictionary(want):
                want = want.value_type
            if pa.types.is_dictionary(got):
                got = got.value_type
            assert _family(got) == _family(want), (name, f.name, got, want)
    for f in table.columns:  # the files' own types are the vocabulary's
        assert types[f.name] == f.type, f.name
    assert str(types["period"]) in ("string", "large_string")
    sort = [
        c for c in (*table.partitions, *vocabulary.CELL_KEY, "record_id", "input_row", "tier", "payee") if c in names
    ]
    want = _normal(arrow.to_pandas(types_mapper=pd.ArrowDtype), sort)
    assert len(want) == arrow.num_rows
    for name, frame in (
        ("duckdb", duck.to_pandas(types_mapper=pd.ArrowDtype)),
        ("polars", polars.to_pandas(types_mapper=pd.ArrowDtype)),
        ("pandas", panda.astype({c: object for c in panda.columns if str(panda[c].dtype) == "category"})),
    ):
        got = _normal(frame.reset_index(drop=True), sort)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=f"{table.name} read by {name}")


def _family(kind: pa.DataType) -> str:
    """The kind of a type as clients may spell it (large_string is string, a timestamp's unit aside)."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "string"
    if pa.types.is_decimal(kind):
        return "decimal"
    return str(kind)


def _plan():
    from carrier_sla.plan.load import load_plan

    return load_plan("example-qc")


def test_the_aggregate_is_spelt_one_way_in_the_store(demo_store):
    """The aggregate's carrier_id is _all in results, the ledger and the escalation; never null."""
    view = open_store(demo_store)
    results = view.results("2026-10")
    aggregate = results[results["scope"] == vocabulary.CLEC_AGGREGATE]
    assert len(aggregate) and set(aggregate["carrier_id"]) == {vocabulary.AGGREGATE}
    assert results["carrier_id"].notna().all()
    ledger = view.remedies("2026-10")
    assert set(ledger[ledger["tier"] == "tier2"]["carrier_id"]) <= {vocabulary.AGGREGATE}
    assert view.escalation("2026-10")["carrier_id"].notna().all()
    assert set(results["status"]) <= set(vocabulary.STATUSES)
    for column in ("retail_n", "df", "resamples", "seed", "allowed_misses", "clec_n"):
        assert pa.types.is_integer(view.table("results", "2026-10").schema.field(column).type), column


def test_a_store_of_the_older_schema_version_is_refused(demo_store, monkeypatch):
    """Readers and runs refuse a store written under another output schema version (here: the
    demo store, once this carrier_sla reads a newer one), in one line naming the store and
    saying to rerun its months."""
    written = layout.OUTPUT_SCHEMA_VERSION
    monkeypatch.setattr(layout, "OUTPUT_SCHEMA_VERSION", str(int(written) + 1))
    with pytest.raises(StoreError) as err:
        open_store(demo_store).results("2026-10")
    message = str(err.value)
    assert "\n" not in message and str(demo_store) in message and f"version {written}" in message
    assert "rerun" in message
    before = sorted(p.name for p in (demo_store / "runs").iterdir())
    with pytest.raises(StoreError, match="rerun its months"):
        pipeline.run(_plan(), demo_store.parent / "data", "2026-10", demo_store, max_reject_rate=1.0)
    assert open_store(demo_store).run_id in before  # nothing published


def _split_plan(field: str, measure: str = "OP-3"):
    doc = keep_measures(example_document(), ("OP-3", "OP-4"))
    for m in doc["measures"]:
        if m["id"] == measure:
            m["dimensions"] = [{"field": field}]
    doc["statistics"].pop("critical_values")
    doc["statistics"] |= {"alpha": 0.05, "alpha_after_miss": 0.2}
    return plan_from_document(json.loads(json.dumps(doc)), f"example-qc split by {field}")


@pytest.mark.parametrize(("field", "arrow_type"), [("cancelled", pa.bool_()), ("order_type", pa.string())])
def test_a_plan_split_by_a_boolean_or_a_code_field(tmp_path, field, arrow_type):
    """A measure split by a boolean (cancelled) or a code (order_type) field runs end to end: its
    dimension column is typed as the input field in results and records, each value is a cell of
    its own, and last month's misses are told apart by that value."""
    from carrier_sla.synthetic.generate import generate

    generate(tmp_path / "data", "2026-10", periods=2, scale=600, seed=3, fmt="parquet")
    plan = _split_plan(field)
    out = tmp_path / "store"
    for period in ("2026-09", "2026-10"):
        pipeline.run(plan, tmp_path / "data", period, out, max_reject_rate=1.0)
    view = open_store(out)
    results = view.table("results", "2026-09")
    assert results.schema.field(field).type == arrow_type
    records = view.table("records", "2026-09")
    assert records.schema.field(field).type == arrow_type
    frame = results.to_pandas()
    op3 = frame[(frame["measure_id"] == "OP-3") & (frame["scope"] == "clec")]
    assert op3[field].notna().all()
    values = set(op3[field])
    assert len(values) >= 2 if field == "order_type" else values <= {True, False}
    assert not op3.duplicated(list(vocabulary.cell_key([field]))).any()
    assert set(op3["submeasure"]) == {f"{field}={str(v).lower()}" for v in values}
    missed = previous_misses(out, "2026-10", plan)
    misses = frame[frame["status"] == "miss"]
    assert len(missed) == len(misses)  # one entry per missed cell: none shared
    op3_missed = [k for k in missed if k[0] == "OP-3"]
    assert all(k[-1].startswith(f"{field}=") for k in op3_missed)
    assert len(op3_missed) == int((misses["measure_id"] == "OP-3").sum())


def test_readme_lists_the_vocabularys_tables():
    """The README's output tables section is the text vocabulary.table_markdown() generates."""
    text = (PACKAGE.parent / "README.md").read_text()
    start, end = "<!-- vocabulary:tables -->\n", "<!-- /vocabulary:tables -->"
    assert text[text.index(start) + len(start) : text.index(end)] == vocabulary.table_markdown()


def test_money_reads_one_way_in_every_command():
    """`USD 1,500.00`: thousands grouped, to the cent, the currency first; differences signed."""
    from decimal import Decimal

    assert vocabulary.money(Decimal("10450")) == "10,450.00"
    assert vocabulary.money("10450.5", "USD") == "USD 10,450.50"
    assert vocabulary.money(Decimal("-1234.567"), "CAD", sign=True) == "CAD -1,234.57"
    assert vocabulary.money(0, "USD", sign=True) == "USD +0.00"
    # no command formats money itself: the f-string patterns of the old spellings are gone
    import re
    from pathlib import Path

    package = Path(vocabulary.__file__).parent
    spelled = [
        f"{path.relative_to(package)}:{n}"
        for path in sorted((package / "cli").glob("*.py")) + sorted((package / "readers").glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(total|paid|amount|remedies)\S*\}?[^\n]*:[+]?,\.2f\}", line) and "html" not in path.name
    ]
    assert spelled == []
