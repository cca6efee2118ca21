"""The input record contract: vectorized row checks -> typed records + rejects.

Column names, types, codes and patterns come from schemas/records/*.json (the single
source of the contract); this module applies them column by column over Arrow arrays,
never row by row. Every row read is either accepted or rejected with one reason (the
first failing check, in schema column order; duplicates last).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla import vocabulary
from carrier_sla.inputs.parse import (
    encode,
    null_mask,
    parse_bools,
    parse_dates,
    parse_numbers,
    parse_timestamps,
    recode,
)
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.calendar import NS_PER_DAY, NS_PER_S, NULL
from carrier_sla.plan.fields import column_type, record_schema
from carrier_sla.plan.load import Plan


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
    NOT_FINITE = "not_finite"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"
    BEFORE_RECEIVED = "before_received"
    NO_ACCESS_EXCEEDS_DURATION = "no_access_exceeds_duration"
    DUPLICATE_ID = "duplicate_id"


REASONS = list(Reason)
REJECT_COLUMNS = vocabulary.REJECTS.names  # the rejects table, in its order
MIN_DAY = int(np.datetime64(f"{calmod.YEARS.start}-01-01", "D").astype(np.int64))
MAX_DAY = int(np.datetime64(f"{calmod.YEARS.stop - 1}-12-31", "D").astype(np.int64))


class Taken(MutableMapping):
    """The columns of a mapping (numpy arrays or Arrow arrays) at some of their rows, each
    gathered when first read: a measure reads a few of a record type's columns, and the rows
    of a period need not copy the others. A take of a Taken composes the row indices, so
    nothing is gathered twice."""

    def __init__(self, source: Mapping, index: np.ndarray):
        self._pending: dict = {}  # name -> (column, rows of it) not yet gathered
        self._done: dict = {}
        self._names: dict = {}  # every name, in order
        if isinstance(source, Taken):
            for name in source._names:
                if name in source._done:
                    self._pending[name] = (source._done[name], index)
                else:
                    column, rows = source._pending[name]
                    self._pending[name] = (column, rows[index])
                self._names[name] = None
        else:
            for name, column in source.items():
                self._pending[name] = (column, index)
                self._names[name] = None

    def __getitem__(self, name: str):
        if name in self._done:
            return self._done[name]
        column, rows = self._pending.pop(name)  # KeyError for a name not there
        value = column.take(pa.array(rows)) if isinstance(column, pa.Array | pa.ChunkedArray) else column[rows]
        self._done[name] = value
        return value

    def __setitem__(self, name: str, value) -> None:
        self._pending.pop(name, None)
        self._done[name] = value
        self._names[name] = None

    def __delitem__(self, name: str) -> None:
        del self._names[name]
        self._pending.pop(name, None)
        self._done.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class Records:
    """Accepted (or candidate) records of one type as typed columns.

    cols: numeric, bool, times (int64 ns, NULL = missing) and dates (int64 days) by column
    name; timestamps appear as NAME_utc and NAME_local. codes: categorical columns as
    int32 codes into cats[NAME] (-1 = null). text: free strings kept as Arrow arrays.
    """

    record_type: str
    n: int
    cols: MutableMapping[str, np.ndarray] = field(default_factory=dict)
    codes: MutableMapping[str, np.ndarray] = field(default_factory=dict)
    cats: dict[str, list[str]] = field(default_factory=dict)
    text: MutableMapping[str, pa.Array] = field(default_factory=dict)
    keys: MutableMapping[str, np.ndarray] = field(default_factory=dict)  # int64 codes shared across record types
    ids: pa.Array | None = None
    file_index: np.ndarray | None = None
    row: np.ndarray | None = None
    # what is computed from these records and read by several measures (the sorted index of a
    # related-record rule's others); not carried over by take()
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def take(self, index: np.ndarray) -> Records:
        """The records at rows `index`; each column is gathered when first read (Taken)."""
        return Records(
            record_type=self.record_type,
            n=len(index),
            cols=Taken(self.cols, index),
            codes=Taken(self.codes, index),
            cats=self.cats,
            text=Taken(self.text, index),
            keys=Taken(self.keys, index),
            ids=self.ids.take(pa.array(index)) if self.ids is not None else None,
            file_index=self.file_index[index] if self.file_index is not None else None,
            row=self.row[index] if self.row is not None else None,
        )

    def decoded(self, name: str) -> np.ndarray:
        """A categorical column as an object array of its values (None for null)."""
        cats = np.array([*self.cats[name], None], dtype=object)
        return cats[self.codes[name]]


class Flags:
    """First failing check per row: reason and column index (-1 = none yet)."""

    def __init__(self, n: int):
        self.reason = np.full(n, -1, dtype=np.int16)
        self.column = np.full(n, -1, dtype=np.int16)

    def flag(self, mask: np.ndarray, reason: Reason, column: int) -> None:
        if not mask.any():  # the usual check: no row fails it
            return
        hit = mask & (self.reason < 0)
        self.reason[hit] = REASONS.index(reason)
        self.column[hit] = column


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
    Reason.NOT_FINITE: "{column} is NaN or infinite (or too large for a double), where a finite number is required",
    Reason.BELOW_MINIMUM: "{column} is below its minimum",
    Reason.ABOVE_MAXIMUM: "{column} is above its maximum",
    Reason.BEFORE_RECEIVED: "{column} is earlier than received_at",
    Reason.NO_ACCESS_EXCEEDS_DURATION: "{column} is longer than the real time elapsed from received_at to cleared_at",
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


def record_ids(record_type: str, table: pa.Table) -> pa.Array:
    """Each row's record id as text, as duplicates are judged on it: the id column, or the
    id columns joined with "|" (null if any is null)."""
    id_spec = record_schema(record_type)["x-record-id"]
    n = table.num_rows
    names = [id_spec] if isinstance(id_spec, str) else id_spec
    parts = [
        table.column(c).combine_chunks().cast(pa.string()) if c in table.column_names else pa.nulls(n, pa.string())
        for c in names
    ]
    if n == 0:
        return pa.array([], pa.string())
    if len(parts) == 1:
        return parts[0] if isinstance(parts[0], pa.Array) else parts[0].chunk(0)
    return pc.binary_join_element_wise(*parts, "|")


def check_table(
    record_type: str, table: pa.Table, plan: Plan, file_index: int, rows: np.ndarray | None = None
) -> tuple[Records, Flags]:
    """Type every contract column of one input table and flag its bad rows. `rows`: each
    row's 1-based row number in its input file (default: the table is the whole file)."""
    schema = record_schema(record_type)
    props: dict = schema["properties"]
    required = set(schema["required"])
    n = table.num_rows
    flags = Flags(n)
    row = np.arange(1, n + 1) if rows is None else np.asarray(rows, dtype=np.int64)
    rec = Records(record_type, n, file_index=np.full(n, file_index, dtype=np.int32), row=row)
    stamps: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for ci, (name, prop) in enumerate(props.items()):
        kind = column_type(prop)
        arr = table.column(name).combine_chunks() if name in table.column_names else pa.nulls(n, pa.string())
        if isinstance(arr, pa.ChunkedArray):  # an empty table combines to a chunked array
            arr = pa.array([], pa.string()) if arr.num_chunks == 0 else arr.chunk(0)
        null = null_mask(arr)
        if kind in ("string", "code") and "minLength" in prop:
            null |= np.asarray(
                pc.equal(pc.utf8_length(arr.cast(pa.string())), 0).fill_null(False).to_numpy(zero_copy_only=False),
                dtype=bool,
            )
        if name in required and not _nullable(prop):
            flags.flag(null, Reason.MISSING_VALUE, ci)
        if kind == "timestamp":
            ns, offset, ok = parse_timestamps(arr)
            flags.flag(~ok, Reason.UNPARSEABLE_TIMESTAMP, ci)
            days = np.floor_divide(ns, NS_PER_DAY)
            outside = (ns != NULL) & ((days < MIN_DAY) | (days > MAX_DAY))
            flags.flag(outside, Reason.DATE_OUT_OF_RANGE, ci)
            stamps[name] = (ci, np.where(outside, NULL, ns) if outside.any() else ns, offset)
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
            bad = ~ok
            # NaN where a number is given (text "NaN", a float column's NaN) is not a missing value;
            # an infinity is not a number either, except an integer's: its text overflowed a double,
            # and the maximum rejects it below
            given = ok & ~null
            nonfinite = given & (np.isnan(values) if kind == "integer" else ~np.isfinite(values))
            flags.flag(nonfinite, Reason.NOT_FINITE, ci)
            bad |= nonfinite
            for key, reason, beyond in (
                ("minimum", Reason.BELOW_MINIMUM, np.less),
                ("maximum", Reason.ABOVE_MAXIMUM, np.greater),
            ):
                if key in prop:
                    hit = beyond(np.where(np.isnan(values), prop[key], values), prop[key])
                    flags.flag(hit, reason, ci)
                    bad |= hit
            if bad.any():  # a rejected row's value is not used: NaN, so that no garbage is cast below
                values = np.where(bad, np.nan, values)
            if "default" in prop:
                values = np.where(np.isnan(values), prop["default"], values)
            rec.cols[name] = values.astype(np.int64) if kind == "integer" and not np.isnan(values).any() else values
        elif kind == "code":
            codes, labels = encode(arr)
            if "pattern" in prop:
                pattern = re.compile(prop["pattern"])
                bad_values = np.array([pattern.search(v) is None for v in labels] + [False], dtype=bool)
                flags.flag(bad_values[codes], Reason.INVALID_FORMAT, ci)
            categories = _code_categories(name, prop, plan)
            if categories is None:
                rec.codes[name], rec.cats[name] = codes, labels
            else:
                mapped = recode(codes, labels, categories)
                reason = {"state": Reason.UNKNOWN_STATE, "product": Reason.UNKNOWN_PRODUCT}.get(
                    name, Reason.INVALID_CODE
                )
                flags.flag(mapped == -2, reason, ci)
                rec.codes[name], rec.cats[name] = np.where(mapped == -2, -1, mapped).astype(np.int32), categories
        elif name == schema.get("x-record-id"):
            continue  # record_ids below
        else:
            rec.text[name] = arr.cast(pa.string())

    _localize(rec, stamps, flags, plan)
    for ci, (name, prop) in enumerate(props.items()):
        if "x-not-before" in prop:
            ref = prop["x-not-before"]
            a, b = rec.cols[f"{name}_utc"], rec.cols[f"{ref}_utc"]
            flags.flag((a != NULL) & (b != NULL) & (a < b), Reason.BEFORE_RECEIVED, ci)
    for ci, (name, prop) in enumerate(props.items()):
        if "x-at-most-elapsed" in prop:
            flags.flag(_exceeds_elapsed(rec, name, prop["x-at-most-elapsed"]), Reason.NO_ACCESS_EXCEEDS_DURATION, ci)
    if "product" in rec.codes and "carrier_id" in rec.codes:
        is_retail_product = np.array([plan.product(c).is_retail for c in rec.cats["product"]] + [False])
        is_retail_carrier = np.array([v == plan.retail_carrier_id for v in rec.cats["carrier_id"]] + [False])
        known = (rec.codes["product"] >= 0) & (rec.codes["carrier_id"] >= 0)
        mismatch = is_retail_product[rec.codes["product"]] != is_retail_carrier[rec.codes["carrier_id"]]
        flags.flag(known & mismatch, Reason.PRODUCT_NOT_OFFERED, list(props).index("product"))
    rec.ids = record_ids(record_type, table)
    return rec, flags


