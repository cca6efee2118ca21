"""The named scenarios under fixtures/ give the numbers computed by hand in their READMEs."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import PLAIN_STATISTICS, example_document

from carrier_sla.engine import pipeline
from carrier_sla.errors import HolidaysNotListed
from carrier_sla.plan.load import plan_from_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _cell(results, measure, carrier="CLEC01", **keys):
    frame = results[(results["measure_id"] == measure) & (results["carrier_id"] == carrier)]
    for k, v in keys.items():
        frame = frame[frame[k] == v]
    assert len(frame) == 1
    return frame.iloc[0]


def test_op4_cutoff_holiday_matches_the_hand_computed_readme(plan, tmp_path):
    """Cut-off at 15:00 (strictly after), a Saturday and Columbus Day give the README's OP-3/OP-4 figures."""
    run = pipeline.run(plan, FIXTURES / "op4-cutoff-holiday", "2026-10", tmp_path / "store", allow_empty=True)
    op4 = _cell(run.results, "OP-4", product="resale_pots", submeasure="dispatch=false")
    assert (op4["clec_n"], op4["clec_value"]) == (2, 3.0)
    assert (op4["retail_n"], op4["retail_value"], op4["retail_stdev"] ** 2) == (4, 2.0, pytest.approx(2.0))
    assert op4["statistic"] == pytest.approx(0.816497, abs=1e-6) and op4["status"] == "met"
    op3 = _cell(run.results, "OP-3", product="resale_pots")
    assert (op3["clec_n"], op3["clec_numerator"], op3["retail_n"], op3["retail_numerator"]) == (3, 2, 4, 3)
    assert op3["statistic"] == pytest.approx(0.251976, abs=1e-6) and op3["status"] == "met"


def test_mr_dst_repair_matches_the_hand_computed_readme(plan, tmp_path):
    """Durations across the fall-back hour are real elapsed hours; the README's MR-5..MR-8 figures hold."""
    run = pipeline.run(plan, FIXTURES / "mr-dst-repair", "2026-11", tmp_path / "store", allow_empty=True)
    mr6 = _cell(run.results, "MR-6", product="resale_pots", submeasure="dispatch=false")
    assert mr6["clec_value"] == pytest.approx(14 / 3) and mr6["retail_value"] == pytest.approx(3.875)
    assert mr6["retail_stdev"] ** 2 == pytest.approx(8.1875 / 3)
    assert mr6["statistic"] == pytest.approx(0.627436, abs=1e-6) and mr6["status"] == "met"
    for measure in ("MR-5", "MR-7"):
        cell = _cell(run.results, measure, product="resale_pots")
        assert cell["statistic"] == pytest.approx(0.251976, abs=1e-6) and cell["status"] == "met"
    mr8 = _cell(run.results, "MR-8", product="resale_pots")
    assert (mr8["clec_value"], mr8["retail_value"]) == (pytest.approx(2.0), pytest.approx(0.4))
    assert mr8["statistic"] == pytest.approx(2.412091, abs=1e-6) and mr8["status"] == "miss"


def test_explain_evidence_matches_the_hand_computed_readme(plan, tmp_path):
    """Offsets, a Z and a fraction of a second past the cut-off give the README's OP-4 business days and z;
    the excluded orders give the README's counts."""
    run = pipeline.run(plan, FIXTURES / "explain-evidence", "2026-10", tmp_path / "store", allow_empty=True)
    op4 = _cell(run.results, "OP-4", product="resale_pots", submeasure="dispatch=false")
    assert (op4["clec_n"], op4["clec_numerator"], op4["clec_records_evaluated"]) == (3, 10, 7)
    assert (op4["retail_n"], op4["retail_value"], op4["retail_stdev"] ** 2) == (4, 2.0, pytest.approx(2 / 3))
    assert op4["statistic"] == pytest.approx(2.138090, abs=1e-6) and op4["status"] == "miss"
    op3 = _cell(run.results, "OP-3", product="resale_pots")
    assert (op3["clec_n"], op3["clec_numerator"], op3["clec_records_evaluated"]) == (4, 3, 8)
    assert (op3["retail_n"], op3["retail_numerator"]) == (4, 3)


