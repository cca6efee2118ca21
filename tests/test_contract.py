"""The input contract: file layouts, typed Parquet, every reject reason, the reject threshold,
missing inputs, and the nothing-lost invariant (rows read = accepted + rejected)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LINE_DEFAULTS, ORDER_DEFAULTS, TROUBLE_DEFAULTS, write_csv, write_inputs

from carrier_sla.engine import pipeline
from carrier_sla.errors import InputDataError, RejectRateExceeded
from carrier_sla.inputs.contract import REJECT_COLUMNS, Reason
from carrier_sla.plan.load import load_plan

PERIOD = "2026-10"
ORDER_COLUMNS = ["order_id", *ORDER_DEFAULTS]
TROUBLE_COLUMNS = ["ticket_id", *TROUBLE_DEFAULTS]


# ------------------------------------------------------------------------------ helpers


def order(rid: str, **change: Any) -> dict[str, Any]:
    """A complete order row (CSV text) with the conftest defaults; `change` may override the id too."""
    return {"order_id": rid, **ORDER_DEFAULTS, **change}


def trouble(rid: str, **change: Any) -> dict[str, Any]:
    return {"ticket_id": rid, **TROUBLE_DEFAULTS, **change}


def line(**change: Any) -> dict[str, Any]:
    return {**LINE_DEFAULTS, **change}


ORDER_TYPES = {
    "received_at": "ts",
    "completed_at": "ts",
    "foc_at": "ts",
    "due_date": "date",
    "requested_due_date": "date",
    "dispatch": "bool",
    "cancelled": "bool",
    "test": "bool",
    "quantity": "int",
}
TROUBLE_TYPES = {
    "received_at": "ts",
    "cleared_at": "ts",
    "dispatch": "bool",
    "test": "bool",
    "no_access_hours": "float",
}


def typed_table(rows: list[dict[str, Any]], types: dict[str, str], tz_columns: tuple[str, ...] = ()) -> pa.Table:
    """CSV-style rows as an Arrow table with typed columns, as a Parquet producer would write them.

    Timestamps are naive (local wall clock) unless listed in tz_columns, where the text must
    carry an offset and becomes a UTC instant; dates are date32; booleans bool; counts int64.
    """
    columns = {}
    for name in rows[0]:
        texts = [r[name] if r[name] != "" else None for r in rows]
        kind = types.get(name)
        if kind == "ts" and name in tz_columns:
            values = [dt.datetime.fromisoformat(t).astimezone(dt.UTC) if t else None for t in texts]
            columns[name] = pa.array(values, pa.timestamp("us", "UTC"))
        elif kind == "ts":
            columns[name] = pa.array([dt.datetime.fromisoformat(t) if t else None for t in texts], pa.timestamp("us"))
        elif kind == "date":
            columns[name] = pa.array([dt.date.fromisoformat(t) if t else None for t in texts], pa.date32())
        elif kind == "bool":
            columns[name] = pa.array([None if t is None else t == "true" for t in texts], pa.bool_())
        elif kind == "int":
            columns[name] = pa.array([None if t is None else int(t) for t in texts], pa.int64())
        elif kind == "float":
            columns[name] = pa.array([None if t is None else float(t) for t in texts], pa.float64())
        else:
            columns[name] = pa.array(texts, pa.string())
    return pa.table(columns)


def run_dir(plan, data: Path, out: Path, period: str = PERIOD, **kwargs: Any) -> pipeline.RunResult:
    kwargs.setdefault("max_reject_rate", 1.0)
    return pipeline.run(plan, data, period, out, **kwargs)


def read_records(out: Path, measure_id: str, period: str = PERIOD) -> pd.DataFrame:
    return pd.read_parquet(out / "records" / f"period={period}" / f"measure_id={measure_id}")


def read_rejects(out: Path, period: str = PERIOD) -> pd.DataFrame:
    return pd.read_parquet(out / "rejects" / f"period={period}" / "part-0.parquet")


def snapshot(store: Path) -> dict[str, str]:
    """sha256 of every published file of the store (results, records, rejects)."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for table in ("results", "records", "rejects")
        if (store / table).exists()
        for p in sorted((store / table).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def qc_plan():
    return load_plan("example-qc")


# ------------------------------------------------------------------------------ layouts


def test_typed_parquet_files_give_the_same_results_as_csv_text(tmp_path, qc_plan):
    """Parquet with timestamp, date32, bool and int columns is read like the same rows as CSV text."""
    orders = [
        order("O1", carrier_id="ILEC", product="pots"),
        order("O2", carrier_id="ILEC", product="pots", completed_at="2026-10-09 12:00:00", dispatch="true"),
        order("O3"),
        order("O4", completed_at="2026-10-12 16:00:00", requested_due_date="2026-10-06"),
    ]
    troubles = [
        trouble("T1", carrier_id="ILEC", product="pots"),
        trouble("T2", carrier_id="ILEC", product="pots", cleared_at="2026-10-13 16:00:00"),
        trouble("T3", no_access_hours="0.5", dispatch="true"),
    ]
    csv_dir = tmp_path / "csv"
    write_csv(csv_dir / "orders.csv", orders)
    write_csv(csv_dir / "troubles.csv", troubles)
    write_csv(csv_dir / "lines.csv", [line()])
    pq_dir = tmp_path / "parquet"
    pq_dir.mkdir()
    pq.write_table(typed_table(orders, ORDER_TYPES), pq_dir / "orders.parquet")
    pq.write_table(typed_table(troubles, TROUBLE_TYPES), pq_dir / "troubles.parquet")
    write_csv(pq_dir / "lines.csv", [line()])

    from_csv = run_dir(qc_plan, csv_dir, tmp_path / "s1")
    from_parquet = run_dir(qc_plan, pq_dir, tmp_path / "s2")

    assert from_parquet.manifest["inputs"][0]["rows_accepted"] == 4
    assert len(read_rejects(tmp_path / "s2")) == 0
    pd.testing.assert_frame_equal(from_csv.results, from_parquet.results)
    for measure in ("OP-3", "OP-4", "MR-6"):
        a = read_records(tmp_path / "s1", measure).drop(columns="source_file")
        b = read_records(tmp_path / "s2", measure).drop(columns="source_file")
        pd.testing.assert_frame_equal(a, b, check_categorical=False)


def test_parquet_timestamp_with_time_zone_is_an_instant_and_without_is_local_wall_clock(tmp_path, qc_plan):
    """A tz-aware Parquet timestamp is a UTC instant placed in the state's local month; a naive one is local time."""
    troubles = [
        # received 15:00Z = 09:00 MDT; cleared 11:00 local (naive): 2 hours
        trouble("T1", received_at="2026-10-13T15:00:00+00:00", cleared_at="2026-10-13 11:00:00"),
        # received 2026-11-01 02:00Z = 2026-10-31 20:00 MDT, cleared 21:30 local: in October, 1.5 hours
        trouble("T2", received_at="2026-11-01T02:00:00+00:00", cleared_at="2026-10-31 21:30:00"),
    ]
    data = write_inputs(tmp_path / "data", [{}], [], [{}])
    (data / "troubles.csv").unlink()
    table = typed_table(troubles, TROUBLE_TYPES)
    table = table.set_column(
        table.column_names.index("received_at"),
        "received_at",
        typed_table(troubles, TROUBLE_TYPES, tz_columns=("received_at",)).column("received_at"),
    )
    assert table.schema.field("received_at").type.tz == "UTC"
    assert table.schema.field("cleared_at").type.tz is None
    pq.write_table(table, data / "troubles.parquet")

    run_dir(qc_plan, data, tmp_path / "out")
    mr6 = read_records(tmp_path / "out", "MR-6").set_index("record_id")
    assert mr6.loc["T1", "value"] == pytest.approx(2.0)
    assert mr6.loc["T2", "value"] == pytest.approx(1.5)  # read as 02:00 local it would be before received


def test_csv_timestamps_with_an_offset_are_instants(run_checker):
    """A CSV timestamp with an offset (Z or -06:00) is an instant; without one it is the state's wall clock."""
    run = run_checker(
        troubles=[
            {"received_at": "2026-10-13T15:00:00Z", "cleared_at": "2026-10-13 11:00:00"},
            {"received_at": "2026-10-13T09:00:00-06:00", "cleared_at": "2026-10-13T13:30:00-04:00"},
        ]
    )
    assert run.record("MR-6", "T1")["value"] == pytest.approx(2.0)
    assert run.record("MR-6", "T2")["value"] == pytest.approx(2.5)  # 15:00Z to 17:30Z


def test_folder_of_csv_and_parquet_files_keeps_each_files_rows_and_numbers(tmp_path, qc_plan):
    """A folder orders/ may mix CSV and Parquet parts; each record keeps its own file and 1-based row."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    (data / "orders.csv").unlink()
    first = [order("A1"), order("A2", completed_at="2026-10-09 12:00:00")]
    second = [order("B1"), order("B2"), order("B3", completed_at="2026-10-12 12:00:00")]
    write_csv(data / "orders" / "part-1.csv", first)
    pq.write_table(typed_table(second, ORDER_TYPES), data / "orders" / "part-2.parquet")

    result = run_dir(qc_plan, data, tmp_path / "out")
    records = read_records(tmp_path / "out", "OP-3").set_index("record_id")
    assert sorted(records.index) == ["A1", "A2", "B1", "B2", "B3"]
    assert records.loc["A2", "source_file"].endswith("part-1.csv") and records.loc["A2", "source_row"] == 2
    assert records.loc["B3", "source_file"].endswith("part-2.parquet") and records.loc["B3", "source_row"] == 3
    inputs = [i for i in result.manifest["inputs"] if i["record_type"] == "orders"]
    assert [(Path(i["path"]).name, i["rows_read"]) for i in inputs] == [("part-1.csv", 2), ("part-2.parquet", 3)]


def test_hive_partitioned_folder_supplies_the_partition_column(tmp_path, qc_plan):
    """orders/state=CO/part.parquet and orders/state=AZ/part.csv without a state column take the state from the path."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    (data / "orders.csv").unlink()
    without_state = [c for c in ORDER_COLUMNS if c != "state"]
    co = [{k: v for k, v in order("CO1").items() if k != "state"}]
    az = [{k: v for k, v in order(i).items() if k != "state"} for i in ("AZ1", "AZ2")]
    (data / "orders" / "state=CO").mkdir(parents=True)
    pq.write_table(typed_table(co, ORDER_TYPES), data / "orders" / "state=CO" / "part.parquet")
    write_csv(data / "orders" / "state=AZ" / "part.csv", az, without_state)

    run_dir(qc_plan, data, tmp_path / "out")
    records = read_records(tmp_path / "out", "OP-3").set_index("record_id")
    assert records["state"].astype(str).to_dict() == {"AZ1": "AZ", "AZ2": "AZ", "CO1": "CO"}
    assert len(read_rejects(tmp_path / "out")) == 0


def test_more_than_one_source_for_a_record_type_is_an_input_error(tmp_path, qc_plan):
    """orders.csv next to orders.parquet (or a folder orders/) is ambiguous and stops the run."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    pq.write_table(typed_table([order("O1")], ORDER_TYPES), data / "orders.parquet")
    with pytest.raises(InputDataError, match="more than one source for orders"):
        run_dir(qc_plan, data, tmp_path / "out")


# --------------------------------------------------------------------------- time zones


def test_spring_forward_local_time_is_rejected_in_colorado_but_fine_in_arizona(run_checker):
    """02:30 on 2026-03-08 does not exist in America/Denver but does in America/Phoenix (no DST)."""
    gap = {
        "received_at": "2026-03-08 02:30:00",
        "foc_at": "",
        "due_date": "2026-03-11",
        "completed_at": "2026-03-10 12:00:00",
    }
    run = run_checker(orders=[{**gap, "state": "CO"}, {**gap, "state": "AZ"}], period="2026-03")
    rejects = run.rejects()
    assert rejects[["record_id", "input_field", "raw_value", "reason"]].values.tolist() == [
        ["O1", "received_at", "2026-03-08 02:30:00", "nonexistent_local_time"]
    ]
    assert run.record("OP-3", "O2")["included"]


def test_ambiguous_fall_back_time_is_the_earlier_instant(run_checker):
    """01:30 on 2026-11-01 in Colorado happens twice; it is read as 01:30 MDT (07:30 UTC), the earlier one."""
    run = run_checker(
        troubles=[
            # 01:30 MDT = 07:30Z to 09:30Z: 2 hours (01:30 MST would be 08:30Z, 1 hour)
            {"received_at": "2026-11-01 01:30:00", "cleared_at": "2026-11-01T09:30:00Z"},
            # 01:30 MDT = 07:30Z to 03:30 MST = 10:30Z: 3 hours
            {"received_at": "2026-11-01 01:30:00", "cleared_at": "2026-11-01 03:30:00"},
        ],
        lines=[{"period": "2026-11"}],
        period="2026-11",
    )
    assert len(run.rejects()) == 0
    assert run.record("MR-6", "T1")["value"] == pytest.approx(2.0)
    assert run.record("MR-6", "T2")["value"] == pytest.approx(3.0)


# ------------------------------------------------------------------------ every reason

# (record type, row overrides, rejected column, raw value as written, reason)
BAD_ROWS: list[tuple[str, dict[str, Any], str, str | None, Reason]] = [
    ("orders", {"order_id": ""}, "order_id", None, Reason.MISSING_VALUE),
    ("orders", {"received_at": ""}, "received_at", None, Reason.MISSING_VALUE),
    ("orders", {"carrier_id": "CLEC 01"}, "carrier_id", "CLEC 01", Reason.INVALID_FORMAT),
    ("orders", {"state": "co"}, "state", "co", Reason.INVALID_FORMAT),
    ("orders", {"state": "COL"}, "state", "COL", Reason.INVALID_FORMAT),
    ("orders", {"order_type": "upgrade"}, "order_type", "upgrade", Reason.INVALID_CODE),
    ("orders", {"channel": "fax"}, "channel", "fax", Reason.INVALID_CODE),
    ("orders", {"state": "TX"}, "state", "TX", Reason.UNKNOWN_STATE),
    ("orders", {"product": "fiber"}, "product", "fiber", Reason.UNKNOWN_PRODUCT),
    ("orders", {"product": "pots"}, "product", "pots", Reason.PRODUCT_NOT_OFFERED),
    ("orders", {"carrier_id": "ILEC", "product": "resale_pots"}, "product", "resale_pots", Reason.PRODUCT_NOT_OFFERED),
    ("orders", {"received_at": "not a date"}, "received_at", "not a date", Reason.UNPARSEABLE_TIMESTAMP),
    (
        "orders",
        {"received_at": "2026-02-30 10:00:00"},
        "received_at",
        "2026-02-30 10:00:00",
        Reason.UNPARSEABLE_TIMESTAMP,
    ),
    (
        "orders",
        {"completed_at": "2026-10-08 25:00:00"},
        "completed_at",
        "2026-10-08 25:00:00",
        Reason.UNPARSEABLE_TIMESTAMP,
    ),
    (
        "orders",
        {"received_at": "2026-03-08 02:30:00"},
        "received_at",
        "2026-03-08 02:30:00",
        Reason.NONEXISTENT_LOCAL_TIME,
    ),
    ("orders", {"due_date": "2026-10-32"}, "due_date", "2026-10-32", Reason.UNPARSEABLE_DATE),
    ("orders", {"due_date": "10/08/2026"}, "due_date", "10/08/2026", Reason.UNPARSEABLE_DATE),
    ("orders", {"due_date": "1900-01-01"}, "due_date", "1900-01-01", Reason.DATE_OUT_OF_RANGE),
    ("orders", {"received_at": "2190-10-05 09:00:00"}, "received_at", "2190-10-05 09:00:00", Reason.DATE_OUT_OF_RANGE),
    ("orders", {"dispatch": "maybe"}, "dispatch", "maybe", Reason.INVALID_BOOLEAN),
    ("orders", {"test": "2"}, "test", "2", Reason.INVALID_BOOLEAN),
    ("orders", {"quantity": "two"}, "quantity", "two", Reason.INVALID_NUMBER),
    ("orders", {"quantity": "1.5"}, "quantity", "1.5", Reason.INVALID_NUMBER),
    ("orders", {"quantity": "0"}, "quantity", "0", Reason.BELOW_MINIMUM),
    # beyond int64 (and beyond 2**53 - 1, the largest integer a double holds exactly)
    ("orders", {"quantity": "99999999999999999999999"}, "quantity", "99999999999999999999999", Reason.ABOVE_MAXIMUM),
    ("orders", {"quantity": "9007199254740992"}, "quantity", "9007199254740992", Reason.ABOVE_MAXIMUM),
    (
        "orders",
        {"quantity": "+5"},
        "quantity",
        "+5",
        Reason.INVALID_NUMBER,
    ),  # integers are -?[0-9]+, as Arrow reads them
    ("orders", {"quantity": "0x10"}, "quantity", "0x10", Reason.INVALID_NUMBER),  # decimal only
    # a year beyond int64 nanoseconds (2262) must not wrap around into the calendars' years
    ("orders", {"received_at": "2600-06-01 09:00:00"}, "received_at", "2600-06-01 09:00:00", Reason.DATE_OUT_OF_RANGE),
    ("orders", {"received_at": "9999-12-31 23:59:59"}, "received_at", "9999-12-31 23:59:59", Reason.DATE_OUT_OF_RANGE),
    ("orders", {"completed_at": "2026-10-05 08:59:59"}, "completed_at", "2026-10-05 08:59:59", Reason.BEFORE_RECEIVED),
    ("orders", {"foc_at": "2026-10-04 10:00:00"}, "foc_at", "2026-10-04 10:00:00", Reason.BEFORE_RECEIVED),
    ("troubles", {"disposition": ""}, "disposition", None, Reason.MISSING_VALUE),
    ("troubles", {"disposition": "weather"}, "disposition", "weather", Reason.INVALID_CODE),
    ("troubles", {"no_access_hours": "abc"}, "no_access_hours", "abc", Reason.INVALID_NUMBER),
    ("troubles", {"no_access_hours": "-1"}, "no_access_hours", "-1", Reason.BELOW_MINIMUM),
    # NaN would act as no delay, an infinity would zero MR-6's duration
    ("troubles", {"no_access_hours": "NaN"}, "no_access_hours", "NaN", Reason.NOT_FINITE),
    ("troubles", {"no_access_hours": "inf"}, "no_access_hours", "inf", Reason.NOT_FINITE),
    ("troubles", {"no_access_hours": "-Infinity"}, "no_access_hours", "-Infinity", Reason.NOT_FINITE),
    ("troubles", {"no_access_hours": "1e309"}, "no_access_hours", "1e309", Reason.NOT_FINITE),
    ("troubles", {"cleared_at": "2026-10-13 08:59:00"}, "cleared_at", "2026-10-13 08:59:00", Reason.BEFORE_RECEIVED),
    # cleared 2 hours after it was received, with 2.01 hours of no access
    ("troubles", {"no_access_hours": "2.01"}, "no_access_hours", "2.01", Reason.NO_ACCESS_EXCEEDS_DURATION),
    ("lines", {"lines_in_service": "-5", "carrier_id": "CLEC09"}, "lines_in_service", "-5", Reason.BELOW_MINIMUM),
    ("lines", {"period": "2026-13", "carrier_id": "CLEC08"}, "period", "2026-13", Reason.INVALID_FORMAT),
    ("lines", {"lines_in_service": "many", "carrier_id": "CLEC07"}, "lines_in_service", "many", Reason.INVALID_NUMBER),
    (
        "lines",
        {"lines_in_service": "99999999999999999999999", "carrier_id": "CLEC06"},
        "lines_in_service",
        "99999999999999999999999",
        Reason.ABOVE_MAXIMUM,
    ),
]
GOOD_ORDERS = 2  # leading good rows of each type, so bad rows start at row 3


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, qc_plan):
    """One run over two good rows per type plus one bad row per case above (run once for the module).

    Returns the run, the rows written per type, the 1-based row of each case, and the folder.
    """
    folder = tmp_path_factory.mktemp("bad")
    rows: dict[str, list[dict[str, Any]]] = {
        "orders": [order("G1"), order("G2", carrier_id="ILEC", product="pots")],
        "troubles": [trouble("G1"), trouble("G2", carrier_id="ILEC", product="pots")],
        "lines": [line(), line(carrier_id="ILEC", product="pots", lines_in_service="1000")],
    }
    positions = {}
    for i, (rtype, change, *_rest) in enumerate(BAD_ROWS):
        build = {"orders": order, "troubles": trouble, "lines": line}[rtype]
        rows[rtype].append(build(f"B{i}", **change) if rtype != "lines" else build(**change))
        positions[i] = len(rows[rtype])
    write_csv(folder / "data" / "orders.csv", rows["orders"], ORDER_COLUMNS)
    write_csv(folder / "data" / "troubles.csv", rows["troubles"], TROUBLE_COLUMNS)
    write_csv(folder / "data" / "lines.csv", rows["lines"], list(LINE_DEFAULTS))
    result = run_dir(qc_plan, folder / "data", folder / "out")
    return result, rows, positions, folder


def test_every_reason_code_has_a_bad_row_case():
    """The cases below exercise every Reason, so a new reason code cannot go untested."""
    assert {case[4] for case in BAD_ROWS} == set(Reason) - {Reason.DUPLICATE_ID}  # duplicates: tests below


@pytest.mark.parametrize(
    "case", range(len(BAD_ROWS)), ids=[f"{c[0]}-{c[4].value}-{c[2]}-{i}" for i, c in enumerate(BAD_ROWS)]
)
def test_bad_row_is_rejected_with_file_row_id_column_raw_value_reason_and_message(bad_run, case):
    """A bad row becomes one reject naming its file, 1-based row, id, column, raw value, reason code and a message."""
    rtype, change, column, raw, reason = BAD_ROWS[case]
    _, rows, positions, folder = bad_run
    rejects = read_rejects(folder / "out")
    got = rejects[(rejects["record_type"] == rtype) & (rejects["input_row"] == positions[case])]
    assert len(got) == 1, got
    got = got.iloc[0]
    assert got["source_file"] == str(folder / "data" / f"{rtype}.csv")
    assert got["input_field"] == column
    assert got["reason"] == reason.value
    assert (None if pd.isna(got["raw_value"]) else got["raw_value"]) == raw
    if rtype == "lines":
        row = rows[rtype][positions[case] - 1]
        assert got["record_id"] == "|".join(row[k] for k in ("period", "carrier_id", "state", "product"))
    elif change.get("order_id") == "":
        assert pd.isna(got["record_id"])
    else:
        assert got["record_id"] == f"B{case}"
    assert column in got["message"] and len(got["message"]) > len(column) + 5


def test_rejects_table_has_the_fixed_column_order(bad_run):
    """The rejects table's columns are REJECT_COLUMNS in that order."""
    _, _, _, folder = bad_run
    assert (
        list(read_rejects(folder / "out").columns)
        == REJECT_COLUMNS
        == [
            "record_type",
            "source_file",
            "input_row",
            "record_id",
            "carrier_id",
            "input_field",
            "raw_value",
            "reason",
            "message",
        ]
    )


def test_a_run_with_bad_rows_continues_with_the_good_ones(bad_run):
    """Bad rows are rejected, not fatal: the good rows are evaluated and judged."""
    result, _, _, folder = bad_run
    assert len(read_rejects(folder / "out")) == len(BAD_ROWS)
    assert set(read_records(folder / "out", "OP-3")["record_id"]) == {"G1", "G2"}
    assert set(read_records(folder / "out", "MR-6")["record_id"]) == {"G1", "G2"}
    cell = result.results[(result.results["measure_id"] == "OP-3") & (result.results["scope"] == "clec")]
    assert cell["clec_n"].tolist() == [1] and cell["retail_n"].tolist() == [1.0]


def test_rows_read_equal_rows_accepted_plus_rejected_per_input_file(bad_run):
    """Nothing is lost: per input file of the manifest, rows read = accepted + rejected, matching file and rejects."""
    result, rows, _, folder = bad_run
    rejects = read_rejects(folder / "out")
    inputs = result.manifest["inputs"]
    assert [i["record_type"] for i in inputs] == ["orders", "troubles", "lines"]
    for entry in inputs:
        rtype = entry["record_type"]
        assert entry["rows_read"] == len(rows[rtype]) == entry["rows_accepted"] + entry["rows_rejected"]
        assert entry["rows_rejected"] == int((rejects["source_file"] == entry["path"]).sum())
        assert entry["rows_rejected"] == sum(c[0] == rtype for c in BAD_ROWS)


# --------------------------------------------------------------------------- duplicates


def test_duplicate_ids_reject_every_copy_after_the_first_in_read_order(run_checker):
    """The first copy of an order id is accepted; the second and third copies are rejected as duplicate_id."""
    run = run_checker(orders=[{"order_id": "X"}, {"order_id": "Y"}, {"order_id": "X"}, {"order_id": "X"}])
    rejects = run.rejects()
    assert rejects[["input_row", "record_id", "input_field", "raw_value", "reason"]].values.tolist() == [
        [3, "X", "order_id", "X", "duplicate_id"],
        [4, "X", "order_id", "X", "duplicate_id"],
    ]
    assert run.record("OP-3", "X")["source_row"] == 1


def test_duplicate_ids_across_files_of_a_folder_reject_the_later_file(tmp_path, qc_plan):
    """An id repeated in a later file of a folder (sorted read order) is a duplicate of the earlier file's copy."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    (data / "troubles.csv").unlink()
    write_csv(data / "troubles" / "a.csv", [trouble("T1"), trouble("T2")])
    write_csv(data / "troubles" / "b.csv", [trouble("T3"), trouble("T1", cleared_at="2026-10-13 12:00:00")])
    run_dir(qc_plan, data, tmp_path / "out")
    rejects = read_rejects(tmp_path / "out")
    assert rejects[["source_file", "input_row", "record_id", "reason"]].values.tolist() == [
        [str(data / "troubles" / "b.csv"), 2, "T1", "duplicate_id"]
    ]
    kept = read_records(tmp_path / "out", "MR-6").set_index("record_id")
    assert kept.loc["T1", "source_file"].endswith("a.csv") and kept.loc["T1", "value"] == pytest.approx(2.0)


def test_duplicate_lines_rows_use_the_composite_key(run_checker):
    """Lines are keyed by (period, carrier, state, product): a repeated key is a duplicate_id reject."""
    run = run_checker(lines=[{}, {"carrier_id": "CLEC02"}, {"lines_in_service": "50"}])
    rejects = run.rejects()
    assert rejects[["record_type", "input_row", "record_id", "reason"]].values.tolist() == [
        ["lines", 3, "2026-10|CLEC01|CO|resale_pots", "duplicate_id"]
    ]


# ---------------------------------------------------------------------------- threshold


def hundred_orders(bad: int) -> list[dict[str, Any]]:
    """100 orders of which the first `bad` have an unknown product."""
    return [{"product": "fiber"} if i < bad else {} for i in range(100)]


def test_reject_share_equal_to_the_limit_passes(run_checker):
    """1 bad order of 100 is exactly the default 1% limit, which is not exceeded: the run completes."""
    run = run_checker(orders=hundred_orders(1), troubles=[{}], lines=[{}], max_reject_rate=0.01)
    assert run.result.manifest["exit_code"] == 0
    assert len(run.rejects()) == 1


def test_reject_share_above_the_limit_fails_the_run(run_checker):
    """2 bad orders of 100 exceed the default 1% limit: RejectRateExceeded names the type and the counts."""
    with pytest.raises(RejectRateExceeded) as info:
        run_checker(orders=hundred_orders(2), troubles=[{}], lines=[{}], max_reject_rate=0.01)
    assert (info.value.record_type, info.value.rejected, info.value.read) == ("orders", 2, 100)


def test_reject_share_is_per_record_type(run_checker):
    """One bad trouble of two fails at a 10% limit even though it is under 10% of all rows read."""
    with pytest.raises(RejectRateExceeded) as info:
        run_checker(orders=[{}] * 20, troubles=[{}, {"disposition": "weather"}], lines=[{}], max_reject_rate=0.1)
    assert info.value.record_type == "troubles"


def test_failed_threshold_publishes_nothing_and_keeps_the_previous_outputs(tmp_path, qc_plan):
    """A run over the limit leaves the period's published files byte-identical and writes its rejects and
    manifest under runs/RUN_ID/."""
    store = tmp_path / "store"
    good = write_inputs(tmp_path / "good", [{}, {"carrier_id": "ILEC", "product": "pots"}], [{}], [{}])
    run_dir(qc_plan, good, store, max_reject_rate=0.01)
    before = snapshot(store)
    assert any(k.startswith("results/period=2026-10") for k in before)

    bad = write_inputs(tmp_path / "bad", [{}, {"state": "TX"}, {"product": "fiber"}], [{}], [{}])
    with pytest.raises(RejectRateExceeded):
        run_dir(qc_plan, bad, store, max_reject_rate=0.01, run_id="failed-run")

    assert snapshot(store) == before
    assert not (store / ".staging" / "failed-run").exists()
    run_folder = store / "runs" / "failed-run"
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 3)
    assert "above the limit" in manifest["error"]
    rejects = pq.read_table(run_folder / "rejects.parquet").to_pandas()
    assert rejects[["input_row", "reason"]].values.tolist() == [[2, "unknown_state"], [3, "unknown_product"]]
    assert manifest["outputs"] == [{"table": "rejects", "path": str(run_folder / "rejects.parquet"), "rows": 2}]
    orders = next(i for i in manifest["inputs"] if i["record_type"] == "orders")
    assert (orders["rows_read"], orders["rows_accepted"], orders["rows_rejected"]) == (3, 1, 2)


# ------------------------------------------------------------------ missing file/column


def test_empty_input_folder_is_an_input_error(tmp_path, qc_plan):
    """A folder orders/ holding no CSV or Parquet file is an input error naming the folder."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    (data / "orders.csv").unlink()
    (data / "orders").mkdir()
    (data / "orders" / "README.txt").write_text("not data")
    with pytest.raises(InputDataError, match=r"holds no \.csv or \.parquet file") as info:
        run_dir(qc_plan, data, tmp_path / "out")
    assert info.value.file == str(data / "orders")


@pytest.mark.parametrize("record_type", ["orders", "troubles"])
def test_unreadable_parquet_file_is_an_input_error_naming_the_file(tmp_path, qc_plan, record_type):
    """A .parquet file that is not Parquet stops the run with InputDataError naming it, not a crash, and
    nothing is published; for troubles this happens after the orders were merged (types are merged as
    their files come in)."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    (data / f"{record_type}.csv").unlink()
    (data / f"{record_type}.parquet").write_bytes(b"some_id,carrier_id\nX1,CLEC01\n")
    with pytest.raises(InputDataError, match="cannot be read") as info:
        run_dir(qc_plan, data, tmp_path / "out")
    assert info.value.file == str(data / f"{record_type}.parquet")
    assert snapshot(tmp_path / "out") == {}


def test_missing_input_file_names_the_file_and_publishes_nothing(tmp_path, qc_plan):
    """Without troubles.csv the run stops with InputDataError naming the expected file, and nothing is published."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    (data / "troubles.csv").unlink()
    with pytest.raises(InputDataError) as info:
        run_dir(qc_plan, data, tmp_path / "out", run_id="r1")
    assert info.value.file == str(data / "troubles.csv")
    assert "troubles" in str(info.value)
    assert snapshot(tmp_path / "out") == {}
    assert json.loads((tmp_path / "out" / "runs" / "r1" / "manifest.json").read_text())["exit_code"] == 3


def test_missing_required_column_names_the_file_and_the_column(tmp_path, qc_plan):
    """A troubles file without the required disposition column stops the run with one message naming file and column."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    write_csv(data / "troubles.csv", [trouble("T1")], [c for c in TROUBLE_COLUMNS if c != "disposition"])
    with pytest.raises(InputDataError) as info:
        run_dir(qc_plan, data, tmp_path / "out")
    assert (info.value.file, info.value.column) == (str(data / "troubles.csv"), "disposition")
    assert str(data / "troubles.csv") in str(info.value) and "disposition" in str(info.value)
    assert snapshot(tmp_path / "out") == {}


def test_missing_optional_column_uses_its_default(tmp_path, qc_plan):
    """An orders file without the optional quantity, cancelled and test columns is accepted with their defaults."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    optional = {"quantity", "cancelled", "test", "channel", "requested_due_date", "miss_reason", "circuit_id"}
    write_csv(data / "orders.csv", [order("O1")], [c for c in ORDER_COLUMNS if c not in optional])
    run_dir(qc_plan, data, tmp_path / "out")
    assert len(read_rejects(tmp_path / "out")) == 0
    assert read_records(tmp_path / "out", "OP-3").set_index("record_id").loc["O1", "included"]


# ------------------------------------------------------------------------ nothing lost


def _local_month(text: str) -> str | None:
    return text[:7] if text else None


def _shift(period: str, months: int) -> str:
    year, month = map(int, period.split("-"))
    index = year * 12 + month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def test_every_accepted_record_of_the_period_appears_in_records_of_each_measure(tmp_path, qc_plan):
    """Every accepted record whose period-by local month is a measure's data month is in that measure's
    records/, and no other record is."""
    orders = [
        order("O1"),
        order("O2", carrier_id="ILEC", product="pots"),
        order("O3", foc_at="2026-09-30 16:00:00", received_at="2026-09-30 15:00:00"),  # FOC in September
        order("O4", completed_at="2026-11-02 10:00:00"),  # completed in November
        order("O5", completed_at="", cancelled="true"),  # pending: no completion
        order(
            "O6",
            received_at="2026-09-02 09:00:00",
            foc_at="2026-09-02 10:00:00",
            due_date="2026-09-08",
            completed_at="2026-09-08 11:00:00",
            circuit_id="C9",
        ),  # September: OP-5 in arrears
        order("O7", state="TX"),  # rejected
        order(
            "O8",
            completed_at="2026-10-01 00:30:00",
            received_at="2026-09-28 09:00:00",
            foc_at="2026-09-28 10:00:00",
            due_date="2026-10-01",
        ),
        order("O1", product="ubl_2w"),  # duplicate: rejected
    ]
    troubles = [
        trouble("T1"),
        trouble("T2", carrier_id="ILEC", product="pots"),
        trouble("T3", received_at="2026-09-30 20:00:00", cleared_at="2026-10-01 09:00:00"),  # MR-8 by received: Sept
        trouble("T4", cleared_at=""),  # open: no clearing time
        trouble("T5", no_access_hours="-2"),  # rejected
        trouble("T6", received_at="2026-10-31 22:00:00", cleared_at="2026-11-01 02:00:00"),
    ]
    lines = [
        line(),
        line(carrier_id="ILEC", product="pots", lines_in_service="1000"),
        line(period="2026-09"),
        line(lines_in_service="-1", state="UT"),
    ]
    data = tmp_path / "data"
    write_csv(data / "orders.csv", orders, ORDER_COLUMNS)
    write_csv(data / "troubles.csv", troubles, TROUBLE_COLUMNS)
    write_csv(data / "lines.csv", lines, list(LINE_DEFAULTS))
    result = run_dir(qc_plan, data, tmp_path / "out")

    rejects = read_rejects(tmp_path / "out")
    assert sorted(zip(rejects["record_type"], rejects["input_row"], strict=True)) == [
        ("lines", 4),
        ("orders", 7),
        ("orders", 9),
        ("troubles", 5),
    ]
    for entry in result.manifest["inputs"]:
        assert entry["rows_read"] == entry["rows_accepted"] + entry["rows_rejected"]
    accepted = {
        "orders": [
            (r["order_id"], r) for i, r in enumerate(orders, 1) if ("orders", i) not in {("orders", 7), ("orders", 9)}
        ],
        "troubles": [(r["ticket_id"], r) for i, r in enumerate(troubles, 1) if i != 5],
    }
    for measure in qc_plan.measures:
        data_month = _shift(PERIOD, measure.arrears_months)
        expected = {rid for rid, r in accepted[measure.records] if _local_month(r[measure.period_by]) == data_month}
        table = read_records(tmp_path / "out", measure.id)
        got = table[table["record_type"] == measure.records]["record_id"].tolist()
        assert sorted(got) == sorted(expected), measure.id
        assert len(got) == len(set(got)), measure.id
    assert set(read_records(tmp_path / "out", "OP-5")["record_id"]) == {"O6"}  # sanity: arrears month is September
    base = read_records(tmp_path / "out", "MR-8")
    assert sorted(base[base["record_type"] == "lines"]["record_id"]) == [
        "2026-10|CLEC01|CO|resale_pots",
        "2026-10|ILEC|CO|pots",
    ]


def test_taken_columns_are_gathered_when_read_and_equal_an_eager_take():
    """Records.take gathers a column only when it is read; the values are those of indexing
    every column at once, through a take of a take too, for numpy and Arrow columns; columns
    set or removed afterwards behave as in a dict."""
    import numpy as np

    from carrier_sla.inputs.contract import Records, Taken

    n = 50
    rng = np.random.default_rng(3)
    rec = Records(
        "orders",
        n,
        cols={"a": np.arange(n), "b": rng.random(n)},
        codes={"state": rng.integers(-1, 3, n).astype(np.int32)},
        text={"circuit_id": pa.array([f"C{i}" if i % 7 else None for i in range(n)])},
        ids=pa.array([f"O{i}" for i in range(n)]),
    )
    first = np.flatnonzero(rec.cols["b"] > 0.3)
    second = np.array([4, 0, 2, 2])
    once = rec.take(first)
    twice = once.take(second)
    assert isinstance(once.cols, Taken) and not once.cols._done  # nothing gathered yet
    assert once.cols["a"].tolist() == first.tolist()
    assert list(once.cols._done) == ["a"]  # only what was read
    rows = first[second]
    assert twice.cols["a"].tolist() == rows.tolist()  # "a" gathered before the second take
    assert twice.cols["b"].tolist() == rec.cols["b"][rows].tolist()  # "b" straight from the source
    assert twice.codes["state"].tolist() == rec.codes["state"][rows].tolist()
    assert twice.text["circuit_id"].to_pylist() == [rec.text["circuit_id"][int(i)].as_py() for i in rows]
    assert twice.ids.to_pylist() == [f"O{i}" for i in rows]
    assert list(twice.cols) == ["a", "b"] and "b" in twice.cols and "z" not in twice.cols
    twice.cols["z"] = np.zeros(4)
    del twice.cols["a"]
    assert list(twice.cols) == ["b", "z"] and len(twice.cols) == 2
    with pytest.raises(KeyError):
        twice.cols["a"]
    assert dict(once.cols).keys() == {"a", "b"}  # the first take is untouched by the second's changes
