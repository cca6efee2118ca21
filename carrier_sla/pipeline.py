"""The one place that knows the order of the stages:

plan -> ingest + contract (accepted records, rejects) -> derived fields -> per measure:
evaluate -> partial aggregates -> cells -> verdicts -> audit tables -> staged write ->
publish -> manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from carrier_sla import (
    __version__,
    aggregate,
    audit,
    evaluate,
    remedies,
    remedy_chain,
    store,
    verdicts,
)
from carrier_sla import calendar as calmod
from carrier_sla.errors import InputDataError, RejectRateExceeded, UsageError
from carrier_sla.inputs import Loaded, load_inputs
from carrier_sla.periods import Cutoff, check_in_force, check_period
from carrier_sla.plan import Measure, Plan, dump_plan
from carrier_sla.runlog import RunLog
from carrier_sla.timings import Timings

DEFAULT_MAX_REJECT_RATE = 0.01


@dataclass
class RunResult:
    run_id: str
    period: str
    results: pd.DataFrame
    manifest: dict[str, Any]
    manifest_path: Path
    timings: dict[str, float] = field(default_factory=dict)


def compute(
    plan: Plan,
    period: str,
    loaded: Loaded,
    timings: Timings | None = None,
    sink: Callable[[str, pa.Table], None] | None = None,
    missed: frozenset[tuple] | set[tuple] = frozenset(),
    log: RunLog | None = None,
) -> tuple[pd.DataFrame, dict[str, pa.Table]]:
    """Results frame and the records/ table of each measure for one period.

    `missed` holds the cells that missed the month before (see previous_misses), for plans
    with a stricter alpha after a miss.

    With a `sink`, each measure's records/ table goes to sink(measure_id, table) as soon as
    it is built (so it can be written while the next is computed) instead of being returned.
    """
    timings = Timings() if timings is None else timings
    dim_fields = aggregate.dimension_fields(plan)
    files_by_type: dict[str, list[str]] = {}
    for f in loaded.files:
        files_by_type.setdefault(f.record_type, []).append(str(f.path))
    shared: dict = {}  # the period's rows, once per (type, period_by, month)
    last_use = {evaluate.period_key(m, period): i for i, m in enumerate(plan.measures, start=1)}
    frames, record_tables = [], {}
    evaluated = 0
    for i, measure in enumerate(plan.measures, start=1):
        tick = time.perf_counter()
        judged, table = _measure_results(
            plan, measure, period, loaded, shared, dim_fields, files_by_type, timings, missed
        )
        for key in [k for k, last in last_use.items() if last == i]:
            shared.pop(key, None)  # no later measure needs these rows
        if log is not None:
            cells = 0 if judged is None else len(judged)
            seconds = time.perf_counter() - tick
            evaluated += table.num_rows
            log.event(
                "measure",
                f"{measure.id}: {table.num_rows:,} records, {cells:,} cells in {seconds:.2f} s",
                measure=measure.id,
                records=table.num_rows,
                cells=cells,
                seconds=round(seconds, 3),
            )
            log.progress(i, len(plan.measures), evaluated)
        if sink is None:
            record_tables[measure.id] = table
        else:
            sink(measure.id, table)
        if judged is not None:
            frames.append(judged)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=audit.result_columns(dim_fields))
    order = {m.id: i for i, m in enumerate(plan.measures)}
    results = results.assign(
        _m=results["measure_id"].map(order),
        _scope=(results["scope"] == "clec_aggregate").astype(int),
        _carrier=results["carrier_id"].fillna(""),
    ).sort_values(["_m", "state", "product", "submeasure", "_scope", "_carrier"], kind="stable")
    results = results.drop(columns=["_m", "_scope", "_carrier"]).reset_index(drop=True)
    return results, record_tables


def _key(measure_id: str, cell: Any) -> tuple:
    """A cell's identity across months: measure, scope, carrier, state, product, dimension values."""
    dims = tuple("" if _blank(cell.get(d)) else str(cell.get(d)) for d in ("dispatch", "channel"))
    carrier = cell.get("carrier_id")
    return (measure_id, cell["scope"], "" if _blank(carrier) else carrier, cell["state"], cell["product"], *dims)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def previous_misses(out: Path, period: str) -> set[tuple]:
    """Cells that missed in the month before `period`, from the store (empty if not published)."""
    previous = calmod.period_text(calmod.period_index(period) - 1)
    if not (Path(out) / "results" / f"period={previous}").exists():
        return set()
    frame = store.read_table(out, "results", previous).to_pandas()
    frame = frame[frame["status"] == "miss"]
    return {_key(row["measure_id"], row) for row in frame.to_dict("records")}


