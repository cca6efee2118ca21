"""The named scenarios under fixtures/ give the numbers computed by hand in their READMEs."""

from pathlib import Path

import pandas as pd
import pytest

from carrier_sla import pipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _cell(results, measure, carrier="CLEC01", **keys):
    frame = results[(results["measure_id"] == measure) & (results["carrier_id"] == carrier)]
    for k, v in keys.items():
        frame = frame[frame[k] == v]
    assert len(frame) == 1
    return frame.iloc[0]


def test_op4_cutoff_holiday_matches_the_hand_computed_readme(plan, tmp_path):
    """Cut-off at 15:00 (strictly after), a Saturday and Columbus Day give the README's OP-3/OP-4 figures."""
    run = pipeline.run(plan, FIXTURES / "op4-cutoff-holiday", "2026-10", tmp_path / "store")
    op4 = _cell(run.results, "OP-4", product="resale_pots", submeasure="dispatch=false")
    assert (op4["clec_n"], op4["clec_value"]) == (2, 3.0)
    assert (op4["retail_n"], op4["retail_value"], op4["retail_stdev"] ** 2) == (4, 2.0, pytest.approx(2.0))
    assert op4["statistic"] == pytest.approx(0.816497, abs=1e-6) and op4["status"] == "met"
    op3 = _cell(run.results, "OP-3", product="resale_pots")
    assert (op3["clec_n"], op3["clec_numerator"], op3["retail_n"], op3["retail_numerator"]) == (3, 2, 4, 3)
    assert op3["statistic"] == pytest.approx(0.251976, abs=1e-6) and op3["status"] == "met"


def test_mr_dst_repair_matches_the_hand_computed_readme(plan, tmp_path):
    """Durations across the fall-back hour are real elapsed hours; the README's MR-5..MR-8 figures hold."""
    run = pipeline.run(plan, FIXTURES / "mr-dst-repair", "2026-11", tmp_path / "store")
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
    run = pipeline.run(plan, FIXTURES / "explain-evidence", "2026-10", tmp_path / "store")
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
        m: pd.read_parquet(tmp_path / "store" / "records" / "period=2026-11" / f"measure={m}") for m in ("OP-5", "MR-7")
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
