"""A record type the plan reads with no record of the run's month is an input error (issue 14):
a header-only orders.csv published a restatement without order measures (remedies fell),
exit 0. Unless --allow-empty, a final run needs a record of the month of every type the plan's
measures place in months (orders, troubles, the lines of a rate measure's month); a
month-to-date run, which early in a month may have none yet, needs at least one record of each
type in its input. Whole and partitioned runs alike."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import example_document, keep_measures, write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.errors import NoRecords
from carrier_sla.plan.load import load_plan, plan_from_document

PERIOD = "2026-10"
PARTITIONS = pytest.mark.parametrize("partition_rows", [0, 1], ids=["whole", "partitioned"])
ORDERS = [{}, {"carrier_id": "ILEC", "product": "pots"}]
TROUBLES = [{}, {"carrier_id": "ILEC", "product": "pots"}]
LINES = [{}, {"carrier_id": "ILEC", "product": "pots", "lines_in_service": "1000"}]
SEPTEMBER = {"received_at": "2026-09-07 09:00:00", "foc_at": "2026-09-07 10:00:00", "due_date": "2026-09-10"}
SEPTEMBER |= {"completed_at": "2026-09-10 12:00:00"}
AUGUST = {k: v.replace("2026-09", "2026-08") for k, v in SEPTEMBER.items()}  # counted by no measure of October
LATER_TROUBLE = {"received_at": "2026-11-13 09:00:00", "cleared_at": "2026-11-13 11:00:00"}


@pytest.fixture(scope="module")
def qc_plan():
    return load_plan("example-qc")


def manifest_of(out: Path) -> dict:
    return json.loads(sorted((out / "runs").glob("*/manifest.json"))[-1].read_text())


@PARTITIONS
@pytest.mark.parametrize(
    ("orders", "troubles", "lines", "missing", "says"),
    [
        ([], TROUBLES, LINES, "orders", "no orders of 2026-10 (PO-5, OP-3, OP-4, OP-5 read them): 0 rows read"),
        ([o | AUGUST for o in ORDERS], TROUBLES, LINES, "orders", "2 accepted, none of them in 2026-10"),
        (ORDERS, [], LINES, "troubles", "no troubles of 2026-10 (OP-5, MR-5, MR-6, MR-7, MR-8 read them)"),
        (ORDERS, TROUBLES, [], "lines", "no lines of 2026-10 (MR-8 read them)"),
        (ORDERS, TROUBLES, [line | {"period": "2026-09"} for line in LINES], "lines", "none of them in 2026-10"),
    ],
    ids=["header-only-orders", "orders-of-another-month", "header-only-troubles", "no-lines", "lines-of-another-month"],
)
def test_a_type_without_a_record_of_the_month_is_an_input_error_naming_type_and_month(
    tmp_path, qc_plan, partition_rows, orders, troubles, lines, missing, says
):
    """The run refuses (nothing published) and names the record type, the month, the measures that
    read it and the rows read; its manifest is failed with exit 3 and lists the inputs read."""
    data = write_inputs(tmp_path / "data", orders, troubles, lines)
    with pytest.raises(NoRecords) as caught:
        pipeline.run(qc_plan, data, PERIOD, tmp_path / "out", max_reject_rate=1.0, partition_rows=partition_rows)
    assert (caught.value.record_type, caught.value.period) == (missing, PERIOD)
    assert caught.value.file == str(data / f"{missing}.csv")
    assert says in str(caught.value) and "--allow-empty" in str(caught.value)
    assert not (tmp_path / "out" / "current").exists()
    manifest = manifest_of(tmp_path / "out")
    assert (manifest["status"], manifest["exit_code"]) == ("failed", 3)
    assert [i["record_type"] for i in manifest["inputs"]] == ["orders", "troubles", "lines"]
    assert all(i["rows_read"] == i["rows_accepted"] + i["rows_rejected"] for i in manifest["inputs"])


@PARTITIONS
def test_allow_empty_runs_a_month_that_truly_has_none(tmp_path, qc_plan, partition_rows):
    """With allow_empty the same input completes: the order measures have no activity."""
    data = write_inputs(tmp_path / "data", [], TROUBLES, LINES)
    result = pipeline.run(
        qc_plan, data, PERIOD, tmp_path / "out", max_reject_rate=1.0, partition_rows=partition_rows, allow_empty=True
    )
    orders = result.results[result.results["measure_id"].isin(["PO-5", "OP-3", "OP-4"])]
    assert orders.empty
    assert set(result.results["measure_id"]) >= {"MR-5", "MR-6", "MR-8"}


def test_a_restatement_from_a_header_only_export_exits_3_and_keeps_the_published_month(tmp_path, capsys):
    """The issue's case: a month published from full data, then restated from a header-only
    orders.csv, exits 3 with one line naming the month and the type; the published results and
    remedies stay those of the first run. --allow-empty publishes the restatement."""
    full = write_inputs(tmp_path / "full", ORDERS, TROUBLES, LINES)
    emptied = write_inputs(tmp_path / "emptied", [], TROUBLES, LINES)
    out = tmp_path / "store"
    base = ["run", "--plan", "example-qc", "--period", PERIOD, "--out", str(out), "--quiet"]
    assert main([*base, "--data", str(full)]) == 0
    published = sorted(p.read_bytes() for p in (out / "current").rglob("*.parquet"))
    capsys.readouterr()
    assert main([*base, "--data", str(emptied)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("carrier-sla: input error: no orders of 2026-10 ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.read_bytes() for p in (out / "current").rglob("*.parquet")) == published
    assert main([*base, "--data", str(emptied), "--allow-empty"]) == 0


def test_a_month_to_date_run_may_have_no_record_of_its_month_yet_but_not_an_empty_input(tmp_path, qc_plan):
    """As of the 1st of November (the nightly run's month to date) no record of November is known
    yet: the run completes, provisional. A header-only orders.csv is refused all the same."""
    data = write_inputs(tmp_path / "data", ORDERS, TROUBLES, LINES)
    today = dt.date(2026, 11, 1)
    result = pipeline.run(qc_plan, data, "2026-11", tmp_path / "a", max_reject_rate=1.0, as_of=today, today=today)
    assert result.manifest["provisional"] is True
    emptied = write_inputs(tmp_path / "emptied", [], TROUBLES, LINES)
    with pytest.raises(NoRecords, match=r"^no orders in the input \(PO-5, OP-3, OP-4, OP-5 read them\)"):
        pipeline.run(qc_plan, emptied, "2026-11", tmp_path / "b", max_reject_rate=1.0, as_of=today, today=today)


def test_a_type_the_plan_does_not_read_may_be_empty(tmp_path):
    """A plan of order measures only (PO-5, OP-3) runs without troubles or lines."""
    doc = keep_measures(example_document(), ("PO-5", "OP-3"))
    data = write_inputs(tmp_path / "data", ORDERS, [], [])
    result = pipeline.run(plan_from_document(doc), data, PERIOD, tmp_path / "out", max_reject_rate=1.0)
    assert set(result.results["measure_id"]) == {"PO-5", "OP-3"}


def test_related_records_only_must_not_be_missing_altogether(tmp_path):
    """A plan whose only trouble reader is OP-5 (troubles as related records, 30 days after an
    install) needs no trouble of the month, but a header-only troubles.csv is refused: OP-5 would
    find no trouble after any install and call every one a success."""
    doc = keep_measures(example_document(), ("OP-3", "OP-5"))
    plan = plan_from_document(doc)
    september = [o | SEPTEMBER for o in ORDERS]  # OP-5 of October reports September's installs
    data = write_inputs(tmp_path / "data", ORDERS + september, [t | LATER_TROUBLE for t in TROUBLES], [])
    pipeline.run(plan, data, PERIOD, tmp_path / "a", max_reject_rate=1.0)
    emptied = write_inputs(tmp_path / "emptied", ORDERS + september, [], [])
    with pytest.raises(NoRecords, match=r"^no troubles in the input \(OP-5 read them\)"):
        pipeline.run(plan, emptied, PERIOD, tmp_path / "b", max_reject_rate=1.0)
