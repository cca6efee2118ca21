"""Input at the edges of the contract (issue 14): values beyond what a column can hold, NaN and
infinities, times beyond int64 nanoseconds, Parquet columns of nested types, headers naming a
column twice. Each gets a defined outcome, the same in a whole run and a partitioned one: a
rejected row with its reason, or an input error (exit 3) naming the file and the column."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LINE_DEFAULTS, ORDER_DEFAULTS, TROUBLE_DEFAULTS, write_csv, write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.errors import InputDataError
from carrier_sla.plan.load import load_plan

PERIOD = "2026-10"
# 0: the whole input in memory; 1: one partition per row (carrier_sla.inputs.spill)
PARTITIONS = pytest.mark.parametrize("partition_rows", [0, 1], ids=["whole", "partitioned"])


@pytest.fixture(scope="module")
def qc_plan():
    return load_plan("example-qc")


def _text_table(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [r[name] or None for r in rows] for name in rows[0]}


def orders_table(n: int = 2, **columns: pa.Array) -> pa.Table:
    """n good orders (CLEC01 and retail) as text columns, with some columns replaced by typed arrays."""
    rows = [{"order_id": f"O{i}", **ORDER_DEFAULTS} for i in range(1, n + 1)]
    rows[-1] |= {"carrier_id": "ILEC", "product": "pots"}
    data: dict[str, Any] = _text_table(rows)
    data.update(columns)
    return pa.table(data)


def troubles_table(n: int = 2, **columns: pa.Array) -> pa.Table:
    rows = [{"ticket_id": f"T{i}", **TROUBLE_DEFAULTS} for i in range(1, n + 1)]
    rows[-1] |= {"carrier_id": "ILEC", "product": "pots"}
    data: dict[str, Any] = _text_table(rows)
    data.update(columns)
    return pa.table(data)


def lines_table(**columns: pa.Array) -> pa.Table:
    rows = [dict(LINE_DEFAULTS), {**LINE_DEFAULTS, "carrier_id": "ILEC", "product": "pots"}]
    data: dict[str, Any] = _text_table(rows)
    data.update(columns)
    return pa.table(data)


def write_parquet(folder: Path, orders: pa.Table, troubles: pa.Table, lines: pa.Table) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in (("orders", orders), ("troubles", troubles), ("lines", lines)):
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def rejects_of(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "rejects" / f"period={PERIOD}" / "part-0.parquet")


def run_data(plan, data: Path, out: Path, partition_rows: int) -> pipeline.RunResult:
    return pipeline.run(plan, data, PERIOD, out, max_reject_rate=1.0, partition_rows=partition_rows)


def assert_nothing_lost(result: pipeline.RunResult) -> None:
    for entry in result.manifest["inputs"]:
        assert entry["rows_read"] == entry["rows_accepted"] + entry["rows_rejected"]


def the_reject(out: Path, record_type: str, record_id: str) -> pd.Series:
    rejects = rejects_of(out)
    got = rejects[(rejects["record_type"] == record_type) & (rejects["record_id"] == record_id)]
    assert len(got) == 1, rejects
    return got.iloc[0]


# ------------------------------------------------------------------------- numbers


@PARTITIONS
def test_parquet_integers_beyond_what_a_double_holds_exactly_are_rejected_above_maximum(
    tmp_path, qc_plan, partition_rows
):
    """A uint64 lines_in_service of 2**64 - 1 and an int64 quantity of 2**63 - 1 are rejected as
    above_maximum (the contract's integers stop at 2**53 - 1), not cast into garbage or a crash."""
    orders = orders_table(3, quantity=pa.array([1, 2**63 - 1, 1], pa.int64()))
    lines = lines_table(lines_in_service=pa.array([100, 2**64 - 1], pa.uint64()))
    data = write_parquet(tmp_path / "data", orders, troubles_table(), lines)
    result = run_data(qc_plan, data, tmp_path / "out", partition_rows)
    assert_nothing_lost(result)
    quantity = the_reject(tmp_path / "out", "orders", "O2")
    assert (quantity["input_field"], quantity["reason"], quantity["raw_value"]) == (
        "quantity",
        "above_maximum",
        str(2**63 - 1),
    )
    lines_reject = the_reject(tmp_path / "out", "lines", "2026-10|ILEC|CO|pots")
    assert (lines_reject["input_field"], lines_reject["reason"], lines_reject["raw_value"]) == (
        "lines_in_service",
        "above_maximum",
        str(2**64 - 1),
    )
    assert "above its maximum" in lines_reject["message"]


@PARTITIONS
def test_a_parquet_nan_lines_in_service_is_rejected_not_judged(tmp_path, qc_plan, partition_rows):
    """A float lines_in_service of NaN passed the contract as if given and crashed the verdicts:
    it is rejected as not_finite, and MR-8 is judged on the lines that remain."""
    lines = lines_table(lines_in_service=pa.array([float("nan"), 1000.0], pa.float64()))
    data = write_parquet(tmp_path / "data", orders_table(), troubles_table(), lines)
    result = run_data(qc_plan, data, tmp_path / "out", partition_rows)
    assert_nothing_lost(result)
    got = the_reject(tmp_path / "out", "lines", "2026-10|CLEC01|CO|resale_pots")
    assert (got["input_field"], got["reason"]) == ("lines_in_service", "not_finite")
    mr8 = result.results[(result.results["measure_id"] == "MR-8") & (result.results["carrier_id"] == "CLEC01")]
    assert mr8["status"].tolist() == ["undetermined"]  # its troubles without a lines row, as documented


@PARTITIONS
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_a_parquet_non_finite_no_access_time_is_rejected(tmp_path, qc_plan, partition_rows, value):
    """no_access_hours of NaN (which acted as no delay) or an infinity (which zeroed MR-6's
    duration) is rejected as not_finite; the trouble counts nowhere."""
    troubles = troubles_table(3, no_access_hours=pa.array([None, value, None], pa.float64()))
    data = write_parquet(tmp_path / "data", orders_table(), troubles, lines_table())
    result = run_data(qc_plan, data, tmp_path / "out", partition_rows)
    assert_nothing_lost(result)
    got = the_reject(tmp_path / "out", "troubles", "T2")
    assert (got["input_field"], got["reason"]) == ("no_access_hours", "not_finite")
    assert "finite" in got["message"]
    records = pd.read_parquet(tmp_path / "out" / "records" / f"period={PERIOD}" / "measure_id=MR-6")
    assert "T2" not in set(records["record_id"])


# --------------------------------------------------------------------------- times


@PARTITIONS
@pytest.mark.parametrize(
    "column",
    [
        pa.array([None, dt.datetime(9999, 12, 31)], pa.timestamp("us")),
        pa.array([None, dt.datetime(9999, 12, 31, tzinfo=dt.UTC)], pa.timestamp("ms", "UTC")),
        pa.array([None, dt.date(9999, 12, 31)], pa.date32()),
        pa.array([None, dt.datetime(1, 1, 1)], pa.timestamp("s")),
    ],
    ids=["timestamp-us", "timestamp-ms-utc", "date32", "year-1"],
)
def test_a_parquet_time_beyond_int64_nanoseconds_is_rejected_out_of_range(tmp_path, qc_plan, partition_rows, column):
    """A Parquet received_at of 9999-12-31 (or year 1) could not be cast to nanoseconds and crashed
    the run: it is rejected as date_out_of_range, like any time outside the calendars' years."""
    received = pa.array([dt.datetime(2026, 10, 5, 9), None], pa.timestamp("us"))
    merged = pa.array([received[0].as_py(), column[1].as_py()], column.type)
    data = write_parquet(tmp_path / "data", orders_table(received_at=merged), troubles_table(), lines_table())
    result = run_data(qc_plan, data, tmp_path / "out", partition_rows)
    assert_nothing_lost(result)
    got = the_reject(tmp_path / "out", "orders", "O2")
    assert (got["input_field"], got["reason"]) == ("received_at", "date_out_of_range")


# ---------------------------------------------------------------------- file layout


@PARTITIONS
def test_a_csv_header_naming_a_column_twice_is_an_input_error_naming_file_and_column(tmp_path, qc_plan, partition_rows):
    """A CSV whose header names `state` twice crashed with a KeyError: it is an input error naming
    the file and the column, and nothing is published."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    text = (data / "orders.csv").read_text().splitlines()
    (data / "orders.csv").write_text("\n".join([text[0] + ",state", *(line + ",UT" for line in text[1:])]) + "\n")
    with pytest.raises(InputDataError) as caught:
        run_data(qc_plan, data, tmp_path / "out", partition_rows)
    assert caught.value.file == str(data / "orders.csv") and caught.value.column == "state"
    assert "state appears more than once" in str(caught.value)
    assert not (tmp_path / "out" / "results").exists()


def test_the_cli_exits_3_for_a_repeated_column_in_run_and_validate(tmp_path, capsys):
    """run and validate --data both exit 3 with one line naming the file and the column, no traceback."""
    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    text = (data / "troubles.csv").read_text().splitlines()
    (data / "troubles.csv").write_text("\n".join([text[0] + ",dispatch", *(line + ",true" for line in text[1:])]))
    for args in (
        ["run", "--plan", "example-qc", "--data", str(data), "--period", PERIOD, "--out", str(tmp_path / "out")],
        ["validate", "--plan", "example-qc", "--data", str(data)],
    ):
        assert main(args) == 3
        err = capsys.readouterr().err
        assert f"{data / 'troubles.csv'}: column dispatch appears more than once" in err
        assert "Traceback" not in err


@PARTITIONS
@pytest.mark.parametrize(
    "column",
    [
        pa.array([{"code": "CO"}, {"code": "CO"}], pa.struct([("code", pa.string())])),
        pa.array([["CO"], ["CO"]], pa.list_(pa.string())),
    ],
    ids=["struct", "list"],
)
def test_a_parquet_column_of_a_nested_type_is_an_input_error_naming_file_and_column(
    tmp_path, qc_plan, partition_rows, column
):
    """A struct (or list) where the contract wants a code crashed the run: it is an input error
    naming the file, the column and its type."""
    data = write_parquet(tmp_path / "data", orders_table(state=column), troubles_table(), lines_table())
    with pytest.raises(InputDataError) as caught:
        run_data(qc_plan, data, tmp_path / "out", partition_rows)
    assert caught.value.file == str(data / "orders.parquet") and caught.value.column == "state"
    assert "column state is of type " in str(caught.value) and "not one value per row" in str(caught.value)


@PARTITIONS
def test_parquet_text_stored_as_bytes_is_read_and_bytes_that_are_not_utf8_are_an_input_error(
    tmp_path, qc_plan, partition_rows
):
    """Binary columns holding UTF-8 text read as text (as before); bytes that are not UTF-8 are an
    input error naming the file and the column instead of a crash."""
    good = pa.array([b"CLEC01", b"ILEC"], pa.binary())
    data = write_parquet(tmp_path / "good", orders_table(carrier_id=good), troubles_table(), lines_table())
    result = run_data(qc_plan, data, tmp_path / "out-good", partition_rows)
    assert sum(i["rows_rejected"] for i in result.manifest["inputs"]) == 0
    bad = pa.array([b"CLEC01", b"\xff\xfe"], pa.binary())
    data = write_parquet(tmp_path / "bad", orders_table(carrier_id=bad), troubles_table(), lines_table())
    with pytest.raises(InputDataError) as caught:
        run_data(qc_plan, data, tmp_path / "out-bad", partition_rows)
    assert caught.value.column == "carrier_id" and "not UTF-8" in str(caught.value)


def test_csv_and_parquet_reject_the_same_edge_values_for_the_same_reasons(tmp_path, qc_plan):
    """The same edge values as CSV text and as typed Parquet columns give the same rejects."""
    hours = ["", "NaN", "inf", "2"]
    csv_rows = [{"ticket_id": f"T{i}", **TROUBLE_DEFAULTS, "no_access_hours": h} for i, h in enumerate(hours, 1)]
    csv_data = tmp_path / "csv"
    write_inputs(csv_data, [{}, {"carrier_id": "ILEC", "product": "pots"}], [], [{}])
    write_csv(csv_data / "troubles.csv", csv_rows)
    parquet_data = tmp_path / "parquet"
    write_parquet(
        parquet_data,
        orders_table(),
        pa.table(
            {
                **_text_table(csv_rows),
                "no_access_hours": pa.array([None, float("nan"), float("inf"), 2.0], pa.float64()),
            }
        ),
        lines_table(),
    )
    reasons = {}
    for name, data in (("csv", csv_data), ("parquet", parquet_data)):
        pipeline.run(qc_plan, data, PERIOD, tmp_path / f"out-{name}", max_reject_rate=1.0)
        got = rejects_of(tmp_path / f"out-{name}")
        reasons[name] = sorted(zip(got["record_id"], got["reason"], strict=True))
    assert reasons["csv"] == reasons["parquet"] == [("T2", "not_finite"), ("T3", "not_finite")]


def test_manifest_of_an_input_error_run_is_failed_with_exit_3(tmp_path, qc_plan):
    """The run's manifest says failed, exit code 3, with the error naming the file."""
    data = write_parquet(
        tmp_path / "data",
        orders_table(state=pa.array([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())]))),
        troubles_table(),
        lines_table(),
    )
    with pytest.raises(InputDataError):
        run_data(qc_plan, data, tmp_path / "out", 0)
    manifest = json.loads(next((tmp_path / "out" / "runs").glob("*/manifest.json")).read_text())
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 3)
    assert str(data / "orders.parquet") in manifest["error"]
