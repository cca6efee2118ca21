"""Partitioned runs: input larger than one partition is spread over partition files on disk
first, so that a run holds one partition's records in memory at a time.

Pass 1 reads every input file in batches (Parquet row groups, CSV blocks) and appends each row
to the partition of its match key: the fields common to every related-record measure's
match_on (carrier_id and circuit_id in the example plans; circuit_id for a plan where one
measure matches on circuit_id alone), by a hash of their exact texts. Every pair of records
a cross-record measure can relate (an order and a later trouble, a trouble and a repeat)
agrees on all of its measure's match fields, so on the common ones: it lies in one
partition. Rows without a key (a null in a key field relates to nothing), and every row of a
plan without related-record measures, go by their row number. A plan whose related-record
measures have no match field in common cannot keep every pair together: its input is read
whole. Each row carries its read position (its file's index and its row number there).

Duplicate ids are judged on the whole input, in read order, as in a run without partitions:
pass 1 also writes each row's id, its hash and its read position into id buckets by that hash;
a bucket read in read order gives every position that repeats an id read earlier
(keys.duplicate_mask, which needs the hashes).

Lines in service (rate bases, one row per carrier, state, product and month) are not spread:
they are read whole.

Partition files are Arrow IPC streams (uncompressed, memory-mapped when read back; a stream,
as code columns come as dictionaries that change from batch to batch) in a
folder of the store's .staging area, removed at the end of the run, and by the next run's
recovery when a run is killed.
"""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carrier_sla.errors import InputDataError
from carrier_sla.inputs import ingest
from carrier_sla.inputs.contract import record_ids
from carrier_sla.inputs.keys import duplicate_mask, hash64, hash64_rows
from carrier_sla.inputs.parse import null_mask
from carrier_sla.plan.fields import column_type, record_schema
from carrier_sla.plan.load import Plan

POSITION = "__carrier_sla_position"  # read order within a record type: file index * 2**40 + 1-based row
WHOLE = ("lines",)  # record types read whole in every run
# Rows of a partition by default. Each partition costs a fixed share of work (files spread, read
# back, evaluated and written per partition and measure): at 20M records in one process 250,000
# rows took 24.7 s, 500,000 21.5 s and 1,000,000 19.6 s; peak memory 591, 711 and 965 MiB, with
# 1M records 466, 558 and 614 MiB. 500,000 keeps the nightly target of a 20M run's peak at most
# 1.3x a 1M run's (1.27x; 1,000,000 gives 1.6x).
DEFAULT_PARTITION_ROWS = 500_000
MAX_PARTITIONS = 1024  # beyond, partitions grow instead (a file per input file and partition)
CSV_BYTES_PER_ROW = 120  # a CSV file's rows, estimated from its size before reading it
CSV_BLOCK = 32 << 20
PARQUET_BATCH = 100_000  # rows read at a time (a row group is read in slices of this many)
_FILE_SHIFT = 40
WORKERS = 2


def _match_ons(plan: Plan) -> list[tuple[str, ...]]:
    return [m.value.match_on for m in plan.measures if m.value.kind == "related_record" and m.value.match_on]


def match_fields(plan: Plan) -> list[str]:
    """The fields the plan's related-record measures match on (any of them)."""
    return sorted({name for fields in _match_ons(plan) for name in fields})


def key_fields(plan: Plan) -> list[str]:
    """The fields rows are spread by: those every related-record measure matches on (empty
    when there is no related-record measure, or no field common to all of them)."""
    ons = [set(fields) for fields in _match_ons(plan)]
    return sorted(set.intersection(*ons)) if ons else []


def reads_whole(plan: Plan) -> bool:
    """Whether no spread keeps every related pair in one partition: related-record measures
    without a match field common to all."""
    return bool(_match_ons(plan)) and not key_fields(plan)


def estimated_rows(files: dict[str, list[ingest.InputFile]]) -> int:
    """Rows of the files that would be spread (Parquet: exact, from metadata; CSV: by size)."""
    total = 0
    for rtype, sources in files.items():
        if rtype in WHOLE:
            continue
        for source in sources:
            if source.path.suffix == ".csv":
                total += source.path.stat().st_size // CSV_BYTES_PER_ROW
            else:
                try:
                    total += pq.ParquetFile(source.path).metadata.num_rows
                except (pa.ArrowInvalid, OSError) as exc:
                    raise InputDataError(f"{source.path}: cannot be read: {exc}", file=str(source.path)) from exc
    return total