def _exceeds_elapsed(rec: Records, name: str, span: dict[str, str]) -> np.ndarray:
    """Rows whose hours in `name` exceed the real time elapsed from span["from"] to span["to"]
    (no-access time longer than the trouble lasted): computed as the duration measures compute
    it, (to - from) in hours as a float, so that a value equal to the duration (a duration of
    0) passes and every value that passes leaves a duration of at least 0."""
    start, end = rec.cols[f"{span['from']}_utc"], rec.cols[f"{span['to']}_utc"]
    hours = rec.cols[name]
    known = (start != NULL) & (end != NULL) & ~np.isnan(hours)
    elapsed = np.where(known, end, 0) - np.where(known, start, 0)
    return known & (hours > elapsed / (3600 * NS_PER_S))


def _localize(rec: Records, stamps: dict, flags: Flags, plan: Plan) -> None:
    """Fill NAME_utc and NAME_local for every timestamp column: a wall-clock time (no offset)
    is localized in its state's zone, a time with an offset converted to the zone's wall
    clock; rows of all states at once (calendar.Zones)."""
    zone_of = {s.code: s.time_zone for s in plan.states}
    names = tuple(dict.fromkeys(zone_of[state] for state in rec.cats["state"]))
    zones = calmod.zones(names)
    zone_index = np.array([names.index(zone_of[state]) for state in rec.cats["state"]] + [-1], dtype=np.int32)
    zone_index = zone_index[rec.codes["state"]]  # code -1 (no state) -> -1 (no zone)
    for name, (ci, ns, offset) in stamps.items():
        absolute = (offset != NULL) & (ns != NULL)
        if absolute.any():
            utc = np.where(absolute, ns - np.where(absolute, offset, 0) * NS_PER_S, NULL)
            utc = np.where(absolute, utc, zones.to_utc(ns, zone_index))
            local = np.where(absolute, zones.to_local(utc, zone_index), np.where(utc == NULL, NULL, ns))
            utc[zone_index < 0] = NULL
        else:
            utc = zones.to_utc(ns, zone_index)
            local = np.where(utc == NULL, NULL, ns)
        nonexistent = (zone_index >= 0) & (ns != NULL) & ~absolute & (utc == NULL)
        flags.flag(nonexistent, Reason.NONEXISTENT_LOCAL_TIME, ci)
        rec.cols[f"{name}_utc"], rec.cols[f"{name}_local"] = utc, local
