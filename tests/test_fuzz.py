"""Property-based fuzzing (issue 14, point 5): random input rows of random types and values, as
CSV and as Parquet, always end in exit 0 or 3 with rows read = accepted + rejected (never exit 5,
never a traceback); random and mutated plan documents never make `validate` raise (exit 0 or 2).

Derandomized (the same examples on every run) and kept small: both together take well under
two minutes. Valid-looking dates lie in 2020-2035, the years example-qc lists holidays for; a
record of the month whose business days reach another year is a plan error by design (exit 2,
issue 12), so calendar years outside that list are only drawn beyond the contract's range
(rejected rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import example_document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carrier_sla.cli.main import main
from carrier_sla.plan.fields import column_type, record_schema

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PERIOD = "2026-10"

# ------------------------------------------------------------------------- input values

GARBAGE = st.sampled_from(
    ["", " ", "x", "NaN", "nan", "inf", "-Infinity", "1e309", "+5", "0x10", "1.5", "-1", "0", "null", "true", "é", "\t"]
)
ANY_TEXT = st.text(max_size=12)
LOCAL = st.datetimes(min_value=dt.datetime(2026, 8, 25), max_value=dt.datetime(2026, 11, 10))
FAR = st.sampled_from(
    [
        "9999-12-31 00:00:00",
        "2600-06-01 09:00:00",
        "0001-01-01T00:00:00Z",
        "1900-01-01",
        "2100-01-01 00:00",
        "2026-02-30",
    ]
)


def _stamp_text(moment: dt.datetime, form: int) -> str:
    text = moment.isoformat(sep=" " if form % 2 else "T")
    return text + ("" if form < 2 else "Z" if form == 2 else "-06:00")


STAMP_TEXT = st.one_of(
    st.builds(_stamp_text, LOCAL, st.integers(0, 3)),
    st.builds(lambda m: m.date().isoformat(), LOCAL),
    FAR,
    GARBAGE,
    ANY_TEXT,
)
DATE_TEXT = st.one_of(st.builds(lambda m: m.date().isoformat(), LOCAL), FAR, GARBAGE, ANY_TEXT)
INTEGER_TEXT = st.one_of(
    st.integers(-3, 20).map(str),
    st.sampled_from([str(2**53 - 1), str(2**53), str(2**63 - 1), str(2**64 - 1), "9" * 23, "9" * 400]),
    GARBAGE,
)
NUMBER_TEXT = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 50).map(str), GARBAGE)
BOOL_TEXT = st.sampled_from(["true", "false", "1", "0", "yes", "no", "T", "maybe", ""])
CODES = {
    "carrier_id": ["CLEC01", "CLEC02", "ILEC", "bad id", ""],
    "state": ["CO", "AZ", "UT", "WA", "OR", "TX", "co", ""],
    "product": ["pots", "ds1", "resale_pots", "ubl_2w", "access_ds1", "lis_trunk", "fiber", ""],
    "order_type": ["new", "change", "transfer", "disconnect", "record", "upgrade", ""],
    "disposition": ["network", "cpe", "customer", "no_trouble_found", "information", "weather", ""],
    "miss_reason": ["customer", "company", "", "other"],
    "channel": ["electronic", "manual", "", "fax"],
    "period": ["2026-10", "2026-09", "2026-13", "9999-12", ""],
    "circuit_id": ["C1", "C2", "C3", ""],
}


def text_values(record_type: str, name: str) -> st.SearchStrategy[str]:
    """Text of one contract column as a CSV would hold it: plausible values, edge values and garbage."""
    prop = record_schema(record_type)["properties"][name]
    kind = column_type(prop)
    if name in ("order_id", "ticket_id"):
        return st.one_of(st.sampled_from(["R1", "R2", "R3", "R4", ""]), ANY_TEXT)
    if name in CODES:
        return st.one_of(st.sampled_from(CODES[name]), ANY_TEXT)
    return {
        "timestamp": STAMP_TEXT,
        "date": DATE_TEXT,
        "integer": INTEGER_TEXT,
        "number": NUMBER_TEXT,
        "bool": BOOL_TEXT,
    }.get(kind, ANY_TEXT)


EDGE_VALUES = {  # typed values no text gives: beyond int64 ns, int64 and uint64 limits, NaN in a float column
    "timestamp": [dt.datetime(9999, 12, 31, 23, 59), dt.datetime(1, 1, 1), dt.datetime(2262, 4, 12)],
    "date": [dt.date(9999, 12, 31), dt.date(1, 1, 1)],
    "bool": [None],
    "integer": [2**63 - 1, -(2**63), 2**64 - 1, float("nan"), float("inf"), 1.5],
    "number": [float("nan"), float("inf"), -float("inf"), 2**63 - 1, 2**64 - 1],
}


def _typed(kind: str, text: str) -> Any:
    """The value a typed Parquet column holds for a text (None where the text is no such value)."""
    try:
        if kind == "timestamp":
            moment = dt.datetime.fromisoformat(text.strip())
            return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
        if kind == "date":
            return dt.date.fromisoformat(text.strip())
        if kind == "bool":
            return {"true": True, "1": True, "false": False, "0": False}.get(text.strip().lower())
        value = float(text)
        return int(value) if kind == "integer" and value.is_integer() and abs(value) < 2**63 else value
    except (ValueError, OverflowError):
        return None


def _typed_array(kind: str, values: list[Any], unit: str, tz: str | None) -> pa.Array:
    if kind == "timestamp":
        return pa.array(values, pa.timestamp(unit, tz))
    if kind == "date":
        return pa.array(values, pa.date32())
    if kind == "bool":
        return pa.array(values, pa.bool_())
    if any(isinstance(v, float) for v in values) or kind == "number":
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if any(v is not None and v >= 2**63 for v in values):
        return (
            pa.array(values, pa.uint64())
            if all(v is None or v >= 0 for v in values)
            else pa.array([None if v is None else float(v) for v in values], pa.float64())
        )
    return pa.array(values, pa.int64())


@st.composite
def parquet_column(draw: st.DrawFn, record_type: str, name: str, texts: list[str]) -> pa.Array:
    """The column's texts as string, large_string, dictionary or binary; or as a column of its own
    Arrow type (timestamps in s, ms or us, with or without a zone), now and then an edge value."""
    values = [t or None for t in texts]
    kind = column_type(record_schema(record_type)["properties"][name])
    encoding = draw(st.sampled_from(["string"] * 10 + ["large", "dictionary", "binary"] + ["typed"] * 15 + ["null"]))
    if encoding == "typed" and kind in EDGE_VALUES:
        typed = [None if t is None else _typed(kind, t) for t in values]
        typed = [draw(st.sampled_from(EDGE_VALUES[kind])) if draw(st.integers(0, 29)) == 0 else v for v in typed]
        if kind == "timestamp" and any(isinstance(v, dt.datetime) and not 1700 < v.year < 2200 for v in typed):
            unit = draw(st.sampled_from(["s", "ms", "us"]))  # a timestamp[ns] column cannot hold them at all
        else:
            unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
        tz = draw(st.sampled_from([None, None, "UTC"]))
        return _typed_array(kind, typed, unit, tz)
    if encoding == "large":
        return pa.array(values, pa.large_string())
    if encoding == "dictionary":
        return pa.array(values, pa.string()).dictionary_encode()
    if encoding == "binary":
        return pa.array([None if v is None else v.encode() for v in values], pa.binary())
    if encoding == "null":
        return pa.nulls(len(values), pa.string())
    return pa.array(values, pa.string())


CLEC_PRODUCTS = ["resale_pots", "ubl_2w", "ubl_ds1", "access_ds1", "lis_trunk"]
RETAIL_PRODUCTS = ["pots", "ds1", "fgd_trunk"]


@st.composite
def good_row(draw: st.DrawFn, record_type: str) -> dict[str, str]:
    """A row the contract accepts: a CLEC's or the retail carrier's, in or near October 2026."""
    retail = draw(st.integers(0, 2)) == 0
    row = {
        "carrier_id": "ILEC" if retail else draw(st.sampled_from(["CLEC01", "CLEC02", "CLEC03"])),
        "state": draw(st.sampled_from(["AZ", "CO", "OR", "UT", "WA"])),
        "product": draw(st.sampled_from(RETAIL_PRODUCTS if retail else CLEC_PRODUCTS)),
    }
    if record_type == "lines":
        lines = draw(st.one_of(st.integers(0, 10**6), st.just(2**53 - 1)))
        return row | {
            "period": draw(st.sampled_from(["2026-10", "2026-10", "2026-09"])),
            "lines_in_service": str(lines),
        }
    received = draw(LOCAL).replace(microsecond=0)
    hours = dt.timedelta(hours=draw(st.floats(0, 400)))
    later = (received + hours).isoformat(sep=" ", timespec="seconds")
    common = {
        "circuit_id": draw(st.sampled_from(["C1", "C2", "C3", ""])),
        "dispatch": draw(st.sampled_from(["true", "false"])),
        "received_at": received.isoformat(sep=" "),
        "test": draw(st.sampled_from(["false", "false", "true", ""])),
    }
    if record_type == "troubles":
        no_access = draw(st.floats(0, max(hours.total_seconds() / 3600 - 0.01, 0)))
        return (
            row
            | common
            | {
                "ticket_id": draw(st.sampled_from(["T1", "T2", "T3", "T4", "T5", "T6"])),
                "cleared_at": draw(st.sampled_from([later, later, ""])),
                "disposition": draw(st.sampled_from(CODES["disposition"][:5])),
                "no_access_hours": draw(st.sampled_from(["", f"{no_access:.2f}"])),
            }
        )
    due = (received + dt.timedelta(days=draw(st.integers(0, 12)))).date().isoformat()
    return (
        row
        | common
        | {
            "order_id": draw(st.sampled_from(["O1", "O2", "O3", "O4", "O5", "O6"])),
            "order_type": draw(st.sampled_from(CODES["order_type"][:5])),
            "due_date": due,
            "completed_at": draw(st.sampled_from([later, later, ""])),
            "quantity": draw(st.sampled_from(["", "1", "3"])),
            "foc_at": (received + dt.timedelta(hours=draw(st.integers(0, 48)))).isoformat(sep=" "),
            "requested_due_date": draw(st.sampled_from(["", due])),
            "cancelled": draw(st.sampled_from(["false", "false", "true"])),
            "miss_reason": draw(st.sampled_from(CODES["miss_reason"][:3])),
            "channel": draw(st.sampled_from(CODES["channel"][:3])),
        }
    )


@st.composite
def input_file(draw: st.DrawFn, record_type: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one input file: rows the contract accepts with now and then a value
    replaced by an edge value or garbage; usually every contract column, now and then one left
    out (a required one: exit 3), repeated (exit 3) or an unknown one added."""
    columns = list(record_schema(record_type)["properties"])
    change = draw(st.sampled_from(["none"] * 27 + ["drop", "repeat", "extra"]))
    if change == "drop":
        columns.remove(draw(st.sampled_from(columns)))
    elif change == "repeat":
        columns.append(draw(st.sampled_from(columns)))
    elif change == "extra":
        columns.append("remarks")
    rows = []
    for _ in range(0 if draw(st.integers(0, 9)) == 0 else draw(st.integers(1, 8))):  # now and then header-only
        good = draw(good_row(record_type))
        rows.append(
            [
                draw(ANY_TEXT)
                if c == "remarks"
                else draw(text_values(record_type, c))
                if draw(st.integers(0, 39)) == 0
                else good[c]
                for c in columns
            ]
        )
    return columns, rows