def partition_count(plan: Plan, files: dict[str, list[ingest.InputFile]], partition_rows: int) -> int:
    """How many partitions a run of these files takes (at most MAX_PARTITIONS): 1 (no spill) when
    they fit in one, or when the plan's related-record measures have no match field in common
    (no spread could keep all their pairs in one partition)."""
    if partition_rows <= 0 or reads_whole(plan):
        return 1
    return min(max(1, math.ceil(estimated_rows(files) / partition_rows)), MAX_PARTITIONS)


def batches(source: ingest.InputFile) -> Iterator[pa.Table]:
    """The file's rows in batches, with the columns of ingest.read_file (CSV: the contract's
    columns as text; Hive partition values appended). A file without a required column raises
    InputDataError before any row is read."""
    try:
        if source.path.suffix == ".csv":
            header = ingest.read_columns_only(source)
            known = set(ingest.known_columns(source.record_type))
            ingest.check_column_names(source, header)
            reader = pacsv.open_csv(
                source.path,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in known},
                    include_columns=[c for c in header if c in known],
                    strings_can_be_null=True,
                    null_values=[""],
                    quoted_strings_can_be_null=True,
                ),
            )
            empty = pa.table({c: pa.array([], pa.string()) for c in header if c in known})
            yield _with_partition(source, empty)
            for batch in reader:
                yield _with_partition(source, pa.Table.from_batches([batch]))
        else:
            schema = pq.read_schema(source.path)
            ingest.check_schema(source, schema)
            # code columns (states, products, carriers...) straight from the Parquet dictionary
            # pages: no strings decoded, and reordering rows moves int32 indices
            codes = [
                f.name for f in schema if pa.types.is_string(f.type) and f.name in code_columns(source.record_type)
            ]
            # no pre-buffering: for a read of every row group it would hold the whole
            # compressed file in memory (110 MB for a 2.5M-row file), two files at a time
            parquet = pq.ParquetFile(source.path, read_dictionary=codes, pre_buffer=False)
            yield _with_partition(source, parquet.schema_arrow.empty_table())
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, use_threads=False):
                yield _with_partition(source, pa.Table.from_batches([batch]))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputDataError(f"{source.path}: cannot be read: {exc}", file=str(source.path)) from exc


def code_columns(record_type: str) -> set[str]:
    """The contract's code columns of a record type (checked against a vocabulary or a pattern)."""
    return {name for name, prop in record_schema(record_type)["properties"].items() if column_type(prop) == "code"}


def _with_partition(source: ingest.InputFile, table: pa.Table) -> pa.Table:
    for key, value in source.partition:
        if key not in table.column_names:
            table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return ingest.as_text(source, table)


