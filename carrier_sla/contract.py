"""The input record contract: vectorized row checks -> typed records + rejects.

Column names, types, codes and patterns come from schemas/records/*.json (the single
source of the contract); this module applies them column by column over Arrow arrays,
never row by row. Every row read is either accepted or rejected with one reason (the
first failing check, in schema column order; duplicates last).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla import calendar as calmod
from carrier_sla.calendar import NULL, NS_PER_DAY, NS_PER_S
from carrier_sla.fields import column_type, record_schema
from carrier_sla.keys import duplicate_mask
from carrier_sla.plan import Plan


class Reason(StrEnum):
    """Why an input row was rejected."""

    MISSING_VALUE = "missing_value"
    INVALID_FORMAT = "invalid_format"
    INVALID_CODE = "invalid_code"
    UNKNOWN_STATE = "unknown_state"
    UNKNOWN_PRODUCT = "unknown_product"
    PRODUCT_NOT_OFFERED = "product_not_offered"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    UNPARSEABLE_DATE = "unparseable_date"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    INVALID_BOOLEAN = "invalid_boolean"
    INVALID_NUMBER = "invalid_number"
    BELOW_MINIMUM = "below_minimum"
    BEFORE_RECEIVED = "before_received"
    DUPLICATE_ID = "duplicate_id"


REASONS = list(Reason)
REJECT_COLUMNS = ["record_type", "source_file", "row", "record_id", "column", "raw_value", "reason", "message"]
TRUE_TEXT = ["true", "t", "1", "yes", "y"]
FALSE_TEXT = ["false", "f", "0", "no", "n"]
MIN_DAY = int(np.datetime64(f"{calmod.YEARS.start}-01-01", "D").astype(np.int64))
MAX_DAY = int(np.datetime64(f"{calmod.YEARS.stop - 1}-12-31", "D").astype(np.int64))
TS_RE = (
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?P<f>\.\d{1,9})?)?)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


@dataclass
class Records:
    """Accepted (or candidate) records of one type as typed columns.

    cols: numeric, bool, times (int64 ns, NULL = missing) and dates (int64 days) by column
    name; timestamps appear as NAME_utc and NAME_local. codes: categorical columns as
    int32 codes into cats[NAME] (-1 = null). text: free strings kept as Arrow arrays.
    """

    record_type: str
    n: int
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    cats: dict[str, list[str]] = field(default_factory=dict)
    text: dict[str, pa.Array] = field(default_factory=dict)
    keys: dict[str, np.ndarray] = field(default_factory=dict)  # int64 codes shared across record types
    ids: pa.Array | None = None
    file_index: np.ndarray | None = None
    row: np.ndarray | None = None

    def take(self, index: np.ndarray) -> Records:
        arrow_index = pa.array(index)
        return Records(
            record_type=self.record_type,
            n=len(index),
            cols={k: v[index] for k, v in self.cols.items()},
            codes={k: v[index] for k, v in self.codes.items()},
            cats=self.cats,
            text={k: v.take(arrow_index) for k, v in self.text.items()},
            keys={k: v[index] for k, v in self.keys.items()},
            ids=self.ids.take(arrow_index) if self.ids is not None else None,
            file_index=self.file_index[index] if self.file_index is not None else None,
            row=self.row[index] if self.row is not None else None,
        )

    def decoded(self, name: str) -> np.ndarray:
        """A categorical column as an object array of its values (None for null)."""
        cats = np.array([*self.cats[name], None], dtype=object)
        return cats[self.codes[name]]


class _Flags:
    """First failing check per row: reason and column index (-1 = none yet)."""

    def __init__(self, n: int):
        self.reason = np.full(n, -1, dtype=np.int16)
        self.column = np.full(n, -1, dtype=np.int16)

    def flag(self, mask: np.ndarray, reason: Reason, column: int) -> None:
        hit = mask & (self.reason < 0)
        self.reason[hit] = REASONS.index(reason)
        self.column[hit] = column


# ----------------------------------------------------------------- lenient parsing


def _null_mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _lenient(arr: pa.Array, fast, leaf, leaf_size: int = 512) -> list[tuple[np.ndarray, ...]]:
    """Apply a fast whole-array conversion, bisecting down to `leaf` only around bad values."""
    try:
        return [fast(arr)]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(arr) <= leaf_size:
        return [leaf(arr)]
    mid = len(arr) // 2
    return _lenient(arr.slice(0, mid), fast, leaf, leaf_size) + _lenient(arr.slice(mid), fast, leaf, leaf_size)


def _group(struct: pa.StructArray, name: str) -> pa.Array:
    """A regex group's text; null where the group did not take part (Arrow gives '')."""
    values = struct.field(name)
    return pc.if_else(pc.equal(pc.utf8_length(values), 0), pa.scalar(None, pa.string()), values)


