"""Partitioned runs (carrier_sla.inputs.spill, carrier_sla.engine.partitioned) against the whole-input run as
the oracle: the same verdicts, figures, rejects, audit rows, counts and remedies, whatever the
number of partitions, the input format and the batch size."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carrier_sla.engine import aggregate
from carrier_sla.engine.pipeline import run
from carrier_sla.errors import InputDataError, RejectRateExceeded
from carrier_sla.inputs import spill
from carrier_sla.plan.load import load_plan
from carrier_sla.store.view import read_table
from carrier_sla.synthetic.generate import generate
from tests.conftest import write_inputs

PERIOD = "2026-10"


def _tables(out, period=PERIOD) -> dict[str, pd.DataFrame]:
    tables = {t: read_table(out, t, period).to_pandas() for t in ("results", "rejects", "records")}
    if (out / "remedies" / f"period={period}").exists():
        tables["remedies"] = read_table(out, "remedies", period).to_pandas()
    return tables


def _assert_same_outputs(whole, parted) -> None:
    a, b = _tables(whole), _tables(parted)
    ra, rb = a.pop("results"), b.pop("results")
    floats = [c for c in ra.columns if ra[c].dtype.kind == "f"]
    others = [c for c in ra.columns if c not in floats]
    pd.testing.assert_frame_equal(ra[others], rb[others])
    # partial sums merged by Chan's update: equal up to the last bits of a float
    pd.testing.assert_frame_equal(ra[floats], rb[floats], check_exact=False, rtol=1e-12, atol=1e-300)
    pd.testing.assert_frame_equal(a.pop("rejects"), b.pop("rejects"))  # in read order, like a whole run
    ka, kb = (
        t.astype({c: object for c in t.columns if isinstance(t[c].dtype, pd.CategoricalDtype)})
        .sort_values(["measure_id", "record_type", "source_file", "source_row"], kind="stable")
        .reset_index(drop=True)
        for t in (a.pop("records"), b.pop("records"))
    )
    assert len(ka) > 0
    pd.testing.assert_frame_equal(ka, kb)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def _manifest(result) -> dict:
    return json.loads(result.manifest_path.read_text())


@pytest.mark.parametrize(
    ("plan_id", "fmt", "files"),
    [("example-qc", "parquet", 3), ("example-qc", "csv", 2), ("example-ca", "parquet", 1)],
)
def test_a_partitioned_run_gives_the_outputs_of_a_whole_run(tmp_path, plan_id, fmt, files):
    """Generated data with its malformed rows and duplicate ids, two months (OP-5 and MR-7
    look back into the first): spread over 7 partitions, the outputs are the whole run's."""
    data = tmp_path / "data"
    generate(data, PERIOD, periods=2, scale=3000, seed=5, fmt=fmt, files_per_type=files)
    plan = load_plan(plan_id)
    whole = run(plan, data, PERIOD, tmp_path / "whole", partition_rows=0, max_reject_rate=0.05)
    parted = run(plan, data, PERIOD, tmp_path / "parted", partition_rows=1000, max_reject_rate=0.05)
    assert _manifest(whole)["partitions"] == 1
    assert _manifest(parted)["partitions"] == 7
    _assert_same_outputs(tmp_path / "whole", tmp_path / "parted")
    assert _manifest(whole)["inputs"] == _manifest(parted)["inputs"]
    assert _manifest(whole)["verdicts"] == _manifest(parted)["verdicts"]
    assert _manifest(whole).get("remedies") == _manifest(parted).get("remedies")
    rejects = _tables(tmp_path / "parted")["rejects"]
    assert (rejects["reason"] == "duplicate_id").sum() > 0  # the generator's duplicates were found
    assert not (tmp_path / "parted" / ".staging").exists() or not any((tmp_path / "parted" / ".staging").iterdir())


