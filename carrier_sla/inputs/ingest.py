"""Find and read the input files of each record type (CSV or Parquet, files or folders).

Input is a directory holding, per record type, `TYPE.csv`, `TYPE.parquet`, or a folder
`TYPE/` of Parquet/CSV files (Hive-partitioned folders allowed: `key=value` path
segments become columns). CSV columns are read as text and typed by carrier_sla.inputs.contract,
so a malformed value becomes a rejected row, never a failed read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carrier_sla.errors import InputDataError
from carrier_sla.plan.fields import record_schema

SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class InputFile:
    record_type: str
    path: Path
    partition: tuple[tuple[str, str], ...] = ()  # Hive key=value segments of the path

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        return digest.hexdigest()


class Digests:
    """The sha256 of input files (for the manifest), computed on one background thread at the
    lowest CPU priority while the run reads and evaluates them, so that hashing hundreds of
    MB takes no time at the end of a run."""

    def __init__(self, files: list[InputFile]):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="input-digests", initializer=_lowest_priority)
        self._futures = {str(f.path): self._pool.submit(f.sha256) for f in files}

    def sha256(self, source: InputFile) -> str:
        future = self._futures.get(str(source.path))
        return future.result() if future is not None else source.sha256()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lowest_priority() -> None:
    """Nice the calling thread to 19 (Linux threads have their own nice value); elsewhere, nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def discover(data_dir: Path, record_types: tuple[str, ...]) -> dict[str, list[InputFile]]:
    """The input files of each needed record type, in a stable (sorted) read order."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputDataError(f"input directory {data_dir} does not exist", file=str(data_dir))
    found: dict[str, list[InputFile]] = {}
    for rtype in record_types:
        candidates = [data_dir / f"{rtype}{s}" for s in SUFFIXES if (data_dir / f"{rtype}{s}").is_file()]
        folder = data_dir / rtype
        if len(candidates) > 1 or (candidates and folder.is_dir()):
            raise InputDataError(
                f"{data_dir}: more than one source for {rtype} ({', '.join(c.name for c in candidates)}"
                f"{', ' + rtype + '/' if folder.is_dir() else ''}); keep one",
                file=str(data_dir / rtype),
            )
        if candidates:
            found[rtype] = [InputFile(rtype, candidates[0])]
        elif folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not files:
                raise InputDataError(f"{folder}: folder holds no .csv or .parquet file", file=str(folder))
            found[rtype] = [InputFile(rtype, f, _partition(folder, f)) for f in files]
        else:
            raise InputDataError(
                f"missing input for {rtype}: expected {rtype}.csv, {rtype}.parquet or a folder {rtype}/ in {data_dir}",
                file=str(data_dir / f"{rtype}.csv"),
            )
    return found


def _partition(root: Path, path: Path) -> tuple[tuple[str, str], ...]:
    parts = path.relative_to(root).parts[:-1]
    return tuple(tuple(p.split("=", 1)) for p in parts if "=" in p)  # type: ignore[misc]


def known_columns(record_type: str) -> list[str]:
    return list(record_schema(record_type)["properties"])


def read_file(source: InputFile) -> pa.Table:
    """Read one input file whole; CSV columns of the contract come back as text."""
    try:
        if source.path.suffix == ".csv":
            table = pacsv.read_csv(
                source.path,
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in known_columns(source.record_type)},
                    strings_can_be_null=True,
                    null_values=[""],
                    quoted_strings_can_be_null=True,
                ),
            )
        else:
            check_schema(source, pq.read_schema(source.path))  # a repeated column fails the read itself
            table = pq.read_table(source.path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputDataError(f"{source.path}: cannot be read: {exc}", file=str(source.path)) from exc
    for key, value in source.partition:
        if key not in table.column_names:
            table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return as_text(source, table)


def check_columns(source: InputFile, table: pa.Table) -> None:
    """Raise InputDataError naming the file and column when a required column is missing, a
    contract column appears twice, or holds no single value per row (see check_schema)."""
    check_schema(source, table.schema)


def check_column_names(source: InputFile, names: list[str]) -> None:
    """check_columns on a file's column names (Hive partition keys count as columns): every
    required column there, and no contract column twice (which of the two holds the value
    would be a guess)."""
    schema = record_schema(source.record_type)
    present = set(names) | {k for k, _ in source.partition}
    missing = [c for c in schema["required"] if c not in present]
    if missing:
        raise InputDataError(
            f"{source.path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} for {source.record_type}",
            file=str(source.path),
            column=missing[0],
        )
    repeated = [c for c in schema["properties"] if names.count(c) > 1]
    if repeated:
        raise InputDataError(
            f"{source.path}: column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)} "
            f"{'appear' if len(repeated) > 1 else 'appears'} more than once in the header; "
            "which copy holds the value is ambiguous: keep one",
            file=str(source.path),
            column=repeated[0],
        )


def check_schema(source: InputFile, schema: pa.Schema) -> None:
    """check_column_names, and every contract column of a type with one value per row that
    reads as text (a Parquet struct, list or map column cannot be a timestamp, code or number)."""
    check_column_names(source, schema.names)
    known = set(known_columns(source.record_type))
    for field in schema:
        if field.name in known and not _scalar(field.type):
            raise InputDataError(
                f"{source.path}: column {field.name} is of type {field.type}, not one value per row: the "
                "contract reads text, numbers, booleans, dates and timestamps",
                file=str(source.path),
                column=field.name,
            )


def _scalar(kind: pa.DataType) -> bool:
    """Whether a column of this type holds one value per row that reads as text."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_nested(kind):
        return False
    try:
        pa.array([], kind).cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True


def as_text(source: InputFile, table: pa.Table) -> pa.Table:
    """The table with its binary contract columns as UTF-8 text (some Parquet writers store text
    as bytes); InputDataError naming the file and column for bytes that are not UTF-8."""
    known = set(known_columns(source.record_type))
    for i, field in enumerate(table.schema):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
        if field.name in known and (binary or str(kind) == "binary_view"):
            try:
                column = table.column(i).cast(pa.string())
            except pa.ArrowInvalid as exc:
                raise InputDataError(
                    f"{source.path}: column {field.name} holds bytes that are not UTF-8 text",
                    file=str(source.path),
                    column=field.name,
                ) from exc
            table = table.set_column(i, pa.field(field.name, pa.string()), column)
    return table


def read_columns_only(source: InputFile) -> list[str]:
    """The column names of a file without reading its rows (for validate --data)."""
    if source.path.suffix == ".csv":
        with source.path.open("r", encoding="utf-8", errors="replace") as handle:
            header = handle.readline().rstrip("\r\n")
        names = [c.strip().strip('"') for c in header.split(",")] if header else []
    else:
        names = list(pq.read_schema(source.path).names)
    return names + [k for k, _ in source.partition if k not in names]
