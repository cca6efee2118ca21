"""The Python API, for notebooks and scripts: the same operations as the command line, as functions.

    import carrier_sla as csla
    csla.generate("demo-data", period="2026-10", periods=3, scale=2_000)
    result = csla.run(plan="example-qc", data="demo-data", period="2026-10", out="store")
    store = csla.open_store("store")
    store.results("2026-10")                  # a pandas DataFrame; .remedies(), .records() ... alike
    store.run(result.run_id).results("2026-10")  # the month as that run published it

Errors are the exceptions the command line maps to its exit codes (carrier_sla.errors): PlanError and
UsageError (exit 2), InputDataError (3), StoreBusy (4), StoreError (5), all CarrierSlaError. Like the CLI,
this module only parses arguments and calls the library; it never exits and prints nothing (unless
`progress=True`: the run's log lines on stderr).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from carrier_sla.errors import UsageError
from carrier_sla.plan.load import Plan, load_plan
from carrier_sla.store.view import StoreView, open_store

if TYPE_CHECKING:
    from carrier_sla.engine.pipeline import RunResult
    from carrier_sla.plan.versions import PlanVersions

__all__ = ["StoreView", "generate", "load_plan", "open_store", "run"]

DEFAULT_MAX_REJECT_RATE = 0.01  # as the CLI's --max-reject-rate


def _date(value: dt.date | str | None, name: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} is not a date YYYY-MM-DD") from None


def _versions(plan: str | Path | Plan | PlanVersions) -> PlanVersions:
    from carrier_sla.plan.versions import PlanVersions, load_versions

    if isinstance(plan, PlanVersions):
        return plan
    if isinstance(plan, Plan):
        return PlanVersions(plan.source, (plan,))
    return load_versions(plan)


def run(
    plan: str | Path | Plan | PlanVersions,
    data: str | Path,
    period: str,
    out: str | Path,
    *,
    as_of: dt.date | str | None = None,
    today: dt.date | str | None = None,
    final_within_days: int = 5,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
    partition_rows: int | None = None,
    allow_empty: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> RunResult | list[RunResult]:
    """Check `period` of the input folder `data` under `plan` and publish the results to the store `out`,
    as `carrier-sla run` does with the same options (see its --help).

    plan: a plan file, a bundled plan id ("example-qc"), a folder of the plan's versions, or a Plan.
    period: a month YYYY-MM (returns its RunResult: run_id, period, results, manifest, manifest_path); a range
    YYYY-MM..YYYY-MM (the months in order under one lock, stopping at the first that fails) or "auto" (the
    current month to date, and within `final_within_days` days of a month first the previous month, final):
    the list of RunResults in order. `as_of`, `today`: dates or "YYYY-MM-DD". `workers`, `scheduler`: as
    --workers and --scheduler (Dask worker processes, or an existing Dask cluster; None: the default).
    `progress`: the run's log lines on stderr (default silent; the JSON log is in
    STORE/runs/RUN_ID/log.jsonl either way)."""
    from carrier_sla.engine import months
    from carrier_sla.engine.runlog import RunLog
    from carrier_sla.inputs import spill

    if workers is not None and workers < 1:
        raise UsageError(f"workers={workers!r}: at least 1")
    if not 0 <= max_reject_rate <= 1:
        raise UsageError(f"max_reject_rate={max_reject_rate!r} is not a share from 0 to 1 (e.g. 0.01 for 1%)")
    versions = _versions(plan)
    as_of_day, today_day = _date(as_of, "as_of"), _date(today, "today") or dt.datetime.now(dt.UTC).date()
    results = months.run_period(
        versions,
        Path(data),
        period,
        Path(out),
        as_of=as_of_day,
        today=today_day,
        final_within_days=final_within_days,
        log=RunLog(console=sys.stderr if progress else None),
        max_reject_rate=max_reject_rate,
        partition_rows=spill.DEFAULT_PARTITION_ROWS if partition_rows is None else partition_rows,
        allow_empty=allow_empty,
        workers=workers,
        scheduler=scheduler,
    )
    return results if months.is_range(period) or period == "auto" else results[0]


def generate(
    out: str | Path,
    period: str,
    *,
    periods: int = 3,
    scale: int = 20_000,
    seed: int = 0,
    format: str = "csv",
    files_per_type: int = 1,
    clecs: int = 12,
    zipf: float = 1.1,
) -> dict[str, int]:
    """Write deterministic synthetic input data (orders, troubles, lines) for the `periods` months ending with
    `period` into `out`, as `carrier-sla generate` does; returns the rows written per record type."""
    from carrier_sla.plan.periods import check_period
    from carrier_sla.synthetic.generate import generate as write

    if scale < 1 or periods < 1:
        raise UsageError("scale and periods must be at least 1")
    check_period(period)
    return write(
        Path(out),
        period,
        periods=periods,
        scale=scale,
        seed=seed,
        fmt=format,
        files_per_type=files_per_type,
        clecs=clecs,
        zipf=zipf,
    )