def test_small_csv_blocks_and_an_as_of_date_change_nothing(tmp_path, monkeypatch):
    """CSV read in blocks of a few kB (many batches per file: row numbers carry on across
    batches), month to date."""
    data = tmp_path / "data"
    generate(data, PERIOD, periods=2, scale=2000, seed=9, fmt="csv", files_per_type=2)
    plan = load_plan("example-qc")
    kwargs = {"max_reject_rate": 0.05, "as_of": dt.date(2026, 10, 20), "today": dt.date(2026, 10, 21)}
    whole = run(plan, data, PERIOD, tmp_path / "whole", partition_rows=0, **kwargs)
    monkeypatch.setattr(spill, "CSV_BLOCK", 4096)
    parted = run(plan, data, PERIOD, tmp_path / "parted", partition_rows=700, **kwargs)
    assert _manifest(parted)["partitions"] > 3
    assert _manifest(whole)["records_after_as_of"] == _manifest(parted)["records_after_as_of"]
    assert _manifest(parted)["provisional"] is True
    _assert_same_outputs(tmp_path / "whole", tmp_path / "parted")


def test_a_duplicate_id_in_another_partition_is_still_a_duplicate(tmp_path):
    """Two copies of an order id on different circuits (so, most likely, in different
    partitions): read order decides, as in a whole run; repeat troubles (MR-7) stay related."""
    orders = [{"circuit_id": f"C{i}", "completed_at": "2026-10-08 12:00:00"} for i in range(40)]
    orders.append({"order_id": "O3", "circuit_id": "OTHER", "carrier_id": "CLEC02"})  # a second O3
    troubles = [{"circuit_id": f"C{i % 7}", "received_at": f"2026-10-{10 + i % 15:02d} 09:00:00"} for i in range(60)]
    troubles[0]["received_at"] = "2026-10-01 09:00:00"
    troubles[0]["cleared_at"] = "2026-10-01 10:00:00"
    data = write_inputs(tmp_path / "data", orders, troubles, [{}, {"carrier_id": "CLEC02"}])
    plan = load_plan("example-qc")
    run(plan, data, PERIOD, tmp_path / "whole", partition_rows=0, max_reject_rate=1.0)
    interval = sys.getswitchinterval()
    parted = run(plan, data, PERIOD, tmp_path / "parted", partition_rows=10, max_reject_rate=1.0)
    assert sys.getswitchinterval() == interval  # set for the partitioned pass only
    assert _manifest(parted)["partitions"] > 5  # CSV rows estimated from the file sizes
    _assert_same_outputs(tmp_path / "whole", tmp_path / "parted")
    rejects = _tables(tmp_path / "parted")["rejects"]
    dup = rejects[rejects["reason"] == "duplicate_id"]
    assert dup[["record_id", "input_row", "carrier_id"]].values.tolist() == [["O3", 41, "CLEC02"]]


def test_no_access_longer_than_the_trouble_is_rejected_alike_in_a_partitioned_run(tmp_path):
    """Troubles whose no-access hours exceed their real elapsed time (and one equal to it) spread
    over partitions: the same rejects (no_access_exceeds_duration), counts and figures as a whole run."""
    troubles = [
        {"circuit_id": f"C{i}", "no_access_hours": ("2.5" if i % 3 == 0 else "2" if i % 3 == 1 else "0.5")}
        for i in range(30)  # received 09:00, cleared 11:00: 2 hours
    ]
    data = write_inputs(tmp_path / "data", [{}], troubles, [{}])
    plan = load_plan("example-qc")
    whole = run(plan, data, PERIOD, tmp_path / "whole", partition_rows=0, max_reject_rate=1.0)
    parted = run(plan, data, PERIOD, tmp_path / "parted", partition_rows=5, max_reject_rate=1.0)
    assert _manifest(parted)["partitions"] > 3
    _assert_same_outputs(tmp_path / "whole", tmp_path / "parted")
    assert _manifest(whole)["inputs"] == _manifest(parted)["inputs"]
    rejects = _tables(tmp_path / "parted")["rejects"]
    assert rejects["reason"].tolist() == ["no_access_exceeds_duration"] * 10
    assert rejects["input_row"].tolist() == list(range(1, 31, 3))
    troubles_read = next(i for i in _manifest(parted)["inputs"] if i["record_type"] == "troubles")
    assert (troubles_read["rows_read"], troubles_read["rows_accepted"], troubles_read["rows_rejected"]) == (30, 20, 10)


