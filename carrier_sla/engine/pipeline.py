"""The one place that knows the order of the stages:

plan -> excusals -> ingest + contract (accepted records, rejects) -> derived fields -> per
measure: evaluate -> partial aggregates -> cells -> verdicts -> audit tables -> staged write ->
excused cells -> remedies of the month and the later months, each under its own plan version ->
restatement adjustments -> publish -> manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from carrier_sla import __version__
from carrier_sla.engine import aggregate, audit, audit_files, cluster, remedies, remedy_chain, trueup
from carrier_sla.engine.load import (
    Loaded,
    needed_record_types,
    require_records,
)
from carrier_sla.engine.period import compute, run_pool, source_for
from carrier_sla.engine.period_results import previous_misses
from carrier_sla.engine.runlog import RunLog
from carrier_sla.errors import InputDataError, PlanError, RejectRateExceeded, StoreError, UsageError
from carrier_sla.inputs import excusals, ingest, spill
from carrier_sla.plan.load import Plan, dump_plan
from carrier_sla.plan.periods import Cutoff, check_in_force, check_period
from carrier_sla.store import csv_safe, verify
from carrier_sla.store import layout as store
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
    partition_rows: int = spill.DEFAULT_PARTITION_ROWS,
    allow_empty: bool = False,
    held_lock: store.StoreLock | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> RunResult:
    """Run the checker for one period and publish its outputs to the store `out`.

    `as_of`: compute from the data known at the end of that day (month to date); the results
    are provisional while it is before the period's last day. Without it all data are used,
    and the results are provisional while the period has not ended by `today` (default: the
    UTC date), which also dates a restatement (restatement.lookback_months). A record type the
    plan reads without a record of the period (or, month to date, without any) is an input error
    (inputs.require_records) unless `allow_empty`. Holds the store's single-writer lock for the
    whole run (StoreBusy when taken), unless the caller holds it already (`held_lock`: a range of
    months run under one lock, carrier_sla.engine.months).
    """
    check_period(period)
    if not 0 <= max_reject_rate <= 1:  # NaN too: it would disable the reject gate
        raise UsageError(f"max_reject_rate {max_reject_rate!r} is not a share between 0 and 1")
    check_in_force(plan, period)
    today = today or datetime.now(UTC).date()
    cutoff = Cutoff.of(period, as_of, today)
    if workers is not None and workers > 1 and scheduler is None:
        # the workers' fork server imports while the run checks the store and lists its inputs
        # (the real population on 2 workers: 1.0 s from the run's start to its workers, now 0.83 s)
        cluster.start_fork_server()
    with run_pool():  # the whole run, its output writing after the loop included (period.run_pool)
        started = datetime.now(UTC)
        run_id = run_id or store.new_run_id(started)
        out = Path(out)
        log = log or RunLog()
        if held_lock is not None and held_lock.store.resolve() != out.resolve():
            raise ValueError(f"the lock held is {held_lock.store}'s, not {out}'s")
        try:
            lock_context = contextlib.nullcontext(held_lock) if held_lock is not None else store.StoreLock(out, run_id)
            with lock_context as lock:
                try:
                    log.open(out / "runs" / run_id / "log.jsonl", run_id)
                except OSError as exc:
                    raise StoreError(f"cannot write to the store {out}: {store.describe_os_error(exc)}") from exc
                for warning in lock.warnings:
                    log.event("warning", warning)
                args = (
                    plan,
                    data_dir,
                    period,
                    out,
                    max_reject_rate,
                    run_id,
                    started,
                    cutoff,
                    log,
                    partition_rows,
                    allow_empty,
                    today,
                )
                return _run_locked(*args, lock.warnings, workers, scheduler)
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
    partition_rows: int,
    allow_empty: bool,
    today: dt.date,
    warnings: list[str],
    workers: int | None = None,
    scheduler: str | None = None,
) -> RunResult:
    timings = Timings()

    def _finish(manifest: dict[str, Any], out: Path, run_id: str, status: str, code: int, error: str | None) -> Path:
        seconds = round((datetime.now(UTC) - started).total_seconds(), 3)
        text = f"exit {code} after {seconds:.1f} s"  # the error itself: in the JSON line, and printed by the caller
        with contextlib.suppress(OSError):  # a full disk: the manifest below matters more than the log line
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
    if warnings:
        manifest["warnings"] = list(warnings)
    state = f"provisional as of {cutoff.provisional_as_of}" if cutoff.provisional else "final"
    try:
        store.write_manifest(out, run_id, manifest | {"status": "running"})
        (out / "runs" / run_id / "plan.json").write_text(json.dumps(dump_plan(plan), indent=1) + "\n")
        log.event(
            "start",
            f"period {period} ({state}), plan {plan.id} {plan.version}",
            period=period,
            provisional=cutoff.provisional,
            as_of=manifest["as_of"],
            plan=f"{plan.id} {plan.version}",
        )
    except OSError as exc:  # a read-only store, a full disk: no manifest to mark, so no run to keep
        shutil.rmtree(out / "runs" / run_id, ignore_errors=True)
        raise StoreError(f"cannot write to the store {out}: {store.describe_os_error(exc)}") from exc

    def _fail(code: int, exc: Exception) -> None:  # before anything is staged: record why, as far as the disk lets
        with contextlib.suppress(OSError):
            _finish(manifest, out, run_id, "failed", code, str(exc))

    try:
        verify.require_intact(out, replaced=_replaced(plan, period, out))
        store.require_current_schema(out)
        chain = remedy_chain.check_chain(out, period) if plan.remedies is not None else None
        staging = store.Staging(out, run_id)
    except StoreError as exc:
        _fail(5, exc)
        raise
    except UsageError as exc:
        _fail(2, exc)
        raise
    writer = store.Writer()
    digests: ingest.Digests | None = None
    approved = excusals.RecordMatches()
    worker_files: list[tuple[str, int, Path]] = []  # records/ files the workers wrote
    worker_digests: dict[Path, tuple[str, int]] = {}
    try:
        evaluated: Counter[str] = Counter()  # per measure, records of its type in its data month

        missed = previous_misses(out, period, plan) if plan.statistics.alpha_after_miss is not None else set()
        try:
            excused = excusals.read(Path(data_dir))  # approved exclusions: optional input, every row checked
            excused_now = excused.of_period(period) if excused is not None else ()
            judged_plan = excusals.with_record_exclusions(plan, excused_now)
            approved.active = judged_plan is not plan
            found = ingest.discover(Path(data_dir), needed_record_types(plan))
            digests = ingest.Digests([f for files in found.values() for f in files])
            parts = spill.partition_count(plan, found, partition_rows)
            if parts == 1 and partition_rows and spill.reads_whole(plan):
                log.event(
                    "partitions",
                    f"related-record measures match on {', '.join(spill.match_fields(plan))} with no field common "
                    "to all: no partition can keep every related pair together, so the input is held in memory whole",
                )
            source = source_for(found, parts, out / ".staging" / run_id)
            rows = spill.estimated_rows(found) if workers is None and parts > 1 else 0
            with cluster.connect(workers, scheduler, parts, rows) as executor:
                if not executor.in_process:
                    log.event("workers", f"{executor.workers} Dask workers", workers=executor.workers)
                sink = audit_files.AuditFiles(
                    staging.root,
                    period,
                    metadata,
                    approved.active,
                    {m.id: m.records for m in plan.measures},
                    writer if executor.in_process else None,
                )
                computed = compute(
                    judged_plan,
                    period,
                    source,
                    sink,
                    executor,
                    max_reject_rate=max_reject_rate,
                    timings=timings,
                    as_of=cutoff.as_of,
                    missed=missed,
                    log=log,
                    settle=(lambda: writer.settle(len(plan.measures))) if executor.in_process else None,
                )
            results, loaded = computed.results, computed.loaded
            for written in computed.sunk:
                approved.found |= written.approved
                evaluated[written.measure_id] += written.own_rows
                if written.path is not None:  # written by a worker
                    worker_files.append((written.name, written.rows, written.path))
                    worker_digests[written.path] = written.digest
            if not allow_empty:
                require_records(plan, period, loaded, cutoff.provisional)
            results = excusals.apply(results, excused_now, approved)  # every records/ table went through write_records
        except RejectRateExceeded as exc:
            loaded = exc.loaded  # type: ignore[attr-defined]
            manifest["inputs"] = _inputs(loaded, digests)
            path = out / "runs" / run_id / "rejects.parquet"
            rows = store.write_parquet(path, loaded.rejects, metadata)
            manifest["outputs"] = [{"table": "rejects", "path": str(path), "rows": rows}]
            _finish(manifest, out, run_id, "failed", 3, str(exc))
            raise
        except InputDataError as exc:
            if hasattr(exc, "loaded"):  # the rows were read: say how many (require_records)
                manifest["inputs"] = _inputs(exc.loaded, digests)
            _finish(manifest, out, run_id, "failed", 3, str(exc))
            raise
        manifest["inputs"] = _inputs(loaded, digests)
        if excused is not None:
            manifest["excusals"] = excused.manifest(period, results, approved.counts())
        if cutoff.as_of is not None:
            manifest["records_after_as_of"] = loaded.not_yet_known
        manifest["partitions"] = parts
        manifest["measures_without_records"] = without_records(plan, period, evaluated)
        for gap in manifest["measures_without_records"]:
            log.event("warning", describe_without_records(gap), **gap)
        results = results.assign(
            provisional=cutoff.provisional,
            provisional_as_of=cutoff.provisional_as_of.isoformat() if cutoff.provisional_as_of else None,
        )
        paid: list[remedies.PeriodRemedies] = []
        plans: dict[str, Plan] = {period: plan}
        adjusted: dict[str, pd.DataFrame] = {}
        statement_files: list[tuple[str, int, Path]] = []
        if chain is not None:
            assert plan.remedies is not None  # a chain exists only for plans with remedies
            with timings.stage("remedies"):
                plans = remedy_chain.month_plans(plan, out, period, chain)
                paid = remedy_chain.compute_chain(plan, out, period, results, chain, plans)
                final = {m.period: trueup.month_is_final(out, m.period) for m in paid[1:]}  # later months
                final[period] = not cutoff.provisional
                adjusted = trueup.true_up(
                    out, run_id, plan.restatement_lookback_months, paid, final, today, plan.remedies.currency
                )
                for month in paid:
                    month_metadata = (
                        metadata | {"carrier_sla.period": month.period} | _plan_metadata(plans[month.period])
                    )
                    statement_files += _stage_remedies(staging, writer, month, adjusted[month.period], month_metadata)
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
            outputs = worker_files + writer.wait() + statement_files
        log.event(
            "write",
            f"{len(outputs)} files ({timings['write']:.1f} s waiting for writers)",
            files=len(outputs),
            rows=sum(rows for _, rows, _ in outputs),
            seconds=round(timings["write"], 3),
        )
        written = worker_digests | writer.digests | {path: store.file_digest(path) for _, _, path in statement_files}
        manifest["outputs"] = [
            {
                "table": name,
                "path": str(_published_path(out, path, staging)),
                "file": path.relative_to(staging.root).as_posix(),  # where it lies in every view that holds it
                "rows": rows,
                "bytes": written[path][1],
                "sha256": written[path][0],
            }
            for name, rows, path in outputs
        ]
        counted = results["status"].value_counts() if len(results) else pd.Series(dtype="int64")
        manifest["verdicts"] = {str(k): int(v) for k, v in sorted(counted.items())}
        if chain is not None:
            manifest["remedies"] = _remedies_summary(plan, chain, paid, plans, adjusted)
        manifest["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
        store.write_manifest(out, run_id, manifest | {"status": "publishing"})
        staging.publish()
    except InputDataError:
        raise  # recorded above
    except PlanError as exc:  # found in the records: holidays of a year the plan does not list
        _finish(manifest, out, run_id, "failed", 2, str(exc))
        raise
    except Exception as exc:  # the manifest records every failure; the caller maps it to an exit code
        # free what the run wrote first: on a full disk that is what lets the manifest say `failed`
        writer.close()
        staging.discard()
        shutil.rmtree(out / ".staging" / run_id, ignore_errors=True)
        error = _store_error(exc, out)
        try:
            _finish(manifest, out, run_id, "failed", 5, str(error) if error else f"{type(exc).__name__}: {exc}")
        except OSError as again:
            if error is None:
                raise
            raise StoreError(f"{error}; the run's manifest could not be marked failed either ({again})") from exc
        if error is not None and error is not exc:
            raise error from exc
        raise
    finally:
        writer.close()
        staging.discard()
        if digests is not None:
            digests.close()
    try:
        manifest_path = _finish(manifest, out, run_id, "completed", 0, None)
    except OSError as exc:  # published: the next run's recovery marks the manifest completed
        raise StoreError(
            f"the run published its outputs, but its manifest could not be marked completed "
            f"({store.describe_os_error(exc)}); the next run marks it"
        ) from exc
    return RunResult(run_id, period, results, manifest, manifest_path, timings)


def _replaced(plan: Plan, period: str, out: Path) -> frozenset[tuple[str, str]]:
    """(table, period) folders this run writes anew, so damage there does not stop it: the period's
    tables, and with remedies the remedy tables of the period and of every later published month."""
    replaced = {(table, period) for table in store.TABLES}
    if plan.remedies is not None:
        try:
            provenance = store.current_provenance(out)
        except StoreError:  # require_intact names it
            provenance = {}
        later = {key.split("=", 1)[-1] for by in provenance.values() for key in by}
        replaced |= {(t, p) for t in store.REMEDY_TABLES for p in later | {period} if p >= period}
    return frozenset(replaced)


STORE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def _store_error(exc: BaseException, out: Path) -> StoreError | None:
    """A failure of the store's disk (full, read-only, not allowed) as one readable StoreError."""
    if isinstance(exc, StoreError):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in STORE_ERRNOS:
        return None
    where = Path(str(exc.filename)) if exc.filename else None
    if (
        exc.errno in (errno.EACCES, errno.EPERM)
        and where is not None
        and not where.resolve().is_relative_to(Path(out).resolve())
    ):
        return None  # not the store's: an input file, say
    return StoreError(
        f"cannot write to the store {out}: {store.describe_os_error(exc)}; the run was marked failed and "
        "nothing was published"
    )