@dataclass
class Spilled:
    """The partition files of a run: for each spread record type, each input file and each
    partition, one IPC file of that file's rows of the partition; and the read positions of
    the rows that repeat an id read earlier."""

    folder: Path
    parts: int
    files: dict[str, list[ingest.InputFile]]
    repeats: dict[str, np.ndarray] = field(default_factory=dict)  # sorted positions

    def path(self, record_type: str, file_index: int, part: int) -> Path:
        return self.folder / f"{record_type}-{file_index}-{part}.arrow"

    def id_path(self, record_type: str, file_index: int, bucket: int) -> Path:
        return self.folder / f"{record_type}-{file_index}-ids-{bucket}.arrow"

    def read(self, record_type: str, file_index: int, part: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """(rows as read, their row numbers, which repeat an id read earlier) of one file's
        partition (left in place: remove_part removes a partition's files once it is done with,
        so that a task retried after its worker died can read them again)."""
        table = _read_ipc(self.path(record_type, file_index, part))
        position = np.asarray(table.column(POSITION).to_numpy(), dtype=np.int64)
        rows = position & ((1 << _FILE_SHIFT) - 1)
        repeats = self.repeats.get(record_type, np.zeros(0, np.int64))
        at = np.minimum(np.searchsorted(repeats, position), max(len(repeats) - 1, 0))
        repeat = (repeats[at] == position) if len(repeats) else np.zeros(len(position), dtype=bool)
        return table.drop_columns([POSITION]), rows, repeat

    def remove_part(self, part: int) -> None:
        """Remove a partition's files (a memory map of them stays valid): the folder shrinks as
        the run goes, instead of being deleted in one go at its end."""
        for rtype, sources in self.files.items():
            for index in range(len(sources)):
                self.path(rtype, index, part).unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


Mapper = Callable[[Callable[[Any], Any], list[Any]], list[Any]]


def thread_map(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """fn over items on WORKERS threads (Arrow and numpy release the GIL), results in order."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(fn, items))


def spill(
    plan: Plan, files: dict[str, list[ingest.InputFile]], parts: int, folder: Path, mapper: Mapper = thread_map
) -> Spilled:
    """Pass 1: spread the rows of every record type but WHOLE over `parts` partition files.
    `mapper(fn, items)` runs the jobs (an input file each, then an id bucket each): on threads of
    this process, or as tasks on Dask workers (carrier_sla.engine.cluster)."""
    folder.mkdir(parents=True, exist_ok=True)
    spread = {t: f for t, f in files.items() if t not in WHOLE}
    out = Spilled(folder, parts, spread)
    key = tuple(key_fields(plan))
    jobs = [(t, i, s) for t, sources in spread.items() for i, s in enumerate(sources)]
    try:
        mapper(functools.partial(_spill_job, out, key), jobs)
        _find_repeats(out, mapper)
    except BaseException:
        out.remove()
        raise
    return out


def _find_repeats(out: Spilled, mapper: Mapper) -> None:
    """The read positions of the rows whose id was read before, bucket by bucket."""
    for rtype in out.files:
        found = mapper(functools.partial(_bucket_repeats, out), [(rtype, b) for b in range(out.parts)])
        out.repeats[rtype] = np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)


def _bucket_repeats(out: Spilled, job: tuple[str, int]) -> np.ndarray:
    rtype, bucket = job
    paths = [out.id_path(rtype, i, bucket) for i in range(len(out.files[rtype]))]
    ids = pa.concat_tables([_read_ipc(p) for p in paths])  # read order: files in order, rows in order
    position = np.asarray(ids.column("position").to_numpy(), dtype=np.int64)
    hashes = np.asarray(ids.column("hash").to_numpy(), dtype=np.uint64)
    repeats = position[duplicate_mask(ids.column("id").combine_chunks(), hashes)]
    for path in paths:
        path.unlink()
    return repeats


def _spill_job(out: Spilled, key: tuple[str, ...], job: tuple[str, int, ingest.InputFile]) -> None:
    _spill_file(out, key, *job)


def _read_ipc(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def _key_hash(table: pa.Table, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(hash of the key fields' exact texts, whether none of them is null) of each row; None
    when the table lacks a key field (its rows go by row number)."""
    if not key or any(name not in table.column_names for name in key):
        return None
    columns = [table.column(name).combine_chunks() for name in key]
    has_key = np.logical_and.reduce([~null_mask(c) for c in columns])
    return hash64_rows(columns), has_key


def _spill_file(out: Spilled, key: tuple[str, ...], rtype: str, index: int, source: ingest.InputFile) -> None:
    writers: list[pa.ipc.RecordBatchStreamWriter] = []
    id_writers: list[pa.ipc.RecordBatchStreamWriter] = []
    id_schema = pa.schema([("id", pa.string()), ("hash", pa.uint64()), ("position", pa.int64())])
    parts = out.parts
    done = 0
    try:
        for table in batches(source):
            n = table.num_rows
            row = np.arange(done + 1, done + n + 1, dtype=np.int64)
            position = (np.int64(index) << _FILE_SHIFT) + row
            table = table.append_column(POSITION, pa.array(position))
            if not writers:  # the first (empty) batch: one writer per partition and id bucket
                writers = [pa.ipc.new_stream(str(out.path(rtype, index, k)), table.schema) for k in range(parts)]
                id_writers = [pa.ipc.new_stream(str(out.id_path(rtype, index, k)), id_schema) for k in range(parts)]
            if n == 0:
                continue
            done += n
            part = (row % parts).astype(np.int64)
            keyed = _key_hash(table, key)
            if keyed is not None:
                hashed, has_key = keyed
                part = np.where(has_key, (hashed % np.uint64(parts)).astype(np.int64), part)
            _scatter(table, part, writers)
            ids = record_ids(rtype, table)
            hashed_ids = hash64(ids)
            bucket = (hashed_ids % np.uint64(parts)).astype(np.int64)
            _scatter(pa.table([ids, pa.array(hashed_ids), pa.array(position)], schema=id_schema), bucket, id_writers)
    finally:
        for w in writers + id_writers:
            w.close()


def _scatter(table: pa.Table, part: np.ndarray, writers: list[pa.ipc.RecordBatchStreamWriter]) -> None:
    """Append each row of `table` to the writer of its partition, keeping row order."""
    small = part.astype(np.uint8 if len(writers) <= 256 else np.uint16)  # a radix sort (MAX_PARTITIONS)
    order = np.argsort(small, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=len(writers)))])
    ordered = table.take(pa.array(order))
    for k, writer in enumerate(writers):
        if bounds[k + 1] > bounds[k]:
            writer.write_table(ordered.slice(bounds[k], bounds[k + 1] - bounds[k]))
