"""benchmarks.spill_bound's run without the spill reads every input row once, numbered as a run numbers it, so
that its time is the time of the same work (only its pairing across batches is wrong)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.parquet as pq

from benchmarks import spill_bound
from carrier_sla.inputs import ingest
from carrier_sla.plan.load import load_plan
from carrier_sla.synthetic.generate import generate
from carrier_sla.timings import Timings


def test_the_bound_reads_every_input_row_once_with_its_row_number(tmp_path):
    generate(tmp_path / "data", "2026-10", periods=2, scale=3_000, fmt="parquet", files_per_type=2)
    plan = load_plan("example-qc")
    found = ingest.discover(tmp_path / "data", ("orders", "troubles", "lines"))
    source = spill_bound.row_groups(found, 0, tmp_path / "unused")
    assert source.count > 1
    rows = {str(f.path): pq.ParquetFile(f.path).metadata.num_rows for t in ("orders", "troubles") for f in found[t]}
    read: Counter[str] = Counter()
    numbers: dict[str, list[np.ndarray]] = {path: [] for path in rows}
    for k in range(source.count):
        loaded = source.load(plan, k, Timings(), None)
        for count in loaded.counts:
            read[count.path] += count.read
        for rtype, records in loaded.records.items():
            [path] = [c.path for c in loaded.counts if c.record_type == rtype]
            numbers[path].append(records.row)
        rejects = loaded.rejects.to_pandas() if loaded.rejects.num_rows else None
        if rejects is not None:
            for path, group in rejects.groupby("source_file"):
                numbers[str(path)].append(group["input_row"].to_numpy())
    assert dict(read) == rows
    for path, n in rows.items():  # accepted and rejected rows together: 1..n, each once
        assert np.sort(np.concatenate(numbers[path])).tolist() == list(range(1, n + 1))