def without_records(plan: Plan, period: str, evaluated: Counter[str]) -> list[dict[str, Any]]:
    """The measures that evaluated no record: their type had none in their data month (for a measure
    in arrears, the month before the period: the first month of a data set). Their cells are absent
    from the results; the manifest and the summary name them instead of letting them vanish."""
    from carrier_sla.engine.evaluate import data_period

    return [
        {
            "measure_id": m.id,
            "record_type": m.records,
            "data_period": data_period(period, m),
            "arrears_months": m.arrears_months,
        }
        for m in plan.measures
        if evaluated[m.id] == 0
    ]


def describe_without_records(gap: dict[str, Any]) -> str:
    """One line for a measure without records: which, what type, which month."""
    arrears = f", reported {gap['arrears_months']} month(s) in arrears" if gap["arrears_months"] else ""
    return (
        f"{gap['measure_id']}: no {gap['record_type']} in its data month {gap['data_period']}{arrears}; "
        "no result for it"
    )


def _plan_metadata(plan: Plan) -> dict[str, str]:
    """The Parquet metadata naming the plan a month's remedies were priced under."""
    return {
        "carrier_sla.plan_id": plan.id,
        "carrier_sla.plan_version": plan.version,
        "carrier_sla.plan_sha256": plan.sha256,
    }


