"""Merging the checked files of one record type: duplicate ids across the files, the rejects
table (one row per rejected row, with its raw value and carrier), per-file counts, and the
accepted records.

Each file's raw table is let go once checked: only the texts of its rejected rows are kept
(BadRowTexts), and the accepted records are built from each file's kept rows column by column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla.inputs.contract import MESSAGES, REASONS, Flags, Reason, Records
from carrier_sla.inputs.keys import duplicate_mask
from carrier_sla.inputs.parse import recode
from carrier_sla.plan.fields import record_schema


@dataclass(frozen=True)
class BadRowTexts:
    """What a rejects table needs from an input table, taken before the table is let go: for each
    row that failed a check (rows: positions in the table), the raw text of its failing column and
    of its carrier_id."""

    rows: np.ndarray
    raw: np.ndarray
    carrier: np.ndarray


def bad_row_texts(record_type: str, table: pa.Table, flags: Flags) -> BadRowTexts:
    names = list(record_schema(record_type)["properties"])
    rows = np.flatnonzero(flags.reason >= 0)
    raw = np.full(len(rows), None, dtype=object)
    failing = flags.column[rows]
    for ci in np.unique(failing):
        name = names[ci] if ci >= 0 else None
        if name is None or name not in table.column_names:
            continue
        at = np.flatnonzero(failing == ci)
        raw[at] = _texts(table.column(name).take(pa.array(rows[at])))
    carrier = np.full(len(rows), None, dtype=object)
    if "carrier_id" in table.column_names and len(rows):
        carrier[:] = _texts(table.column("carrier_id").take(pa.array(rows)))
    return BadRowTexts(rows, raw, carrier)


def _texts(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Values as an object array of str (None for null)."""
    return np.array(values.cast(pa.string()).to_pylist(), dtype=object)


@dataclass
class FileCount:
    """Rows of one input file: read = accepted + rejected."""

    record_type: str
    path: str
    read: int
    accepted: int = 0
    rejected: int = 0


# check_table sets ids, file_index and row on every table it returns
def _ids(rec: Records) -> pa.Array:
    assert rec.ids is not None
    return rec.ids


def _file_index(rec: Records) -> np.ndarray:
    assert rec.file_index is not None
    return rec.file_index


def _row(rec: Records) -> np.ndarray:
    assert rec.row is not None
    return rec.row


def _concat(parts: list[Records], keeps: list[np.ndarray]) -> Records:
    """One Records of the rows `keeps[i]` (a boolean mask) of each part; open vocabularies get one
    merged category list. Built column by column, so only one column's pieces are ever copied twice."""
    first = parts[0]
    out = Records(first.record_type, sum(int(k.sum()) for k in keeps))
    pairs = list(zip(parts, keeps, strict=True))
    out.cols = {k: np.concatenate([p.cols[k][keep] for p, keep in pairs]) for k in first.cols}
    for k in first.codes:
        cats = (
            sorted(set().union(*(p.cats[k] for p in parts)))
            if len({tuple(p.cats[k]) for p in parts}) > 1
            else first.cats[k]
        )
        out.cats[k] = cats
        out.codes[k] = np.concatenate(
            [p.codes[k][keep] if p.cats[k] is cats else recode(p.codes[k][keep], p.cats[k], cats) for p, keep in pairs]
        )
    masks = [pa.array(keep) for keep in keeps]
    out.text = {
        k: pa.concat_arrays([p.text[k].filter(m) for p, m in zip(parts, masks, strict=True)]) for k in first.text
    }
    out.ids = pa.concat_arrays([_ids(p).filter(m) for p, m in zip(parts, masks, strict=True)])
    out.file_index = np.concatenate([_file_index(p)[keep] for p, keep in pairs])
    out.row = np.concatenate([_row(p)[keep] for p, keep in pairs])
    return out


