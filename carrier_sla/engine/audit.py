"""Shape the audit tables: record-level rows per measure, and the results table.

Record rows say, for every record of a measure's period, whether it was included, the
exclusion reason (a plan rule's code) and its value, with its source file and row, so a
verdict can be traced back to the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.engine.aggregate import dim_codes
from carrier_sla.engine.evaluate import Evaluated
from carrier_sla.inputs.contract import Records
from carrier_sla.plan.load import Measure, Plan


def split_products(plan: Plan, measure: Measure) -> dict[str, set[str]]:
    """Per dimension field, the products whose records are split by it (CLEC products
    the split applies to, and their retail analogs)."""
    out: dict[str, set[str]] = {}
    for d in measure.dimensions:
        clec = [p for p in plan.products if not p.is_retail and d.applies_to(p.code)]
        out[d.field] = {p.code for p in clec} | {p.retail_analog for p in clec if p.retail_analog}
    return out


def submeasure_label(measure: Measure, split: dict[str, set[str]], product: str, dims: dict[str, object]) -> str:
    """'all', or the dimension values that split the cell, e.g. 'dispatch=true'."""
    parts = []
    for d in measure.dimensions:
        if product in split[d.field]:
            value = dims.get(d.field)
            text = "null" if value is None or value != value else str(value).lower()
            parts.append(f"{d.field}={text}")
    return ";".join(parts) if parts else "all"


def _dictionary(codes: np.ndarray, cats: list) -> pa.Array:
    """A dictionary array of codes into `cats` (-1 = null); the codes are in range."""
    null = codes < 0
    if null.any():
        indices = _masked(np.where(null, 0, codes).astype(np.int32), null, pa.int32())
    else:  # no nulls (the usual case): the codes themselves, not copied when they are int32 already
        indices = pa.array(codes.astype(np.int32, copy=False), pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(cats if cats else [], pa.string()), safe=False)


def _masked(values: np.ndarray, null: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of `values` (fixed width, no copy), null where `null`: the validity bitmap
    packed directly (pa.array(..., mask=...) takes several times longer)."""
    if not null.any():
        return pa.array(values, arrow_type)
    values = np.ascontiguousarray(values)
    bitmap = np.packbits(~null, bitorder="little")
    buffers = [pa.py_buffer(bitmap), pa.py_buffer(values)]
    return pa.Array.from_buffers(arrow_type, len(values), buffers, null_count=int(null.sum()))


def record_rows(plan: Plan, ev: Evaluated, dim_fields: Mapping[str, pa.DataType], files: list[str]) -> pa.Table:
    """The records/ table of one measure for one period."""
    rec = ev.records
    measure = ev.measure
    n = rec.n
    dims = [d.field for d in measure.dimensions]
    # submeasure labels for each (product, dimension values) combination present
    arrays = [rec.codes["product"].astype(np.int64)]
    labels_of: list[list[object]] = [list(rec.cats["product"])]
    for d in dims:
        codes, cats = dim_codes(rec, d)
        arrays.append(codes)
        labels_of.append(cats)
    shape = tuple(len(x) for x in labels_of)
    flat = np.ravel_multi_index(arrays, shape) if n else np.zeros(0, dtype=np.int64)
    combos = np.flatnonzero(np.bincount(flat, minlength=int(np.prod(shape))))
    lookup = np.full(int(np.prod(shape)), -1, dtype=np.int64)
    lookup[combos] = np.arange(len(combos))
    inverse = lookup[flat]
    split = split_products(plan, measure)
    labels = []
    for combo in combos:
        idx = np.unravel_index(int(combo), shape)
        product = labels_of[0][idx[0]]
        values = {d: labels_of[i + 1][idx[i + 1]] for i, d in enumerate(dims)}
        labels.append(submeasure_label(measure, split, cast(str, product), values))  # product codes are str
    # one dictionary entry per label (combinations of unsplit products share "all"): a
    # dictionary with repeated entries is written to Parquet as plain text, row by row
    distinct = list(dict.fromkeys(labels))
    inverse = np.array([distinct.index(label) for label in labels], dtype=np.int64)[inverse]
    labels = distinct
    reason_codes = np.asarray(ev.reason, dtype=np.int64)
    columns = {
        "record_id": rec.ids,
        "record_type": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([rec.record_type])),
        "carrier_id": _dictionary(rec.codes["carrier_id"], rec.cats["carrier_id"]),
        "state": _dictionary(rec.codes["state"], rec.cats["state"]),
        "product": _dictionary(rec.codes["product"], rec.cats["product"]),
        "submeasure": _dictionary(inverse.astype(np.int64), labels),
    }
    for d, kind in dim_fields.items():
        if d in dims and d in rec.codes:
            columns[d] = _dictionary(rec.codes[d], rec.cats[d])
        elif d in dims:
            columns[d] = pa.array(rec.cols[d], kind)
        else:  # a field this measure does not split by
            columns[d] = pa.nulls(n, kind)
    columns["included"] = pa.array(reason_codes < 0)
    columns["exclusion_reason"] = _dictionary(reason_codes, ev.reasons)
    columns["value"] = _masked(ev.value, np.isnan(ev.value), pa.float64())
    assert rec.file_index is not None  # accepted records keep their source positions
    columns["source_file"] = _dictionary(rec.file_index.astype(np.int64), files)
    columns["source_row"] = pa.array(rec.row, pa.int64())
    return pa.table(columns)