def test_op5_mr7_calendar_days_matches_the_hand_computed_readme(plan, tmp_path):
    """OP-5 and MR-7 count a related trouble of the same carrier on the circuit within 30 local calendar days,
    strictly after (before) the anchor instant; the README's records and figures hold."""
    folder = FIXTURES / "op5-mr7-calendar-days"
    run = pipeline.run(plan, folder, "2026-11", tmp_path / "store", max_reject_rate=0.0)
    records = {
        m: pd.read_parquet(tmp_path / "store" / "records" / "period=2026-11" / f"measure_id={m}")
        for m in ("OP-5", "MR-7")
    }
    op5 = dict(zip(records["OP-5"]["record_id"], records["OP-5"]["value"], strict=True))
    assert op5 == {"O1": 0, "O2": 1, "O3": 0, "O4": 1, "O5": 1, "P1": 0, "P2": 1, "P3": 1, "P4": 1}
    mr7 = dict(zip(records["MR-7"]["record_id"], records["MR-7"]["value"], strict=True))
    assert {t for t, v in mr7.items() if v == 1} == {"T6", "T12", "T17"}
    assert set(mr7) == {f"T{i}" for i in (2, 3, 6, 8, 10, 11, 12, 13, 14, 15, 17, 18, 19)}
    cell = _cell(run.results, "OP-5", product="resale_pots")
    assert (cell["clec_n"], cell["clec_numerator"], cell["retail_n"], cell["retail_numerator"]) == (5, 3, 4, 3)
    assert cell["statistic"] == pytest.approx(0.516398, abs=1e-6) and cell["status"] == "met"
    cell = _cell(run.results, "MR-7", product="resale_pots")
    assert (cell["clec_n"], cell["clec_numerator"], cell["retail_n"], cell["retail_numerator"]) == (8, 2, 4, 1)
    assert cell["statistic"] == pytest.approx(0.0, abs=1e-12) and cell["status"] == "met"
    assert _cell(run.results, "MR-7", carrier="CLEC02", product="resale_pots")["clec_numerator"] == 0


def test_mr_no_access_matches_the_hand_computed_readme(plan, tmp_path):
    """No-access hours above a cleared trouble's real elapsed time reject the row (rows read = accepted
    + rejected); equal hours give a duration of 0; the README's MR-5/MR-6 figures hold."""
    run = pipeline.run(
        plan, FIXTURES / "mr-no-access", "2026-03", tmp_path / "store", max_reject_rate=1.0, allow_empty=True
    )
    troubles = next(i for i in run.manifest["inputs"] if i["record_type"] == "troubles")
    assert (troubles["rows_read"], troubles["rows_accepted"], troubles["rows_rejected"]) == (10, 8, 2)
    rejects = pd.read_parquet(tmp_path / "store" / "rejects" / "period=2026-03")
    assert rejects[["record_id", "input_field", "raw_value", "reason"]].values.tolist() == [
        ["C2", "no_access_hours", "3.5", "no_access_exceeds_duration"],
        ["C3", "no_access_hours", "1.5", "no_access_exceeds_duration"],
    ]
    mr6 = _cell(run.results, "MR-6", product="resale_pots", submeasure="dispatch=false")
    assert (mr6["clec_n"], mr6["clec_value"]) == (3, pytest.approx(13 / 3))
    assert (mr6["retail_n"], mr6["retail_value"], mr6["retail_stdev"] ** 2) == (4, 4.0, pytest.approx(10 / 3))
    assert mr6["statistic"] == pytest.approx(0.239046, abs=1e-6) and mr6["status"] == "met"
    records = pd.read_parquet(tmp_path / "store" / "records" / "period=2026-03" / "measure_id=MR-6")
    assert records.set_index("record_id").loc["C1", "value"] == 0.0  # no access equal to the duration
    mr5 = _cell(run.results, "MR-5", product="resale_pots")
    assert (mr5["clec_n"], mr5["clec_numerator"], mr5["retail_n"], mr5["retail_numerator"]) == (3, 1, 4, 2)
    assert mr5["statistic"] == pytest.approx(0.436436, abs=1e-6) and mr5["status"] == "met"
    assert _cell(run.results, "MR-8", product="resale_pots")["clec_numerator"] == 4


def _without(doc, dates=(), years=()):
    """A plan document whose holiday lists leave out some dates and some years."""
    listed = doc["calendar"]["holidays"]
    doc["calendar"]["holidays"] = {
        y: [h for h in items if h["date"] not in dates] for y, items in listed.items() if y not in years
    }
    return doc


