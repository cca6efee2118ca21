"""The sink of a run's audit rows: each measure's records/ table of each batch written into the
run's staging folder, where the batch was evaluated (a Dask worker writes its own files: no
large table travels back to the run), and the record excusals it applied noted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla.inputs import excusals
from carrier_sla.store import layout as store


@dataclass(frozen=True)
class Written:
    """One records/ file: where, its rows and digest; the approved exclusions its rows applied."""

    measure_id: str
    name: str
    path: Path | None  # None: handed to the run's own writer threads, which record it
    rows: int
    digest: tuple[str, int] | None
    approved: frozenset[tuple[str, str, str]]
    own_rows: int  # rows that are records of the measure's own type (not the lines of its rate base)


@dataclass
class AuditFiles:
    """sink(measure_id, table, part) for carrier_sla.engine.period: writes records/ tables of the
    period into the staging view `root`, with the run's Parquet metadata. With `writer` (the run's
    own writer threads, in-process runs only; not pickled) the write is queued there."""

    root: Path
    period: str
    metadata: dict[str, str]
    approved_active: bool
    own_type: dict[str, str]  # measure id -> the record type it evaluates
    writer: store.Writer | None = field(default=None, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "writer": None}

    def __call__(self, measure_id: str, table: pa.Table, part: int) -> Written:
        matches = excusals.RecordMatches(self.approved_active)
        matches.observe(measure_id, table)
        path = self.root / "records" / f"period={self.period}" / f"measure_id={measure_id}" / f"part-{part}.parquet"
        name = f"records/{measure_id}"
        own = own_rows(table, self.own_type[measure_id])
        if self.writer is not None:
            self.writer.submit(name, path, table, self.metadata)
            return Written(measure_id, name, None, table.num_rows, None, frozenset(matches.found), own)
        rows = store.write_parquet(path, table, self.metadata)
        return Written(measure_id, name, path, rows, store.file_digest(path), frozenset(matches.found), own)


def own_rows(table: pa.Table, record_type: str) -> int:
    """Rows of a measure's records/ table that are records of its own type (not the lines of its rate base)."""
    if "record_type" not in table.column_names:
        return table.num_rows
    rows = 0
    for chunk in table.column("record_type").chunks:
        if pa.types.is_dictionary(chunk.type) and chunk.dictionary.to_pylist() == [record_type]:
            rows += len(chunk)  # the audit rows of one evaluation: one record type
        else:
            rows += int(pc.sum(pc.equal(chunk.cast(pa.string()), record_type)).as_py() or 0)
    return rows