def _int_field(struct: pa.StructArray, name: str, default: int = 0) -> np.ndarray:
    values = pc.cast(_group(struct, name), pa.int64())
    return np.asarray(values.fill_null(default).to_numpy(zero_copy_only=False), dtype=np.int64)


def _civil_days(y: np.ndarray, mo: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since epoch and validity of (year, month, day) triples."""
    ok = (mo >= 1) & (mo <= 12) & (d >= 1)
    months = (y - 1970) * 12 + np.clip(mo, 1, 12) - 1
    start = months.astype("M8[M]").astype("M8[D]").view(np.int64)
    length = (months + 1).astype("M8[M]").astype("M8[D]").view(np.int64) - start
    ok &= d <= length
    return start + d - 1, ok


def _parse_ts_leaf(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regex parse of ISO 8601 text: (wall-clock ns, offset seconds or NULL, parsed ok)."""
    m = pc.extract_regex(arr, TS_RE)
    matched = ~_null_mask(m) | _null_mask(arr)
    y, mo, d = (_int_field(m, k) for k in ("y", "mo", "d"))
    h, mi, s = (_int_field(m, k) for k in ("h", "mi", "s"))
    frac_text = pc.utf8_rpad(pc.utf8_slice_codeunits(_group(m, "f").fill_null(".0"), 1), 9, "0")
    frac = np.asarray(pc.cast(frac_text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    days, ok = _civil_days(y, mo, d)
    ok &= (h < 24) & (mi < 60) & (s < 60)
    ns = days * NS_PER_DAY + (h * 3600 + mi * 60 + s) * NS_PER_S + frac
    tz = _group(m, "tz")
    has_tz = ~_null_mask(tz)
    offset = np.full(len(arr), NULL, dtype=np.int64)
    if has_tz.any():
        tz_text = pc.replace_substring(pc.replace_substring(tz.fill_null("Z"), ":", ""), "Z", "+0000")
        sign = np.where(np.asarray(pc.utf8_slice_codeunits(tz_text, 0, 1).to_numpy(zero_copy_only=False)) == "-", -1, 1)
        hh = np.asarray(pc.cast(pc.utf8_slice_codeunits(tz_text, 1, 3), pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        mm = np.asarray(pc.cast(pc.utf8_slice_codeunits(tz_text, 3, 5), pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        offset = np.where(has_tz, sign * (hh * 3600 + mm * 60), NULL)
        ok &= ~has_tz | ((hh < 24) & (mm < 60))
    ok &= matched
    null = _null_mask(arr)
    ns = np.where(ok & ~null, ns, NULL)
    return ns, offset, ok | null


def _ts_fast(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = pc.cast(arr, pa.timestamp("ns"))
    ns = np.asarray(values.cast(pa.int64()).fill_null(NULL).to_numpy(zero_copy_only=False), dtype=np.int64)
    return ns, np.full(len(arr), NULL, dtype=np.int64), np.ones(len(arr), dtype=bool)


def parse_timestamps(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ns, offset seconds or NULL, ok) for a column of any reasonable type.

    ns is wall-clock time where offset is NULL, else the wall-clock time as written
    (UTC = ns - offset). Time-zone-aware Arrow timestamps are returned as UTC, offset 0.
    """
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(arr.type):
        ns = arr.cast(pa.timestamp("ns", arr.type.tz)).cast(pa.int64()).fill_null(NULL)
        ns = np.asarray(ns.to_numpy(zero_copy_only=False), dtype=np.int64)
        offset = np.full(len(arr), 0 if arr.type.tz else NULL, dtype=np.int64)
        return ns, offset, np.ones(len(arr), dtype=bool)
    if pa.types.is_date(arr.type):
        days = np.asarray(arr.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        ns = np.where(_null_mask(arr), NULL, days * NS_PER_DAY)
        return ns, np.full(len(arr), NULL, dtype=np.int64), np.ones(len(arr), dtype=bool)
    text = arr.cast(pa.string())
    parts = _lenient(text, _ts_fast, _parse_ts_leaf)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def _date_leaf(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    m = pc.extract_regex(arr, r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})$")
    null = _null_mask(arr)
    days, ok = _civil_days(_int_field(m, "y"), _int_field(m, "mo"), _int_field(m, "d"))
    ok &= ~_null_mask(m)
    return np.where(ok & ~null, days, NULL), ok | null


def _date_fast(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    days = pc.cast(arr, pa.date32()).cast(pa.int32()).cast(pa.int64()).fill_null(NULL)
    return np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.int64), np.ones(len(arr), dtype=bool)


def parse_dates(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(days since epoch or NULL, ok) for a date column (text, date or timestamp)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return _date_fast(arr.cast(pa.date32()))
    parts = _lenient(arr.cast(pa.string()), _date_fast, _date_leaf)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _number_leaf(kind: pa.DataType):
    def leaf(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        pattern = r"^\s*[+-]?\d+\s*$" if pa.types.is_integer(kind) else r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
        good = pc.match_substring_regex(arr, pattern).fill_null(False)
        values = pc.cast(pc.if_else(good, arr, pa.scalar(None, pa.string())), kind)
        null = _null_mask(arr)
        ok = np.asarray(good.to_numpy(zero_copy_only=False), dtype=bool) | null
        return np.asarray(values.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64), ok

    return leaf


def parse_numbers(arr: pa.Array, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, NaN = null or bad; ok) for a numeric column."""
    kind = pa.int64() if integer else pa.float64()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        values = np.asarray(arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        ok = np.ones(len(arr), dtype=bool)
        if integer and pa.types.is_floating(arr.type):
            ok = np.isnan(values) | (values == np.round(values))
        return values, ok

    def fast(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        out = pc.cast(pc.utf8_trim_whitespace(a), kind).cast(pa.float64()).fill_null(np.nan)
        return np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64), np.ones(len(a), dtype=bool)

    parts = _lenient(arr.cast(pa.string()), fast, _number_leaf(kind))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def parse_bools(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bool values, ok); null is False with ok True (callers check required-ness)."""
    if pa.types.is_boolean(arr.type):
        return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool), np.ones(len(arr), bool)
    if pa.types.is_integer(arr.type):
        values = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        return values == 1, (values == 0) | (values == 1)
    text = pc.utf8_lower(pc.utf8_trim_whitespace(arr.cast(pa.string())))
    true = np.asarray(pc.is_in(text, pa.array(TRUE_TEXT)).to_numpy(zero_copy_only=False), dtype=bool)
    false = np.asarray(pc.is_in(text, pa.array(FALSE_TEXT)).to_numpy(zero_copy_only=False), dtype=bool)
    return true, true | false | _null_mask(arr)


def encode(arr: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode a text column: (int32 codes, -1 = null; dictionary values)."""
    enc = arr.cast(pa.string()).dictionary_encode() if not pa.types.is_dictionary(arr.type) else arr
    if not pa.types.is_string(enc.type.value_type):
        enc = enc.dictionary_decode().cast(pa.string()).dictionary_encode()
    codes = np.asarray(enc.indices.cast(pa.int32()).fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int32)
    return codes, enc.dictionary.to_pylist()


def recode(codes: np.ndarray, values: list[str], categories: list[str]) -> np.ndarray:
    """Map codes into a fixed category list; values not in it become -2 (unknown)."""
    lookup = np.array([categories.index(v) if v in categories else -2 for v in values] + [-1], dtype=np.int32)
    return lookup[codes]


# ------------------------------------------------------------------------ row checks

MESSAGES = {
    Reason.MISSING_VALUE: "{column} is required but empty",
    Reason.INVALID_FORMAT: "{column} does not have the required format",
    Reason.INVALID_CODE: "{column} is not one of the allowed codes",
    Reason.UNKNOWN_STATE: "{column} is not a state of the plan",
    Reason.UNKNOWN_PRODUCT: "{column} is not in the plan's product catalogue",
    Reason.PRODUCT_NOT_OFFERED: "{column} is a retail product on a CLEC record or a CLEC product on a retail record",
    Reason.UNPARSEABLE_TIMESTAMP: "{column} is not an ISO 8601 timestamp",
    Reason.NONEXISTENT_LOCAL_TIME: "{column} is a local time skipped by a daylight-saving change",
    Reason.UNPARSEABLE_DATE: "{column} is not an ISO 8601 date (YYYY-MM-DD)",
    Reason.DATE_OUT_OF_RANGE: "{column} lies outside the years the calendars cover",
    Reason.INVALID_BOOLEAN: "{column} is not a boolean (true/false)",
    Reason.INVALID_NUMBER: "{column} is not a number of the required type",
    Reason.BELOW_MINIMUM: "{column} is below its minimum",
    Reason.BEFORE_RECEIVED: "{column} is earlier than received_at",
    Reason.DUPLICATE_ID: "{column} repeats an id read earlier (only the first copy in read order can be used)",
}


def _nullable(prop: dict) -> bool:
    return isinstance(prop["type"], list) and "null" in prop["type"]


def _code_categories(name: str, prop: dict, plan: Plan) -> list[str] | None:
    if "enum" in prop:
        return [v for v in prop["enum"] if v is not None]
    if prop.get("x-codes") == "plan.products":
        return [p.code for p in plan.products]
    if name == "state":
        return list(plan.state_codes)
    return None  # open vocabulary (carrier ids, periods): checked by pattern only


def check_table(record_type: str, table: pa.Table, plan: Plan, file_index: int) -> tuple[Records, _Flags]:
    """Type every contract column of one input table and flag its bad rows."""
    schema = record_schema(record_type)
    props: dict = schema["properties"]
    required = set(schema["required"])
    n = table.num_rows
    flags = _Flags(n)
    rec = Records(record_type, n, file_index=np.full(n, file_index, dtype=np.int32), row=np.arange(1, n + 1))
    stamps: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for ci, (name, prop) in enumerate(props.items()):
        kind = column_type(prop)
        arr = table.column(name).combine_chunks() if name in table.column_names else pa.nulls(n, pa.string())
        if isinstance(arr, pa.ChunkedArray):  # an empty table combines to a chunked array
            arr = pa.array([], pa.string()) if arr.num_chunks == 0 else arr.chunk(0)
        null = _null_mask(arr)
        if kind in ("string", "code") and "minLength" in prop:
            null |= np.asarray(pc.equal(pc.utf8_length(arr.cast(pa.string())), 0).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        if name in required and not _nullable(prop):
            flags.flag(null, Reason.MISSING_VALUE, ci)
        if kind == "timestamp":
            ns, offset, ok = parse_timestamps(arr)
            flags.flag(~ok, Reason.UNPARSEABLE_TIMESTAMP, ci)
            days = np.floor_divide(ns, NS_PER_DAY)
            flags.flag((ns != NULL) & ((days < MIN_DAY) | (days > MAX_DAY)), Reason.DATE_OUT_OF_RANGE, ci)
            stamps[name] = (ci, ns, offset)
        elif kind == "date":
            days, ok = parse_dates(arr)
            flags.flag(~ok, Reason.UNPARSEABLE_DATE, ci)
            flags.flag((days != NULL) & ((days < MIN_DAY) | (days > MAX_DAY)), Reason.DATE_OUT_OF_RANGE, ci)
            rec.cols[name] = days
        elif kind == "bool":
            values, ok = parse_bools(arr)
            flags.flag(~ok, Reason.INVALID_BOOLEAN, ci)
            rec.cols[name] = values
        elif kind in ("integer", "number"):
            values, ok = parse_numbers(arr, integer=kind == "integer")
            flags.flag(~ok, Reason.INVALID_NUMBER, ci)
            if "minimum" in prop:
                flags.flag(~np.isnan(values) & (values < prop["minimum"]), Reason.BELOW_MINIMUM, ci)
            if "default" in prop:
                values = np.where(np.isnan(values), prop["default"], values)
            rec.cols[name] = values.astype(np.int64) if kind == "integer" and not np.isnan(values).any() else values
        elif kind == "code":
            codes, values = encode(arr)
            if "pattern" in prop:
                pattern = re.compile(prop["pattern"])
                bad_values = np.array([pattern.search(v) is None for v in values] + [False], dtype=bool)
                flags.flag(bad_values[codes], Reason.INVALID_FORMAT, ci)
            categories = _code_categories(name, prop, plan)
            if categories is None:
                rec.codes[name], rec.cats[name] = codes, values
            else:
                mapped = recode(codes, values, categories)
                reason = {"state": Reason.UNKNOWN_STATE, "product": Reason.UNKNOWN_PRODUCT}.get(name, Reason.INVALID_CODE)
                flags.flag(mapped == -2, reason, ci)
                rec.codes[name], rec.cats[name] = np.where(mapped == -2, -1, mapped).astype(np.int32), categories
        elif name == schema.get("x-record-id"):
            rec.ids = arr.cast(pa.string())
        else:
            rec.text[name] = arr.cast(pa.string())

    _localize(rec, stamps, flags, plan)
    for ci, (name, prop) in enumerate(props.items()):
        if "x-not-before" in prop:
            ref = prop["x-not-before"]
            a, b = rec.cols[f"{name}_utc"], rec.cols[f"{ref}_utc"]
            flags.flag((a != NULL) & (b != NULL) & (a < b), Reason.BEFORE_RECEIVED, ci)
    if "product" in rec.codes and "carrier_id" in rec.codes:
        is_retail_product = np.array([plan.product(c).is_retail for c in rec.cats["product"]] + [False])
        is_retail_carrier = np.array([v == plan.retail_carrier_id for v in rec.cats["carrier_id"]] + [False])
        known = (rec.codes["product"] >= 0) & (rec.codes["carrier_id"] >= 0)
        mismatch = is_retail_product[rec.codes["product"]] != is_retail_carrier[rec.codes["carrier_id"]]
        flags.flag(known & mismatch, Reason.PRODUCT_NOT_OFFERED, list(props).index("product"))
    if isinstance(schema.get("x-record-id"), list):
        parts = [table.column(c).cast(pa.string()) if c in table.column_names else pa.nulls(n, pa.string())
                 for c in schema["x-record-id"]]
        rec.ids = pc.binary_join_element_wise(*parts, "|").combine_chunks() if n else pa.array([], pa.string())
    return rec, flags


def _localize(rec: Records, stamps: dict, flags: _Flags, plan: Plan) -> None:
    """Fill NAME_utc and NAME_local for every timestamp column, state by state."""
    zones = {s.code: s.time_zone for s in plan.states}
    groups = calmod.state_groups(rec.codes["state"], rec.cats["state"])
    for name, (ci, ns, offset) in stamps.items():
        utc = np.full(rec.n, NULL, dtype=np.int64)
        local = np.full(rec.n, NULL, dtype=np.int64)
        absolute = offset != NULL
        wall = (ns != NULL) & ~absolute
        nonexistent = np.zeros(rec.n, dtype=bool)
        for state, idx in groups:
            zone = zones[state]
            w = idx[wall[idx]]
            if len(w):
                u = calmod.localize(ns[w], zone)
                utc[w], local[w] = u, np.where(u == NULL, NULL, ns[w])
                nonexistent[w] = u == NULL
            a = idx[absolute[idx] & (ns[idx] != NULL)]
            if len(a):
                utc[a] = ns[a] - offset[a] * NS_PER_S
                local[a] = calmod.to_local(utc[a], zone)
        flags.flag(nonexistent, Reason.NONEXISTENT_LOCAL_TIME, ci)
        rec.cols[f"{name}_utc"], rec.cols[f"{name}_local"] = utc, local


@dataclass
class FileCount:
    """Rows of one input file: read = accepted + rejected."""

    record_type: str
    path: str
    read: int
    accepted: int = 0
    rejected: int = 0


def _concat(parts: list[Records]) -> Records:
    """One Records of several tables; open vocabularies get one merged category list."""
    first = parts[0]
    out = Records(first.record_type, sum(p.n for p in parts))
    out.cols = {k: np.concatenate([p.cols[k] for p in parts]) for k in first.cols}
    for k in first.codes:
        cats = sorted(set().union(*(p.cats[k] for p in parts))) if len({tuple(p.cats[k]) for p in parts}) > 1 else first.cats[k]
        out.cats[k] = cats
        out.codes[k] = np.concatenate([p.codes[k] if p.cats[k] is cats else recode(p.codes[k], p.cats[k], cats) for p in parts])
    out.text = {k: pa.concat_arrays([p.text[k] for p in parts]) for k in first.text}
    out.ids = pa.concat_arrays([p.ids for p in parts])
    out.file_index = np.concatenate([p.file_index for p in parts])
    out.row = np.concatenate([p.row for p in parts])
    return out


def finalize(
    record_type: str, checked: list[tuple[Records, _Flags, pa.Table]], paths: list[str]
) -> tuple[Records, pa.Table, list[FileCount]]:
    """Merge the checked tables of a type: accepted records, rejects table, per-file counts."""
    schema = record_schema(record_type)
    names = list(schema["properties"])
    recs = _concat([c[0] for c in checked])
    reason = np.concatenate([c[1].reason for c in checked])
    column = np.concatenate([c[1].column for c in checked])
    id_column = schema["x-record-id"] if isinstance(schema["x-record-id"], str) else None
    dup = duplicate_mask(recs.ids) & (reason < 0)
    reason[dup] = REASONS.index(Reason.DUPLICATE_ID)
    column[dup] = names.index(id_column) if id_column else -1
    bad = reason >= 0

    offsets = np.cumsum([0] + [c[0].n for c in checked])
    raw = np.full(recs.n, None, dtype=object)
    for (_, _, table), start in zip(checked, offsets[:-1], strict=True):
        local_bad = np.flatnonzero(bad[start : start + table.num_rows])
        for ci in np.unique(column[start + local_bad]):
            rows = local_bad[column[start + local_bad] == ci]
            name = names[ci] if ci >= 0 else None
            if name is None or name not in table.column_names:
                continue
            values = table.column(name).take(pa.array(rows)).cast(pa.string())
            raw[start + rows] = values.to_pylist()
    raw[dup] = np.asarray(recs.ids.take(pa.array(np.flatnonzero(dup))).to_pylist(), dtype=object)
    bad_idx = np.flatnonzero(bad)
    reason_text = np.array([r.value for r in REASONS], dtype=object)[reason[bad_idx]]
    column_text = np.array([*names, "record_id"], dtype=object)[column[bad_idx]]
    pair = reason[bad_idx].astype(np.int64) * 10_000 + column[bad_idx] + 1
    pairs, inverse = np.unique(pair, return_inverse=True)
    texts = [MESSAGES[REASONS[p // 10_000]].format(column=([*names, "record_id"])[p % 10_000 - 1]) for p in pairs]
    message = np.array(texts, dtype=object)[inverse] if len(pairs) else np.array([], dtype=object)
    rejects = pa.table(
        {
            "record_type": pa.array([record_type] * len(bad_idx), pa.string()),
            "source_file": pa.array(np.array(paths, dtype=object)[recs.file_index[bad_idx]], pa.string()),
            "row": pa.array(recs.row[bad_idx], pa.int64()),
            "record_id": recs.ids.take(pa.array(bad_idx)),
            "column": pa.array(column_text, pa.string()),
            "raw_value": pa.array(raw[bad_idx], pa.string()),
            "reason": pa.array(reason_text, pa.string()),
            "message": pa.array(message, pa.string()),
        }
    )
    counts = []
    for i, path in enumerate(paths):
        in_file = recs.file_index == i
        read = int(in_file.sum())
        rejected = int((in_file & bad).sum())
        counts.append(FileCount(record_type, path, read, read - rejected, rejected))
    return recs.take(np.flatnonzero(~bad)), rejects, counts
