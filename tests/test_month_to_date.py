"""Month-to-date runs: --as-of, provisional vs final, --period auto."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import write_inputs

from carrier_sla.cli.main import main
from carrier_sla.engine import pipeline
from carrier_sla.errors import UsageError
from carrier_sla.plan import periods
from carrier_sla.readers import history
from carrier_sla.store.view import read_table

D = dt.date


def october_orders() -> list[dict]:
    """Retail and CLEC01 orders: received 5 Oct, completed 8 Oct; two CLEC orders completed 20 Oct
    (after an as-of of 15 Oct: still open then), one CLEC order received 18 Oct."""
    rows = [
        {"carrier_id": "ILEC", "product": "pots", "completed_at": f"2026-10-{12 if i < 3 else 8:02d} 12:00:00"}
        for i in range(40)
    ]
    rows += [{} for _ in range(6)]
    rows += [{"completed_at": "2026-10-20 12:00:00", "due_date": "2026-10-08"} for _ in range(2)]
    rows += [
        {
            "received_at": "2026-10-18 09:00:00",
            "foc_at": "2026-10-18 10:00:00",
            "due_date": "2026-10-21",
            "completed_at": "2026-10-21 12:00:00",
        }
    ]
    return rows


def op3(result: pipeline.RunResult):
    frame = result.results
    return frame[(frame["measure_id"] == "OP-3") & (frame["carrier_id"] == "CLEC01")].iloc[0]


def test_as_of_uses_only_the_data_known_at_the_end_of_that_day(tmp_path, plan):
    """As of 15 Oct the two orders completed on 20 Oct are open and the order received on 18 Oct
    is unknown: OP-3 counts 6 CLEC orders, the results are provisional, the manifest counts the 1 left out."""
    data = write_inputs(tmp_path / "data", october_orders())
    mtd = pipeline.run(
        plan,
        data,
        "2026-10",
        tmp_path / "s",
        max_reject_rate=1.0,
        as_of=D(2026, 10, 15),
        today=D(2026, 10, 16),
        allow_empty=True,
    )
    assert op3(mtd)["clec_n"] == 6
    assert mtd.results["provisional"].all() and set(mtd.results["provisional_as_of"]) == {"2026-10-15"}
    assert mtd.manifest["records_after_as_of"]["orders"] == 1
    assert mtd.manifest["provisional"] is True
    final = pipeline.run(
        plan, data, "2026-10", tmp_path / "s", max_reject_rate=1.0, today=D(2026, 11, 2), allow_empty=True
    )
    assert op3(final)["clec_n"] == 9 and not final.results["provisional"].any()
    published = read_table(tmp_path / "s", "results", "2026-10").to_pandas()
    assert not published["provisional"].any()  # the final run replaced the provisional one
    kinds = [(r["kind"], r["as_of"]) for r in history.runs(tmp_path / "s")]
    assert kinds == [("provisional", "2026-10-15"), ("final", None)]


def test_a_run_of_a_month_not_yet_over_is_provisional_as_of_today(tmp_path, plan):
    """Without --as-of, a run of the current month is provisional as of today; of a past month, final."""
    data = write_inputs(tmp_path / "data", october_orders())
    current = pipeline.run(
        plan, data, "2026-10", tmp_path / "a", max_reject_rate=1.0, today=D(2026, 10, 31), allow_empty=True
    )
    assert current.manifest["provisional"] and current.manifest["provisional_as_of"] == "2026-10-31"
    past = pipeline.run(
        plan, data, "2026-10", tmp_path / "b", max_reject_rate=1.0, today=D(2026, 11, 1), allow_empty=True
    )
    assert not past.manifest["provisional"] and past.manifest["provisional_as_of"] is None


@pytest.mark.parametrize(
    ("as_of", "today", "message"),
    [
        (D(2026, 9, 30), D(2026, 10, 20), "before period 2026-10 begins"),
        (D(2026, 10, 21), D(2026, 10, 20), "after today"),
    ],
)
def test_as_of_outside_the_period_or_in_the_future_is_a_usage_error(tmp_path, plan, as_of, today, message):
    """An as-of date before the month or after today is refused before anything is read."""
    with pytest.raises(UsageError, match=message):
        pipeline.run(plan, tmp_path, "2026-10", tmp_path / "s", as_of=as_of, today=today)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (D(2026, 11, 3), [("2026-10", None), ("2026-11", D(2026, 11, 3))]),
        (D(2026, 11, 5), [("2026-10", None), ("2026-11", D(2026, 11, 5))]),
        (D(2026, 11, 6), [("2026-11", D(2026, 11, 6))]),
        (D(2027, 1, 1), [("2026-12", None), ("2027-01", D(2027, 1, 1))]),
    ],
)
def test_auto_periods(today, expected):
    """auto: the month to date, preceded in the first 5 days by the previous month's final run."""
    assert periods.auto_periods(today, 5) == expected


def test_period_auto_on_the_cli_runs_final_then_month_to_date_and_logs_them(tmp_path, capsys):
    """On 2 Nov, --period auto runs October final, then November as of 2 Nov, and says so on stderr."""
    data = write_inputs(tmp_path / "data", october_orders())
    out = tmp_path / "store"
    args = ["run", "--plan", "example-qc", "--data", str(data), "--out", str(out), "--quiet", "--max-reject-rate", "1"]
    args.append("--allow-empty")  # orders only
    assert main([*args, "--period", "auto", "--today", "2026-11-02"]) == 0
    err = capsys.readouterr().err
    assert "--period auto on 2026-11-02: 2026-10 (final), 2026-11 (provisional as of 2026-11-02)" in err
    manifests = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/manifest.json"))]
    assert sorted((m["period"], m["provisional"]) for m in manifests) == [("2026-10", False), ("2026-11", True)]
    assert main([*args, "--period", "auto", "--as-of", "2026-11-01"]) == 2
    assert main([*args, "--period", "2026-10", "--as-of", "2026-13-01"]) == 2