def test_a_broken_file_fails_a_partitioned_run_naming_it(tmp_path):
    data = write_inputs(tmp_path / "data", [{} for _ in range(30)], [{} for _ in range(30)], [{}])
    text = (data / "troubles.csv").read_text().splitlines()
    (data / "troubles.csv").write_text("\n".join([text[0].replace("cleared_at", "closed_at"), *text[1:]]) + "\n")
    interval = sys.getswitchinterval()
    with pytest.raises(InputDataError, match=r"troubles.csv: missing required column"):
        run(load_plan("example-qc"), data, PERIOD, tmp_path / "out", partition_rows=10)
    assert sys.getswitchinterval() == interval  # the run's thread switch interval undone
    assert not (tmp_path / "out" / "current").exists()  # nothing published
    staging = tmp_path / "out" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())  # partition files removed


def test_too_many_rejects_in_a_partitioned_run_is_an_input_error_with_the_rejects_kept(tmp_path):
    orders = [{"received_at": "yesterday"} if i % 10 == 0 else {} for i in range(50)]
    data = write_inputs(tmp_path / "data", orders, [{} for _ in range(20)], [{}])
    with pytest.raises(RejectRateExceeded) as info:
        run(load_plan("example-qc"), data, PERIOD, tmp_path / "out", partition_rows=10, run_id="r1")
    assert "orders" in str(info.value)
    kept = pq.read_table(tmp_path / "out" / "runs" / "r1" / "rejects.parquet").to_pandas()
    assert kept["input_row"].tolist() == [1, 11, 21, 31, 41]  # in read order
    assert json.loads((tmp_path / "out" / "runs" / "r1" / "manifest.json").read_text())["exit_code"] == 3


def test_the_values_behind_a_cell_do_not_depend_on_how_the_records_were_split():
    """Cell values gathered from per-partition histograms (each with its own label order) are
    the whole histogram's, in one canonical order (by value)."""
    plan = load_plan("example-qc")
    measure = next(m for m in plan.measures if m.id == "MR-6")
    rng = np.random.default_rng(3)
    n = 600
    labels = (("CLEC01", "ILEC"), ("CO",), ("resale_pots", "pots"), (False, True, None))
    shape = (2, 1, 2, 3)
    carrier, dispatch = rng.integers(0, 2, n), rng.integers(0, 2, n)  # the ILEC's lines are retail pots
    flat = np.ravel_multi_index((carrier, np.zeros(n, int), carrier, dispatch), shape)
    values = rng.integers(0, 40, n).astype(float) / 4
    ones = np.ones(n, np.int64)
    whole = aggregate._histogram(flat, values, ones, labels, shape)
    assert whole.counts.sum() == n and len(whole.values) < n  # repeated values are counted, not kept
    swapped_labels = (("ILEC", "CLEC01"), ("CO",), ("pots", "resale_pots"), (True, False, None))
    swapped = np.ravel_multi_index((1 - carrier, np.zeros(n, int), 1 - carrier, 1 - dispatch), shape)
    split = [
        aggregate._histogram(flat[:170], values[:170], ones[:170], labels, shape),
        aggregate._histogram(swapped[170:], values[170:], ones[170:], swapped_labels, shape),
    ]
    cells = [
        pd.Series({"carrier_id": "CLEC01", "state": "CO", "product": "resale_pots", "dispatch": d})
        for d in (True, False, None)
    ]
    for cell in cells:
        clec, retail = aggregate.CellSamples(plan, measure, [whole])(cell)
        clec_split, retail_split = aggregate.CellSamples(plan, measure, split)(cell)
        np.testing.assert_array_equal(clec, clec_split)
        np.testing.assert_array_equal(retail, retail_split)
        assert len(clec) > 0 and len(retail) > 0 and (np.diff(clec) >= 0).all()