def write_csv_file(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@st.composite
def input_folder(draw: st.DrawFn) -> tuple[str, dict[str, tuple[list[str], list[list[str]]]], list]:
    """(format, the files' header and text rows by record type, the Parquet tables or [])."""
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    files = {t: draw(input_file(t)) for t in ("orders", "troubles", "lines")}
    tables = []
    if fmt == "parquet":
        for rtype, (header, rows) in files.items():
            if len(set(header)) != len(header) or "remarks" in header:
                arrays = [pa.array([r[i] or None for r in rows], pa.string()) for i in range(len(header))]
            else:
                arrays = [draw(parquet_column(rtype, c, [r[i] for r in rows])) for i, c in enumerate(header)]
                if rows and draw(st.integers(0, 39)) == 0:  # now and then a nested column: exit 3
                    arrays[0] = pa.array([{"v": "x"}] * len(rows))
            tables.append((rtype, pa.Table.from_arrays(arrays, names=header)))
    return fmt, files, tables


@settings(FUZZ, max_examples=80)
@given(
    folder=input_folder(),
    partition_rows=st.sampled_from([0, 0, 1, 3]),
    allow_empty=st.booleans(),
    max_reject_rate=st.sampled_from(["1", "1", "0.5", "0.01"]),
)
def test_any_input_ends_in_exit_0_or_3_and_loses_no_row(folder, partition_rows, allow_empty, max_reject_rate):
    """Whatever the rows hold, a run exits 0 or 3 (never 5, never a traceback), and every input file
    the manifest lists has rows read = accepted + rejected = the rows written."""
    fmt, files, tables = folder
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "store"
        data.mkdir()
        if fmt == "csv":
            for rtype, (header, rows) in files.items():
                write_csv_file(data / f"{rtype}.csv", header, rows)
        else:
            for rtype, table in tables:
                pq.write_table(table, data / f"{rtype}.parquet")
        args = ["run", "--plan", "example-qc", "--data", str(data), "--period", PERIOD, "--out", str(out), "--quiet"]
        args += ["--partition-rows", str(partition_rows), "--max-reject-rate", max_reject_rate]
        code, err = _run(args + (["--allow-empty"] if allow_empty else []))
        assert code in (0, 3), err
        assert "Traceback" not in err
        if code == 3:
            assert err.startswith("carrier-sla: input error: "), err
        manifest = json.loads(next((out / "runs").glob("*/manifest.json")).read_text())
        for entry in manifest["inputs"]:
            written = len(files[entry["record_type"]][1])
            assert entry["rows_read"] == entry["rows_accepted"] + entry["rows_rejected"] == written, entry
        if code == 0:
            rejects = pq.read_table(out / "rejects" / f"period={PERIOD}")
            assert rejects.num_rows == sum(e["rows_rejected"] for e in manifest["inputs"])


def _run(args: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


# -------------------------------------------------------------------------- plan documents

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, 10**400, -1, 0, 10**15]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["", "0000000", "25:99", "2026-02-30", "modified_z", "proportion", "NaN", "1e20", "\ud800"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
DEEP = "@@DEEP@@"


@st.composite
def mutated_plan(draw: st.DrawFn) -> str:
    """A plan's JSON text: example-qc with a few values replaced, deleted or added anywhere (or
    a deep nesting, a repeated key, a non-finite number), or a random JSON document."""
    if draw(st.integers(0, 9)) == 0:
        return json.dumps(draw(JSON_VALUES), allow_nan=True)
    doc: Any = example_document()
    depth = draw(st.sampled_from([3, 63, 64, 65, 400, 5000]))
    for _ in range(draw(st.integers(1, 3))):
        parent, key = None, None
        node = doc
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)) > 0:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        if parent is None:
            continue
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "deep"]))
        if action == "replace":
            parent[key] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        elif action == "add":
            parent.insert(key, draw(JSON_VALUES))
        else:
            parent[key] = DEEP
    text = json.dumps(doc, allow_nan=True).replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    if draw(st.integers(0, 4)) == 0:  # a key given twice
        text = text.replace('{"', '{"twice": 1, "twice": 2, "', 1)
    return text


@settings(FUZZ, max_examples=250)
@given(text=mutated_plan())
def test_validate_never_raises_on_any_plan_document(text):
    """validate answers every JSON document with exit 0 (a valid plan) or 2 (its problems, each with
    a pointer), never an internal error or a traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(text)
        code, err = _run(["validate", "--plan", str(path)])
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith(f"carrier-sla: plan {path}: "), err