def _measure_results(
    plan: Plan,
    measure: Measure,
    period: str,
    loaded: Loaded,
    shared: dict,
    dim_fields: list[str],
    files_by_type: dict[str, list[str]],
    timings: Timings,
    missed: frozenset[tuple] | set[tuple] = frozenset(),
) -> tuple[pd.DataFrame | None, pa.Table]:
    """One measure: evaluate its records, aggregate, judge the cells; its records/ table."""
    with timings.stage("evaluate"):
        ev = evaluate.evaluate_measure(plan, measure, period, loaded.records, shared)
    with timings.stage("aggregate"):
        part = aggregate.merge([aggregate.partials(ev)])
        base = None
        if measure.rate_base is not None:
            lines = evaluate.lines_in_period(loaded.records, measure, period)
            part = aggregate.widen_carriers(part, list(lines.cats["carrier_id"]))
            base = aggregate.lines_base(lines, measure, part)
        cells = aggregate.cells(plan, measure, part, base)
    with timings.stage("audit"):
        tables = [audit.record_rows(plan, ev, dim_fields, files_by_type[measure.records])]
        if measure.rate_base is not None:
            tables.append(audit.base_rows(lines, dim_fields, files_by_type["lines"], measure.rate_base.field))
        table = pa.concat_tables([audit.unify_record_schema(t, dim_fields) for t in tables])
    if cells.empty:
        return None, table
    with timings.stage("statistics"):
        samples = aggregate.CellSamples(plan, ev) if measure.type == "mean" else None
        judged = verdicts.judge(plan, measure, cells, samples, lambda cell: _key(measure.id, cell) in missed)
    split = audit.split_products(plan, measure)
    dims = [d.field for d in measure.dimensions]
    judged["submeasure"] = [
        audit.submeasure_label(measure, split, p, dict(zip(dims, vals, strict=True)))
        for p, vals in zip(
            judged["product"], judged[dims].itertuples(index=False) if dims else [()] * len(judged), strict=True
        )
    ]
    judged = judged.assign(
        period=period,
        data_period=evaluate.data_period(period, measure),
        plan_id=plan.id,
        plan_version=plan.version,
        measure_id=measure.id,
        direction=measure.direction,
        unit=measure.unit,
        clec_records_evaluated=judged["n_evaluated"].astype("int64"),
    )
    return judged, table


def run(
    plan: Plan,
    data_dir: Path,
    period: str,
    out: Path,
    *,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
    run_id: str | None = None,
    as_of: dt.date | None = None,
    today: dt.date | None = None,
    log: RunLog | None = None,
) -> RunResult:
    """Run the checker for one period and publish its outputs to the store `out`.

    `as_of`: compute from the data known at the end of that day (month to date); the results
    are provisional while it is before the period's last day. Without it all data are used,
    and the results are provisional while the period has not ended by `today` (default: the
    UTC date). Holds the store's single-writer lock for the whole run (StoreBusy when taken).
    """
    check_period(period)
    check_in_force(plan, period)
    cutoff = Cutoff.of(period, as_of, today or datetime.now(UTC).date())
    started = datetime.now(UTC)
    run_id = run_id or store.new_run_id(started)
    out = Path(out)
    log = log or RunLog()
    try:
        with store.StoreLock(out, run_id):
            log.open(out / "runs" / run_id / "log.jsonl", run_id)
            return _run_locked(plan, data_dir, period, out, max_reject_rate, run_id, started, cutoff, log)
    finally:
        log.close()