def test_partition_count_follows_the_rows_and_the_plan(tmp_path, monkeypatch):
    data = tmp_path / "data"
    generate(data, PERIOD, periods=1, scale=1000, seed=1, fmt="parquet", files_per_type=2)
    plan = load_plan("example-qc")
    from carrier_sla.inputs import ingest

    found = ingest.discover(data, ("orders", "troubles", "lines"))
    rows = sum(pq.ParquetFile(f.path).metadata.num_rows for t in ("orders", "troubles") for f in found[t])
    assert spill.estimated_rows(found) == rows
    assert spill.partition_count(plan, found, 0) == 1
    assert spill.partition_count(plan, found, rows) == 1
    assert spill.partition_count(plan, found, rows - 1) == 2
    monkeypatch.setattr(spill, "MAX_PARTITIONS", 7)
    assert spill.partition_count(plan, found, 1) == 7  # not one file per row and input file
    assert spill.match_fields(plan) == ["carrier_id", "circuit_id"]  # OP-5 and MR-7 match on both
    assert spill.key_fields(plan) == ["carrier_id", "circuit_id"] and not spill.reads_whole(plan)


def test_a_two_field_match_keeps_each_carriers_related_pairs_in_one_partition(tmp_path):
    """example-qc matches OP-5 and MR-7 on [carrier_id, circuit_id]: rows are spread by those fields, so each
    carrier's related troubles on a circuit share a partition. Over many partitions the outputs are the whole
    run's, and a trouble after another carrier's on the circuit is still no repeat."""
    orders, troubles = [], []
    for i in range(30):
        circuit = f"C{i}"
        done = {"received_at": "2026-09-14 09:00:00", "foc_at": "2026-09-14 10:00:00", "due_date": "2026-09-18"}
        orders.append({**done, "circuit_id": circuit, "completed_at": "2026-09-18 12:00:00"})  # OP-5 (September)
        troubles += [
            {"circuit_id": circuit, "carrier_id": "ILEC", "product": "pots", "received_at": "2026-10-02 09:00:00"},
            {"circuit_id": circuit, "received_at": "2026-10-05 09:00:00"},  # CLEC01 after the ILEC: no repeat
            {"circuit_id": circuit, "carrier_id": "CLEC02", "received_at": "2026-10-08 09:00:00"},  # no repeat
        ]
        if i % 2:
            troubles.append({"circuit_id": circuit, "received_at": "2026-10-12 09:00:00"})  # CLEC01 again: a repeat
    troubles = [{**t, "cleared_at": t["received_at"][:11] + "11:00:00"} for t in troubles]
    data = write_inputs(tmp_path / "data", orders, troubles, [{}, {"carrier_id": "CLEC02"}])
    plan = load_plan("example-qc")
    run(plan, data, PERIOD, tmp_path / "whole", partition_rows=0)
    parted = run(plan, data, PERIOD, tmp_path / "parted", partition_rows=10)
    assert _manifest(parted)["partitions"] > 5
    _assert_same_outputs(tmp_path / "whole", tmp_path / "parted")
    records = _tables(tmp_path / "parted")["records"]
    mr7 = records[(records["measure_id"] == "MR-7") & records["included"]]
    repeats = mr7.groupby("carrier_id", observed=True)["value"].agg(["count", "sum"])
    assert repeats.loc["CLEC01"].tolist() == [45, 15]  # 30 first troubles (0) and 15 second ones (1)
    assert repeats.loc["CLEC02"].tolist() == [30, 0]
    assert repeats.loc["ILEC"].tolist() == [30, 0]
    op5 = records[(records["measure_id"] == "OP-5") & records["included"]]
    assert len(op5) == 30 and (op5["value"] == 0).all()  # CLEC01's own trouble of Oct 5: day 17


