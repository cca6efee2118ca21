"""The sink of a run's audit rows: each measure's records/ table of each batch written into the
run's staging folder, where the batch was evaluated (a Dask worker writes its own files: no
large table travels back to the run), and the record excusals it applied noted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from carrier_sla.inputs import excusals
from carrier_sla.store import layout as store


@dataclass(frozen=True)
class Written:
    """One records/ file: where, its rows and digest; the approved exclusions its rows applied."""

    name: str
    path: Path | None  # None: handed to the run's own writer threads, which record it
    rows: int
    digest: tuple[str, int] | None
    approved: frozenset[tuple[str, str, str]]


@dataclass
class AuditFiles:
    """sink(measure_id, table, part) for carrier_sla.engine.period: writes records/ tables of the
    period into the staging view `root`, with the run's Parquet metadata. With `writer` (the run's
    own writer threads, in-process runs only; not pickled) the write is queued there."""

    root: Path
    period: str
    metadata: dict[str, str]
    approved_active: bool
    writer: store.Writer | None = field(default=None, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "writer": None}

    def __call__(self, measure_id: str, table: pa.Table, part: int) -> Written:
        matches = excusals.RecordMatches(self.approved_active)
        matches.observe(measure_id, table)
        path = self.root / "records" / f"period={self.period}" / f"measure={measure_id}" / f"part-{part}.parquet"
        name = f"records/{measure_id}"
        if self.writer is not None:
            self.writer.submit(name, path, table, self.metadata)
            return Written(name, None, table.num_rows, None, frozenset(matches.found))
        rows = store.write_parquet(path, table, self.metadata)
        return Written(name, path, rows, store.file_digest(path), frozenset(matches.found))