def test_op4_with_columbus_day_worked_matches_the_hand_computed_readme(tmp_path):
    """A plan leaving Columbus Day out of its 2026 holidays gives the README's OP-4 intervals and z."""
    doc = _without(example_document(), dates=("2026-10-12",))
    doc["statistics"] = dict(PLAIN_STATISTICS)
    run = pipeline.run(
        plan_from_document(doc), FIXTURES / "op4-cutoff-holiday", "2026-10", tmp_path / "store", allow_empty=True
    )
    records = pd.read_parquet(tmp_path / "store" / "records" / "period=2026-10" / "measure_id=OP-4")
    values = dict(zip(records["record_id"], records["value"], strict=True))
    assert {k: values[k] for k in ("R1", "R2", "R3", "R4", "C1", "C2")} == {
        "R1": 3, "R2": 4, "R3": 4, "R4": 1, "C1": 5, "C2": 2
    }  # fmt: skip
    op4 = _cell(run.results, "OP-4", product="resale_pots", submeasure="dispatch=false")
    assert (op4["clec_n"], op4["clec_value"]) == (2, 3.5)
    assert (op4["retail_n"], op4["retail_value"], op4["retail_stdev"] ** 2) == (4, 3.0, pytest.approx(2.0))
    assert op4["statistic"] == pytest.approx(0.408248, abs=1e-6) and op4["status"] == "met"
    op3 = _cell(run.results, "OP-3", product="resale_pots")
    assert op3["statistic"] == pytest.approx(0.251976, abs=1e-6)  # due dates as given: unchanged


def test_op4_year_end_matches_the_hand_computed_readme(plan, tmp_path):
    """Business days across Christmas 2025 and New Year 2026 give the README's OP-4 intervals and z."""
    run = pipeline.run(plan, FIXTURES / "op4-year-end", "2026-01", tmp_path / "store", allow_empty=True)
    records = pd.read_parquet(tmp_path / "store" / "records" / "period=2026-01" / "measure_id=OP-4")
    assert dict(zip(records["record_id"], records["value"], strict=True)) == {
        "R1": 2,
        "R2": 3,
        "R3": 3,
        "C1": 6,
        "C2": 4,
    }
    op4 = _cell(run.results, "OP-4", product="resale_pots", submeasure="dispatch=false")
    assert (op4["clec_n"], op4["clec_value"], op4["retail_n"]) == (2, 5.0, 3)
    assert op4["retail_value"] == pytest.approx(8 / 3) and op4["retail_stdev"] ** 2 == pytest.approx(1 / 3)
    assert op4["statistic"] == pytest.approx(4.427189, abs=1e-6) and op4["status"] == "miss"


@pytest.mark.parametrize("partition_rows", [0, 2])
def test_a_year_the_plan_lists_no_holidays_for_stops_the_run_naming_it(tmp_path, partition_rows):
    """Orders received in December 2025 and completed in January 2026 need 2025's holidays: without them
    the run is a plan error naming 2025 (OP-4's R1 and C1), whole or in partitions alike; without 2026's,
    naming 2026 (every order of OP-4, PO-5's three of January)."""
    expected = {
        "2025": ["OP-4's business days reach for 2 record(s) of 2026-01 in CO (e.g. R1)"],
        "2026": [
            "OP-4's business days reach for 5 record(s) of 2026-01 in CO (e.g. R1)",
            "PO-5's business days reach for 3 record(s) of 2026-01 in CO (e.g. R2)",
        ],
    }
    for missing, reached in expected.items():
        doc = _without(example_document(), years=(missing,))
        out = tmp_path / f"store-{missing}"
        with pytest.raises(HolidaysNotListed) as info:
            pipeline.run(
                plan_from_document(doc), FIXTURES / "op4-year-end", "2026-01", out, partition_rows=partition_rows
            )
        assert info.value.years == (int(missing),)
        assert [p.pointer for p in info.value.problems] == ["/calendar/holidays"] * len(reached)
        assert [p.message.split(": list")[0] for p in info.value.problems] == [
            f"no holidays listed for {missing}, a year {text}" for text in reached
        ]
        assert not (out / "current").exists()  # nothing published


def test_a_plan_listing_only_the_years_the_records_need_gives_the_same_results(plan, tmp_path):
    """Holidays listed for 2025 and 2026 only: the results of the plan listing 2020-2035."""
    doc = _without(example_document(), years=tuple(str(y) for y in range(2020, 2036) if y not in (2025, 2026)))
    doc["statistics"] = dict(PLAIN_STATISTICS)
    short = pipeline.run(
        plan_from_document(doc), FIXTURES / "op4-year-end", "2026-01", tmp_path / "short", allow_empty=True
    )
    full = pipeline.run(plan, FIXTURES / "op4-year-end", "2026-01", tmp_path / "full", allow_empty=True)
    columns = ["measure_id", "scope", "carrier_id", "product", "submeasure", "clec_n", "clec_value", "status"]
    pd.testing.assert_frame_equal(short.results[columns], full.results[columns])