def _run_locked(
    plan: Plan,
    data_dir: Path,
    period: str,
    out: Path,
    max_reject_rate: float,
    run_id: str,
    started: datetime,
    cutoff: Cutoff,
    log: RunLog,
) -> RunResult:
    timings = Timings()

    def _finish(manifest: dict[str, Any], out: Path, run_id: str, status: str, code: int, error: str | None) -> Path:
        seconds = round((datetime.now(UTC) - started).total_seconds(), 3)
        text = f"exit {code} after {seconds:.1f} s"  # the error itself: in the JSON line, and printed by the caller
        log.event(status, text, exit_code=code, seconds=seconds, error=error)
        return _write_final_manifest(manifest, out, run_id, status, code, error)

    manifest: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": None,
        "package_version": __version__,
        "output_schema_version": store.OUTPUT_SCHEMA_VERSION,
        "period": period,
        "as_of": cutoff.as_of.isoformat() if cutoff.as_of else None,
        "provisional": cutoff.provisional,
        "provisional_as_of": cutoff.provisional_as_of.isoformat() if cutoff.provisional_as_of else None,
        "plan": {"id": plan.id, "version": plan.version, "sha256": plan.sha256, "source": plan.source},
        "data_dir": str(data_dir),
        "max_reject_rate": max_reject_rate,
        "inputs": [],
        "outputs": [],
        "verdicts": {},
        "status": "failed",
        "exit_code": None,
    }
    metadata = {
        "carrier_sla.version": __version__,
        "carrier_sla.output_schema_version": store.OUTPUT_SCHEMA_VERSION,
        "carrier_sla.run_id": run_id,
        "carrier_sla.plan_id": plan.id,
        "carrier_sla.plan_version": plan.version,
        "carrier_sla.plan_sha256": plan.sha256,
        "carrier_sla.period": period,
    }
    store.write_manifest(out, run_id, manifest | {"status": "running"})
    (out / "runs" / run_id / "plan.json").write_text(json.dumps(dump_plan(plan), indent=1) + "\n")
    state = f"provisional as of {cutoff.provisional_as_of}" if cutoff.provisional else "final"
    log.event(
        "start",
        f"period {period} ({state}), plan {plan.id} {plan.version}",
        period=period,
        provisional=cutoff.provisional,
        as_of=manifest["as_of"],
        plan=f"{plan.id} {plan.version}",
    )
    try:
        chain = remedy_chain.check_chain(out, period) if plan.remedies is not None else None
    except UsageError as exc:
        _finish(manifest, out, run_id, "failed", 2, str(exc))
        raise
    try:
        loaded = load_inputs(plan, data_dir, max_reject_rate, timings, cutoff.as_of)
    except RejectRateExceeded as exc:
        loaded = exc.loaded  # type: ignore[attr-defined]
        manifest["inputs"] = _inputs(loaded)
        path = out / "runs" / run_id / "rejects.parquet"
        rows = store.write_parquet(path, loaded.rejects, metadata)
        manifest["outputs"] = [{"table": "rejects", "path": str(path), "rows": rows}]
        _finish(manifest, out, run_id, "failed", 3, str(exc))
        raise
    except InputDataError as exc:
        _finish(manifest, out, run_id, "failed", 3, str(exc))
        raise
    manifest["inputs"] = _inputs(loaded)
    read = sum(c.read for c in loaded.counts)
    rejected = sum(c.rejected for c in loaded.counts)
    load_seconds = sum(timings.get(k, 0.0) for k in ("read_and_check", "finalize", "derive"))
    log.event(
        "read",
        f"{read:,} rows from {len(loaded.files)} files, {rejected:,} rejected ({load_seconds:.1f} s)",
        rows=read,
        rejected=rejected,
        files=len(loaded.files),
        seconds=round(load_seconds, 3),
    )
    if cutoff.as_of is not None:
        manifest["records_after_as_of"] = loaded.not_yet_known
    staging = store.Staging(out, run_id)
    writer = store.Writer()
    try:

        def write_records(measure_id: str, table: pa.Table) -> None:
            path = staging.path("records", period, f"measure={measure_id}", "part-0.parquet")
            writer.submit(f"records/{measure_id}", path, table, metadata)

        missed = previous_misses(out, period) if plan.statistics.alpha_after_miss is not None else set()
        results, _ = compute(plan, period, loaded, timings, sink=write_records, missed=missed, log=log)
        results = results.assign(
            provisional=cutoff.provisional,
            provisional_as_of=cutoff.provisional_as_of.isoformat() if cutoff.provisional_as_of else None,
        )
        paid: list[remedies.PeriodRemedies] = []
        statement_files: list[tuple[str, int, Path]] = []
        if chain is not None:
            with timings.stage("remedies"):
                paid = remedy_chain.compute_chain(plan, out, period, results, chain)
                for month in paid:
                    statement_files += _stage_remedies(
                        staging, writer, month, metadata | {"carrier_sla.period": month.period}
                    )
                    total = sum(month.totals_by_payee().values(), Decimal("0.00"))
                    log.event(
                        "remedies",
                        f"{month.period}: {len(month.ledger)} ledger lines, {total:,.2f}",
                        period=month.period,
                        lines=len(month.ledger),
                        total=str(total),
                    )
        with timings.stage("write"):
            dim_fields = aggregate.dimension_fields(plan)
            writer.submit(
                "results",
                staging.path("results", period, "part-0.parquet"),
                audit.results_table(results, dim_fields),
                metadata,
            )
            writer.submit("rejects", staging.path("rejects", period, "part-0.parquet"), loaded.rejects, metadata)
            outputs = writer.wait() + statement_files
        log.event(
            "write",
            f"{len(outputs)} files ({timings['write']:.1f} s waiting for writers)",
            files=len(outputs),
            rows=sum(rows for _, rows, _ in outputs),
            seconds=round(timings["write"], 3),
        )
        manifest["outputs"] = [
            {"table": name, "path": str(_published_path(out, path, staging)), "rows": rows}
            for name, rows, path in outputs
        ]
        manifest["verdicts"] = dict(sorted(Counter(results["status"]).items())) if len(results) else {}
        if chain is not None:
            manifest["remedies"] = _remedies_summary(plan, chain, paid)
        manifest["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
        store.write_manifest(out, run_id, manifest | {"status": "publishing"})
        staging.publish()
    except Exception as exc:  # the manifest records every failure; the caller maps it to an exit code
        _finish(manifest, out, run_id, "failed", 5, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        writer.close()
        staging.discard()
    manifest_path = _finish(manifest, out, run_id, "completed", 0, None)
    return RunResult(run_id, period, results, manifest, manifest_path, timings)


def _stage_remedies(
    staging: store.Staging, writer: store.Writer, month: remedies.PeriodRemedies, metadata: dict[str, str]
) -> list[tuple[str, int, Path]]:
    """Ledger, escalation state and one CSV statement per payee of a month, into the staging area."""
    writer.submit(
        "remedies",
        staging.path("remedies", month.period, "part-0.parquet"),
        remedies.ledger_table(month.ledger),
        metadata,
    )
    writer.submit(
        "escalation",
        staging.path("escalation", month.period, "part-0.parquet"),
        remedies.state_table(month.state),
        metadata,
    )
    folder = staging.path("statements", month.period)
    folder.mkdir(parents=True, exist_ok=True)  # a month without payments still publishes its (empty) folder
    written = []
    for payee, sheet in remedies.statements(month.ledger).items():
        path = folder / remedies.statement_filename(payee)
        sheet.to_csv(path, index=False)
        written.append((f"statements/{payee}", len(sheet) - 1, path))  # rows: its lines, not the total
    return written


def _remedies_summary(plan: Plan, chain: remedy_chain.Chain, paid: list[remedies.PeriodRemedies]) -> dict[str, Any]:
    """Per month: totals per payee (text, to the cent) and where its escalation started."""
    assert plan.remedies is not None  # a chain exists only for plans with remedies
    summary: dict[str, Any] = {"currency": plan.remedies.currency, "escalation_from": chain.previous, "periods": {}}
    for i, month in enumerate(paid):
        totals = month.totals_by_payee()
        summary["periods"][month.period] = {
            "recomputed_after_restatement": i > 0,
            "lines": len(month.ledger),
            "total": str(sum(totals.values(), Decimal("0.00"))),
            "totals_by_payee": {payee: str(amount) for payee, amount in totals.items()},
        }
    if chain.later and plan.statistics.alpha_after_miss is not None:
        summary["warning"] = (
            f"the verdicts of {', '.join(chain.later)} used the misses of the month before (alpha_after_miss); "
            "their remedies were recomputed from their published verdicts: run them again to restate the verdicts"
        )
    return summary


def _published_path(out: Path, staged: Path, staging: store.Staging) -> Path:
    return out / staged.relative_to(staging.root)


def _inputs(loaded: Loaded) -> list[dict[str, Any]]:
    by_path = {str(f.path): f for f in loaded.files}
    return [
        {
            "record_type": c.record_type,
            "path": c.path,
            "sha256": by_path[c.path].sha256(),
            "rows_read": c.read,
            "rows_accepted": c.accepted,
            "rows_rejected": c.rejected,
        }
        for c in loaded.counts
    ]


def _write_final_manifest(
    manifest: dict[str, Any], out: Path, run_id: str, status: str, code: int, error: str | None
) -> Path:
    manifest.update(finished_at=datetime.now(UTC).isoformat(), status=status, exit_code=code)
    if error:
        manifest["error"] = error
    return store.write_manifest(out, run_id, manifest)
