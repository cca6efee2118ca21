"""Retracting a month: a new publication of the store without it (`carrier-sla retract`).

A month published by mistake (an export that was empty or of the wrong month) cannot simply be
run over when its data are not there yet, and it blocks the months after it (remedies escalate
month by month). Retracting it publishes a new view holding every other (table, month) of the
current view, as they are (hard links), and none of the month's tables: results, records,
rejects, and with remedies its ledger, escalation state, adjustments and statements. Like a run it:

- holds the store's single-writer lock (StoreBusy when taken) and recovers killed runs first;
- refuses to build on a damaged current view (carrier_sla.store.verify.require_intact);
- builds the new view under runs/RUN_ID/view and publishes it by the one pointer swap
  (carrier_sla.store.layout.Staging), so a retract that fails part-way leaves the view as it was;
- records itself in runs/RUN_ID/manifest.json, of kind "retract", with the months it removed and
  the runs that had published them: `carrier-sla history` lists it, and every earlier view,
  the retracted month's included, stays readable under runs/ (the month is kept in history).

A later published month depends on a month when it was computed from it:
- its escalation state (remedies) continued the month's (both hold escalation: remedy_chain
  keeps them contiguous), or
- its plan (the version it was judged under) has statistics.alpha_after_miss, so its verdicts
  used the month's misses.
Dependence is followed month by month (the month after a dependent month depends on it in turn).
A retract is refused (UsageError, exit 2) while a later month depends on the month, naming them,
unless `cascade`, which retracts them too. After a retract the month (and the ones cascaded) can
be run again; a re-run of a month that was published final adjusts against that last final
publication (carrier_sla.engine.trueup reads the history), as its payment stands.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carrier_sla import __version__
from carrier_sla.errors import StoreError, UsageError
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.periods import check_period
from carrier_sla.store import layout, verify

KIND = "retract"


@dataclass(frozen=True)
class Retraction:
    """What a retract did: its run id, the months removed (in order) and its manifest's path."""

    run_id: str
    periods: tuple[str, ...]
    manifest: dict[str, Any]
    manifest_path: Path


def _published_months(provenance: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """{month: the tables the view holds of it}."""
    months: dict[str, set[str]] = {}
    for table, by_period in provenance.items():
        for key in by_period:
            months.setdefault(key.split("=", 1)[-1], set()).add(table)
    return months


def dependents(store: Path, period: str) -> list[str]:
    """The published months after `period` that depend on it, directly or through each other, in order."""
    from carrier_sla.store.view import recorded_plan

    months = _published_months(layout.current_provenance(store))
    chain = {period}
    found = []
    for month in sorted(m for m in months if m > period):
        before = calmod.period_text(calmod.period_index(month) - 1)
        if before not in chain:
            continue  # a gap: nothing after it was computed from `period`
        escalates = "escalation" in months[month] and "escalation" in months.get(before, set())
        follows_misses = False
        if not escalates and "results" in months[month] and "results" in months.get(before, set()):
            follows_misses = recorded_plan(store, month).statistics.alpha_after_miss is not None
        if escalates or follows_misses:
            chain.add(month)
            found.append(month)
    return found


def retract(store: Path, period: str, *, cascade: bool = False, run_id: str | None = None) -> Retraction:
    """Publish the store's current view without `period` (and, with `cascade`, without the later
    months that depend on it); UsageError when the month is not published, or a later month depends
    on it and not `cascade`. Returns what was retracted."""
    check_period(period)
    store = Path(store)
    if not (store / layout.CURRENT).is_symlink():
        raise UsageError(f"{store}: no published store (nothing to retract)")
    started = datetime.now(UTC)
    run_id = run_id or layout.new_run_id(started)
    with layout.StoreLock(store, run_id) as lock:
        verify.require_intact(store)
        provenance = layout.current_provenance(store)
        months = _published_months(provenance)
        if period not in months:
            published = ", ".join(sorted(months)) or "none"
            raise UsageError(f"period {period} is not published in {store} (published: {published})")
        later = dependents(store, period)
        if later and not cascade:
            verb = "depends" if len(later) == 1 else "depend"
            raise UsageError(
                f"cannot retract {period}: {', '.join(later)} {verb} on it (their remedies escalate from it, or "
                f"their verdicts used its misses); retract them too with --cascade, or run {period} again instead"
            )
        removed = (period, *later)
        producers = {
            month: sorted({by[f"period={month}"] for by in provenance.values() if f"period={month}" in by})
            for month in removed
        }
        manifest: dict[str, Any] = {
            "run_id": run_id,
            "kind": KIND,
            "started_at": started.isoformat(),
            "finished_at": None,
            "package_version": __version__,
            "output_schema_version": layout.OUTPUT_SCHEMA_VERSION,
            "period": period,
            "retracted": list(removed),
            "cascade": cascade,
            "retracted_runs": producers,  # month: the runs whose tables of it the view held
            "previous_view": layout.view_root(store).parent.name,
            "outputs": [],
            "warnings": list(lock.warnings),
            "status": "running",
            "exit_code": None,
        }
        layout.write_manifest(store, run_id, manifest)
        staging = layout.Staging(store, run_id)
        try:
            layout.write_manifest(store, run_id, manifest | {"status": "publishing"})
            staging.publish(drop_periods=frozenset(removed))
        except Exception as exc:
            staging.discard()
            manifest.update(status="failed", exit_code=5, error=f"{type(exc).__name__}: {exc}")
            manifest["finished_at"] = datetime.now(UTC).isoformat()
            with contextlib.suppress(OSError):  # the error below matters more than the manifest
                layout.write_manifest(store, run_id, manifest)
            if isinstance(exc, OSError):
                why = layout.describe_os_error(exc)
                raise StoreError(f"cannot retract {period}: {why}; the view is as it was") from exc
            raise
        manifest.update(status="completed", exit_code=0, finished_at=datetime.now(UTC).isoformat())
        try:
            path = layout.write_manifest(store, run_id, manifest)
        except OSError as exc:  # published: the next run's recovery marks the manifest completed
            raise StoreError(
                f"{period} was retracted, but the manifest could not be marked completed "
                f"({layout.describe_os_error(exc)}); the next run marks it"
            ) from exc
    return Retraction(run_id, removed, manifest, path)