def test_related_measures_without_a_common_match_field_read_the_input_whole(tmp_path, make_plan):
    """Only when the related-record measures share no match field is the input read whole (and the log says why);
    a field common to all is enough to spread the rows."""

    def match(op5, mr7):
        def change(doc):
            doc["measures"][3]["value"]["match_on"] = op5
            doc["measures"][6]["value"]["match_on"] = mr7

        return make_plan(change)

    mixed = match(["circuit_id"], ["carrier_id", "circuit_id"])
    assert (spill.key_fields(mixed), spill.reads_whole(mixed)) == (["circuit_id"], False)
    apart = match(["circuit_id"], ["carrier_id"])
    assert (spill.key_fields(apart), spill.reads_whole(apart)) == ([], True)
    troubles = [{"circuit_id": f"C{i % 5}", "received_at": f"2026-10-{1 + i:02d} 09:00:00"} for i in range(20)]
    troubles = [{**t, "cleared_at": t["received_at"][:11] + "11:00:00"} for t in troubles]
    data = write_inputs(tmp_path / "data", [{"circuit_id": f"C{i}"} for i in range(20)], troubles, [{}])
    result = run(apart, data, PERIOD, tmp_path / "apart", partition_rows=5)
    assert _manifest(result)["partitions"] == 1
    events = [json.loads(line) for line in (tmp_path / "apart" / "runs" / result.run_id / "log.jsonl").open()]
    assert [e["stage"] for e in events].count("partitions") == 1  # the console line says why
    run(mixed, data, PERIOD, tmp_path / "whole", partition_rows=0)
    assert _manifest(run(mixed, data, PERIOD, tmp_path / "parted", partition_rows=5))["partitions"] > 1
    _assert_same_outputs(tmp_path / "whole", tmp_path / "parted")


def test_a_parquet_file_is_read_in_batches_with_its_partition_columns(tmp_path, monkeypatch):
    from carrier_sla.inputs import ingest

    folder = tmp_path / "orders" / "region=west"
    folder.mkdir(parents=True)
    table = pa.table({"order_id": [f"O{i}" for i in range(10)], "x": list(range(10))})
    pq.write_table(table, folder / "part.parquet", row_group_size=4)
    source = ingest.InputFile("orders", folder / "part.parquet", (("region", "west"),))
    with pytest.raises(InputDataError, match="missing required columns"):
        list(spill.batches(source))
    full = pa.table({c: pa.array(["v"] * 10) for c in ingest.known_columns("orders")})
    pq.write_table(full, folder / "part.parquet", row_group_size=4)
    monkeypatch.setattr(spill, "PARQUET_BATCH", 3)
    sizes = [b.num_rows for b in spill.batches(source)]
    assert sizes[0] == 0 and sum(sizes) == 10 and max(sizes) <= 3  # the schema first, then the rows
    assert next(iter(spill.batches(source))).column_names[-1] == "region"