def _stage_remedies(
    staging: store.Staging,
    writer: store.Writer,
    month: remedies.PeriodRemedies,
    adjusted: pd.DataFrame,
    metadata: dict[str, str],
) -> list[tuple[str, int, Path]]:
    """Ledger, escalation state, restatement adjustments and one CSV statement per payee of a month,
    into the staging area."""
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
    writer.submit(
        trueup.TABLE, staging.path(trueup.TABLE, month.period, "part-0.parquet"), trueup.table(adjusted), metadata
    )
    folder = staging.path("statements", month.period)
    folder.mkdir(parents=True, exist_ok=True)  # a month without payments still publishes its (empty) folder
    written = []
    sheets = trueup.statements(month.ledger, adjusted)
    for (payee, sheet), safe in zip(sheets.items(), csv_safe.frames(list(sheets.values())), strict=True):
        path = folder / remedies.statement_filename(payee)
        safe.to_csv(path, index=False)  # a CLEC opens it in a spreadsheet
        written.append((f"statements/{payee}", len(sheet) - 1, path))  # rows: its lines, not the total
    return written


def _remedies_summary(
    plan: Plan,
    chain: remedy_chain.Chain,
    paid: list[remedies.PeriodRemedies],
    plans: dict[str, Plan],
    adjusted: dict[str, pd.DataFrame],
) -> dict[str, Any]:
    """Per month: totals per payee (text, to the cent), the plan version it was priced under, the
    restatement's adjustments (null when the month was not published final before), and where
    escalation started."""
    assert plan.remedies is not None  # a chain exists only for plans with remedies
    summary: dict[str, Any] = {"currency": plan.remedies.currency, "escalation_from": chain.previous, "periods": {}}
    for i, month in enumerate(paid):
        totals = month.totals_by_payee()
        priced = plans[month.period]
        summary["periods"][month.period] = {
            "recomputed_after_restatement": i > 0,
            "plan": {"id": priced.id, "version": priced.version, "sha256": priced.sha256},
            "lines": len(month.ledger),
            "total": str(sum(totals.values(), Decimal("0.00"))),
            "totals_by_payee": {payee: str(amount) for payee, amount in totals.items()},
            "restatement": trueup.summary(adjusted[month.period]),
        }
    if chain.later and plan.statistics.alpha_after_miss is not None:
        summary["warning"] = (
            f"the verdicts of {', '.join(chain.later)} used the misses of the month before (alpha_after_miss); "
            "their remedies were recomputed from their published verdicts: run them again to restate the verdicts"
        )
    return summary


def _published_path(out: Path, staged: Path, staging: store.Staging) -> Path:
    return out / staged.relative_to(staging.root)


def _inputs(loaded: Loaded, digests: ingest.Digests | None) -> list[dict[str, Any]]:
    by_path = {str(f.path): f for f in loaded.files}
    return [
        {
            "record_type": c.record_type,
            "path": c.path,
            "absolute_path": os.path.abspath(c.path),  # explain re-reads rows from any working directory
            "sha256": (digests.sha256(by_path[c.path]) if digests else by_path[c.path].sha256()),
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
