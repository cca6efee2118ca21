"""Reading and checking every input file of a run: accepted records with their derived fields, rejects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from carrier_sla.engine import evaluate
from carrier_sla.errors import NoRecords, RejectRateExceeded
from carrier_sla.inputs import contract, ingest, merge
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.load import Plan
from carrier_sla.timings import Timings

WORKERS = 2  # threads reading and checking files


def needed_record_types(plan: Plan) -> tuple[str, ...]:
    types = {m.records for m in plan.measures} | {m.value.records for m in plan.measures if m.value.records}
    types |= {m.rate_base.records for m in plan.measures if m.rate_base}
    return tuple(t for t in ("orders", "troubles", "lines") if t in types)


@dataclass
class Loaded:
    records: dict[str, contract.Records]
    rejects: pa.Table
    counts: list[merge.FileCount]
    files: list[ingest.InputFile]
    not_yet_known: dict[str, int] = field(default_factory=dict)  # records received after the as-of date
    in_month: dict[str, int] = field(default_factory=dict)  # records_in_month, when counted


def load_inputs(
    plan: Plan,
    data_dir: Path,
    max_reject_rate: float,
    timings: Timings | None = None,
    as_of: dt.date | None = None,
) -> Loaded:
    """Read and check every input file; raise RejectRateExceeded (with the rejects) if too many are bad.

    With `as_of`, the records are taken as known at the end of that day (evaluate.known_at).
    """
    found = ingest.discover(Path(data_dir), needed_record_types(plan))
    loaded = load(plan, found, read_whole, timings, as_of)
    check_reject_rate(loaded, max_reject_rate)
    return loaded


Read = Callable[[str, int, ingest.InputFile], tuple[pa.Table, "np.ndarray | None", "np.ndarray | None"]]


def read_whole(rtype: str, index: int, source: ingest.InputFile) -> tuple[pa.Table, None, None]:
    """An input file whole (its rows are rows 1..n; duplicates are judged on the loaded files)."""
    table = ingest.read_file(source)
    ingest.check_columns(source, table)
    return table, None, None


def check_reject_rate(loaded: Loaded, max_reject_rate: float) -> None:
    """RejectRateExceeded (carrying `loaded`) for the first record type with too many rejected rows."""
    for rtype in dict.fromkeys(c.record_type for c in loaded.counts):
        read = sum(c.read for c in loaded.counts if c.record_type == rtype)
        rejected = sum(c.rejected for c in loaded.counts if c.record_type == rtype)
        if read and rejected / read > max_reject_rate:
            error = RejectRateExceeded(rtype, rejected, read, max_reject_rate)
            error.loaded = loaded  # type: ignore[attr-defined]
            raise error


def records_in_month(plan: Plan, period: str, records: dict[str, contract.Records]) -> dict[str, int]:
    """Per record type of `records` the plan's measures read, how many of its records a measure
    of the plan places in `period` (orders and troubles: by each measure's period_by in its data
    month; lines: the rows of a rate measure's data month, test carriers' left out)."""
    counts: dict[str, int] = {}
    for rtype, rec in records.items():
        measures = [m for m in plan.measures if m.records == rtype]
        bases = [m for m in plan.measures if m.rate_base is not None and m.rate_base.records == rtype]
        if measures:
            counts[rtype] = int(np.logical_or.reduce([evaluate.in_period(rec, m, period) for m in measures]).sum())
        elif bases:
            months = {evaluate.data_period(period, m) for m in bases}
            codes = [rec.cats["period"].index(month) for month in months if month in rec.cats["period"]]
            counts[rtype] = int((np.isin(rec.codes["period"], codes) & ~rec.cols["is_test"]).sum())
    return counts


def require_records(plan: Plan, period: str, loaded: Loaded, provisional: bool) -> None:
    """NoRecords for the first record type the plan reads that has no record in `period`, or none
    at all. A type whose records the plan's measures place in months (loaded.in_month counts
    them) needs a record of the month in a final run; in a month-to-date run (`provisional`),
    early in a month, it may have none yet, and only an input without any is refused, as for a
    type read only as related records (troubles of OP-5) or rate bases."""
    for rtype in needed_record_types(plan):
        read = sum(c.read for c in loaded.counts if c.record_type == rtype)
        accepted = sum(c.accepted for c in loaded.counts if c.record_type == rtype)
        known = accepted - loaded.not_yet_known.get(rtype, 0)
        by_month = rtype in loaded.in_month and not provisional
        if (loaded.in_month[rtype] if by_month else known) > 0:
            continue
        users = [
            m.id
            for m in plan.measures
            if rtype in (m.records, m.value.records, m.rate_base.records if m.rate_base else None)
        ]
        files = [c.path for c in loaded.counts if c.record_type == rtype]
        error = NoRecords(
            f"no {rtype} {'of ' + period if by_month else 'in the input'} ({', '.join(users)} read them): "
            f"{read:,} rows read from {', '.join(files) or 'no file'}, {accepted:,} accepted"
            + (f", none of them in {period}" if by_month and known else "")
            + "; if there truly are none, run again with --allow-empty",
            record_type=rtype,
            period=period,
            file=files[0] if files else None,
        )
        error.loaded = loaded  # type: ignore[attr-defined]
        raise error


def load(
    plan: Plan,
    found: dict[str, list[ingest.InputFile]],
    read: Read,
    timings: Timings | None = None,
    as_of: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Loaded:
    """Check the rows `read(record_type, file_index, file)` gives for every file of `found`:
    accepted records with derived fields (linked across types), rejects, counts per file.

    `read` returns (table, row numbers or None for 1..n, which rows repeat an id read earlier
    or None to judge that on these files). `progress(files done, files)` after each file."""
    timings = Timings() if timings is None else timings
    records: dict[str, contract.Records] = {}
    rejects: list[pa.Table] = []
    counts: list[merge.FileCount] = []
    all_files: list[ingest.InputFile] = []
    not_yet_known: dict[str, int] = {}

    def read_and_check(job: tuple[str, int, ingest.InputFile]) -> tuple[tuple, np.ndarray | None]:
        """One file's typed records and flags; of the raw table only the bad rows' texts are kept."""
        rtype, index, source = job
        table, rows, repeats = read(rtype, index, source)
        rec, flags = contract.check_table(rtype, table, plan, index, rows)
        return (rec, flags, merge.bad_row_texts(rtype, table, flags)), repeats

    # Files are read and checked two at a time (Arrow and numpy release the GIL for most of it), in
    # type order; a type is merged and derived as soon as its own files are in, while the workers go
    # on with the next type's files. read_and_check times the wait for a type's files.
    jobs = [(rtype, index, source) for rtype, files in found.items() for index, source in enumerate(files)]
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        results = pool.map(read_and_check, jobs)
        for rtype, files in found.items():
            done = []
            for _ in files:
                with timings.stage("read_and_check"):
                    done.append(next(results))
                if progress is not None:
                    progress(len(all_files) + len(done), len(jobs))
            checked = [d[0] for d in done]
            given = [d[1] for d in done]
            masks = [g for g in given if g is not None]
            repeats = np.concatenate(masks) if masks and len(masks) == len(given) else None
            del done, given
            paths = [str(f.path) for f in files]
            with timings.stage("finalize"):
                accepted, rej, file_counts = merge.finalize(rtype, checked, paths, repeats)
                del checked  # the per-file records, let go once merged
            with timings.stage("derive"):
                records[rtype] = evaluate.derive(plan, accepted)
                if as_of is not None:
                    known = evaluate.known_at(records[rtype], calmod.calendar_day(as_of))
                    not_yet_known[rtype] = records[rtype].n - known.n
                    records[rtype] = known
            rejects.append(rej)
            counts += file_counts
            all_files += files
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, files not yet started are not read
    with timings.stage("derive"):
        evaluate.link(plan, records)
    return Loaded(records, pa.concat_tables(rejects) if rejects else pa.table({}), counts, all_files, not_yet_known)