def test_explain_and_package_read_a_partitioned_store_as_a_whole_one(tmp_path, capsys):
    """A measure's records/ in one file per partition: explain tells the same story of a missed
    cell (only the run id and paths differ), and a CLEC's package is built."""
    from carrier_sla.cli.main import main

    data = tmp_path / "data"
    generate(data, PERIOD, periods=2, scale=3000, seed=5, fmt="parquet", files_per_type=2)
    plan = load_plan("example-qc")
    whole = run(plan, data, PERIOD, tmp_path / "whole", partition_rows=0, max_reject_rate=0.05)
    parted = run(plan, data, PERIOD, tmp_path / "parted", partition_rows=1000, max_reject_rate=0.05)
    assert len(list((tmp_path / "parted" / "records" / f"period={PERIOD}" / "measure_id=MR-6").iterdir())) == 7
    results = _tables(tmp_path / "whole")["results"]
    miss = results[(results["status"] == "miss") & (results["measure_id"] == "MR-6")].iloc[0]
    key = ["--measure", "MR-6", "--carrier", miss["carrier_id"], "--state", miss["state"]]
    key += ["--product", miss["product"], "--submeasure", miss["submeasure"]]
    texts = []
    for name, result in (("whole", whole), ("parted", parted)):
        capsys.readouterr()
        assert main(["explain", "--store", str(tmp_path / name), "--period", PERIOD, *key]) == 0
        text = capsys.readouterr().out
        text = text.replace(result.run_id, "RUN").replace(str(tmp_path / name), "STORE")
        texts.append(re.sub(r"started [0-9-]+ [0-9:]+", "started T", text))
    assert "Records that contributed most" in texts[0]
    assert texts[0] == texts[1]
    target = tmp_path / "pkg"
    args = ["package", "--store", str(tmp_path / "parted"), "--period", PERIOD, "--carrier", miss["carrier_id"]]
    assert main([*args, "--out", str(target)]) == 0
    assert any(target.rglob("*.parquet"))


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_partition_size_is_a_usage_error(tmp_path, capsys, value):
    from carrier_sla.cli.main import main

    data = write_inputs(tmp_path / "data", [{}], [{}], [{}])
    args = ["run", "--plan", "example-qc", "--data", str(data), "--period", PERIOD, "--out", str(tmp_path / "out")]
    assert main([*args, "--partition-rows", value]) == 2
    assert "--partition-rows" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_log_tells_the_partitions_and_the_measures_judged(tmp_path):
    data = tmp_path / "data"
    generate(data, PERIOD, periods=1, scale=1500, seed=2, fmt="csv")
    result = run(load_plan("example-qc"), data, PERIOD, tmp_path / "out", partition_rows=500, max_reject_rate=0.05)
    events = [json.loads(line) for line in (tmp_path / "out" / "runs" / result.run_id / "log.jsonl").open()]
    stages = [e["stage"] for e in events]
    parts = _manifest(result)["partitions"]
    assert stages.count("spill") == 1 and stages.count("partition") == parts > 1
    assert [e["measure"] for e in events if e["stage"] == "measure"] == [m.id for m in load_plan("example-qc").measures]
    assert sum(e["rows"] for e in events if e["stage"] == "partition") == sum(
        i["rows_read"] for i in _manifest(result)["inputs"] if i["record_type"] != "lines"
    )


def test_the_values_behind_a_cell_are_its_records_values_in_order():
    """CellSamples gathers exactly the included values of a cell's records from every partition, ascending: a
    CLEC's cell of one dispatch value, a cell with dispatch rolled up (None: both values), the all-CLEC cell
    (no carrier: every CLEC, never the ILEC), and the retail analog of each, checked against a direct filter."""
    plan = load_plan("example-qc")
    measure = next(m for m in plan.measures if m.id == "MR-6")
    rng = np.random.default_rng(4)
    n = 900
    labels = (("CLEC01", "ILEC", "CLEC02"), ("CO",), ("resale_pots", "pots"), (False, True))
    shape = (3, 1, 2, 2)
    carrier, dispatch = rng.integers(0, 3, n), rng.integers(0, 2, n)
    product = (carrier == 1).astype(int)  # the ILEC's records are retail pots
    flat = np.ravel_multi_index((carrier, np.zeros(n, int), product, dispatch), shape)
    values = np.round(rng.gamma(1.0, 5.0, n), 2)
    ones = np.ones(n, np.int64)
    parts = [aggregate._histogram(flat[i::3], values[i::3], ones[i::3], labels, shape) for i in range(3)]
    samples = aggregate.CellSamples(plan, measure, parts)
    cases = [("CLEC01", True, (carrier == 0) & (dispatch == 1)), ("CLEC02", None, carrier == 2)]
    cases.append((None, False, (carrier != 1) & (dispatch == 0)))
    for carrier_id, d, mask in cases:
        cell = {"carrier_id": carrier_id, "state": "CO", "product": "resale_pots", "dispatch": d}
        clec, retail = samples(cell)
        np.testing.assert_array_equal(clec, np.sort(values[mask]))
        retail_mask = (carrier == 1) & ((dispatch == int(d)) if d is not None else True)
        np.testing.assert_array_equal(retail, np.sort(values[retail_mask]))