def base_rows(lines: Records, dim_fields: Mapping[str, pa.DataType], files: list[str], field: str) -> pa.Table:
    """records/ rows of a rate measure's base (lines in service), each included with its count."""
    n = lines.n
    columns = {
        "record_id": lines.ids,
        "record_type": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["lines"])),
        "carrier_id": _dictionary(lines.codes["carrier_id"], lines.cats["carrier_id"]),
        "state": _dictionary(lines.codes["state"], lines.cats["state"]),
        "product": _dictionary(lines.codes["product"], lines.cats["product"]),
        "submeasure": _dictionary(np.zeros(n, np.int64), ["all"]),
    }
    for d, kind in dim_fields.items():
        columns[d] = pa.nulls(n, kind)
    columns["included"] = pa.array(np.ones(n, dtype=bool))
    columns["exclusion_reason"] = _dictionary(np.full(n, -1, np.int64), [])
    columns["value"] = pa.array(lines.cols[field].astype(np.float64))
    assert lines.file_index is not None  # accepted records keep their source positions
    columns["source_file"] = _dictionary(lines.file_index.astype(np.int64), files)
    columns["source_row"] = pa.array(lines.row, pa.int64())
    return pa.table(columns)


def unify_record_schema(table: pa.Table, dim_fields: Mapping[str, pa.DataType]) -> pa.Table:
    """One schema for every measure's records/ file: vocabulary.RECORDS with the plan's dimension
    columns, each typed as its input field."""
    schema = vocabulary.RECORDS.schema(dim_fields)
    return pa.table([table.column(f.name).cast(f.type) for f in schema], schema=schema)


def result_columns(dim_fields: Mapping[str, pa.DataType]) -> list[str]:
    return vocabulary.RESULTS.schema(dim_fields).names


def results_table(frame: pd.DataFrame, dim_fields: Mapping[str, pa.DataType]) -> pa.Table:
    """The results table in its fixed column order and types (vocabulary.RESULTS); `period` is
    not a column of the file: it is the Hive partition folder."""
    schema = vocabulary.RESULTS.schema(dim_fields)
    arrays = []
    for f in schema:
        values = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        kind = f.type
        if kind == pa.float64():
            arrays.append(pa.array(values.to_numpy(dtype=float), type=kind, from_pandas=True))
        elif pa.types.is_integer(kind):  # values as Python objects first: no Arrow scalar per row
            arrays.append(pa.array([None if _blank(v) else int(v) for v in values.tolist()], type=kind))
        elif kind == pa.bool_():
            arrays.append(pa.array([None if _blank(v) else bool(v) for v in values.tolist()], type=kind))
        else:
            try:  # None, pd.NA and NaN are nulls (from_pandas), as _blank says
                arrays.append(pa.array(values.to_numpy(dtype=object), type=kind, from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):  # value by value
                arrays.append(pa.array([None if _blank(v) else v for v in values.tolist()], type=kind))
    return pa.Table.from_arrays(arrays, schema=schema)


def _blank(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