def finalize(
    record_type: str,
    checked: list[tuple[Records, Flags, BadRowTexts]],
    paths: list[str],
    repeats: np.ndarray | None = None,
) -> tuple[Records, pa.Table, list[FileCount]]:
    """Merge the checked tables of a type: accepted records, rejects table, per-file counts.

    `repeats`: which rows (of the tables in order) repeat an id read earlier, when that was
    judged over more rows than these (a partitioned run); by default judged on these rows."""
    schema = record_schema(record_type)
    names = list(schema["properties"])
    parts = [c[0] for c in checked]
    ids = pa.concat_arrays([_ids(p) for p in parts])
    file_index = np.concatenate([_file_index(p) for p in parts])
    row = np.concatenate([_row(p) for p in parts])
    reason = np.concatenate([c[1].reason for c in checked])
    column = np.concatenate([c[1].column for c in checked])
    id_column = schema["x-record-id"] if isinstance(schema["x-record-id"], str) else None
    dup = (duplicate_mask(ids) if repeats is None else repeats) & (reason < 0)
    reason[dup] = REASONS.index(Reason.DUPLICATE_ID)
    column[dup] = names.index(id_column) if id_column else -1
    bad = reason >= 0
    bad_idx = np.flatnonzero(bad)

    # raw values and carriers of the rejected rows: row-check failures from their tables' texts,
    # duplicates their id and their (valid) carrier
    offsets = np.cumsum([0] + [c[0].n for c in checked])
    raw = np.full(len(bad_idx), None, dtype=object)
    carrier = np.full(len(bad_idx), None, dtype=object)
    for (_, _, row_texts), start in zip(checked, offsets[:-1], strict=True):
        at = np.searchsorted(bad_idx, start + row_texts.rows)
        raw[at], carrier[at] = row_texts.raw, row_texts.carrier
    dup_rows = np.flatnonzero(dup)
    raw[np.searchsorted(bad_idx, dup_rows)] = _texts(ids.take(pa.array(dup_rows)))
    for part, start in zip(parts, offsets[:-1], strict=True):
        local = np.flatnonzero(dup[start : start + part.n])
        if "carrier_id" in part.codes and len(local):
            labels = np.array([*part.cats["carrier_id"], None], dtype=object)
            carrier[np.searchsorted(bad_idx, start + local)] = labels[part.codes["carrier_id"][local]]
    # the row's own carrier, so that a rejected row can be attributed (per-CLEC packages); null when
    # the carrier id itself is what was wrong, or is not a well-formed id
    if "carrier_id" in names:
        carrier[column[bad_idx] == names.index("carrier_id")] = None
    carrier_text = pa.array(carrier, pa.string())
    pattern = schema["properties"]["carrier_id"]["pattern"] if "carrier_id" in names else "^$"
    carrier_text = pc.if_else(pc.match_substring_regex(carrier_text, pattern), carrier_text, None)
    reason_text = np.array([r.value for r in REASONS], dtype=object)[reason[bad_idx]]
    column_text = np.array([*names, "record_id"], dtype=object)[column[bad_idx]]
    pair = reason[bad_idx].astype(np.int64) * 10_000 + column[bad_idx] + 1
    pairs, inverse = np.unique(pair, return_inverse=True)
    texts = [MESSAGES[REASONS[p // 10_000]].format(column=([*names, "record_id"])[p % 10_000 - 1]) for p in pairs]
    message = np.array(texts, dtype=object)[inverse] if len(pairs) else np.array([], dtype=object)
    rejects = pa.table(
        {
            "record_type": pa.array([record_type] * len(bad_idx), pa.string()),
            "source_file": pa.array(np.array(paths, dtype=object)[file_index[bad_idx]], pa.string()),
            "input_row": pa.array(row[bad_idx], pa.int64()),
            "record_id": ids.take(pa.array(bad_idx)),
            "carrier_id": carrier_text,
            "input_field": pa.array(column_text, pa.string()),
            "raw_value": pa.array(raw, pa.string()),
            "reason": pa.array(reason_text, pa.string()),
            "message": pa.array(message, pa.string()),
        }
    )
    counts = []
    for i, path in enumerate(paths):
        in_file = file_index == i
        read = int(in_file.sum())
        rejected = int((in_file & bad).sum())
        counts.append(FileCount(record_type, path, read, read - rejected, rejected))
    keeps = [~bad[start : start + p.n] for p, start in zip(parts, offsets[:-1], strict=True)]
    return _concat(parts, keeps), rejects, counts