def test_canonical_values_of_several_slices_are_their_records_ascending():
    """aggregate._canonical of three histogram slices (values overlapping between slices) gives every record's
    value once per count, ascending, as the one sort of the records gives them, for few values and for many
    (sorted by distinct value, then repeated); -0.0 sorts with 0.0 as numpy's sort of the records has it."""
    values = [np.array([0.5, 2.0, 7.25]), np.array([0.0, 2.0]), np.array([1.5, 7.25, 9.0])]
    counts = [np.array([2, 1, 3], np.int32), np.array([1, 4], np.int32), np.array([1, 1, 2], np.int32)]
    out = aggregate._canonical(values, counts)
    assert out.tolist() == [0.0, 0.5, 0.5, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0, 7.25, 7.25, 7.25, 7.25, 9.0, 9.0]
    signed = aggregate._canonical([np.array([-0.0, 3.0]), np.array([0.0])], [np.array([2, 1]), np.array([1])])
    rng = np.random.default_rng(4)  # many values: sorted by distinct value, then repeated
    many = [np.unique(rng.integers(0, 900, 700)) / 4 for _ in range(3)]
    many_counts = [rng.integers(1, 5, m.size).astype(np.int32) for m in many]
    expected = np.sort(np.repeat(np.concatenate(many), np.concatenate(many_counts)))
    assert aggregate._canonical(many, many_counts).tolist() == expected.tolist()
    singles = [np.ones(m.size, np.int32) for m in many]  # mostly one record a value: the runs merged instead
    assert aggregate._canonical(many, singles).tolist() == np.sort(np.concatenate(many)).tolist()
    records = np.sort(np.array([-0.0, -0.0, 3.0, 0.0]))
    assert signed.tolist() == records.tolist() and np.signbit(signed).tolist() == np.signbit(records).tolist()


def test_spans_by_labels_merge_the_groups_of_indexes_whose_labels_differ_in_order():
    """Two indexes naming their carriers and states in different orders (and one label only the second has):
    each group's slices are found under its labels, the first index's slice before the second's."""
    first = aggregate._histogram(
        np.array([0, 0, 1, 3]), np.array([1.0, 2.0, 5.0, 7.0]), np.ones(4, np.int64), (("A", "B"), ("X", "Y")), (2, 2)
    )  # groups (A, X): values 1, 2; (A, Y): 5; (B, Y): 7
    second = aggregate._histogram(
        np.array([0, 2, 4, 4]),
        np.array([3.0, 4.0, 6.0, 8.0]),
        np.ones(4, np.int64),
        (("B", "A", "C"), ("Y", "X")),
        (3, 2),
    )  # groups (B, Y): 3; (A, Y): 4; (C, Y): 6, 8
    spans = aggregate._spans_by_labels([first, second])
    assert spans == {
        ("A", "X"): [(0, 0, 2)],
        ("A", "Y"): [(0, 2, 3), (1, 1, 2)],
        ("B", "Y"): [(0, 3, 4), (1, 0, 1)],
        ("C", "Y"): [(1, 2, 4)],
    }
    assert aggregate._spans_by_labels([]) == {}
