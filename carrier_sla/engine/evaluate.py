"""Per-record evaluation: for each measure, which records of the period are included, why
the others are excluded, and each included record's value.

One function per value kind (the plan's closed vocabulary); all work on whole columns.
Conditions: a null value matches only is_null/not_null; every comparison with null is false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla.inputs.contract import Records
from carrier_sla.inputs.keys import string_codes
from carrier_sla.inputs.parse import null_mask
from carrier_sla.plan import calendar as calmod
from carrier_sla.plan.calendar import NS_PER_S, NULL
from carrier_sla.plan.fields import fields_of
from carrier_sla.plan.load import Condition, Measure, Plan, ValueSpec

NOT_COMPUTABLE = "value_not_computable"  # engine reason: included by the plan, but no value can be computed
NS_PER_HOUR = 3600 * NS_PER_S


@dataclass
class Evaluated:
    """One measure's records for one period: which rows, included or why not, value."""

    measure: Measure
    records: Records  # the rows of the period (a subset of the accepted records)
    reason: np.ndarray  # int16 index into reasons; -1 = included
    reasons: list[str]
    value: np.ndarray  # float64, NaN where excluded

    @property
    def included(self) -> np.ndarray:
        return self.reason < 0


# ------------------------------------------------------------------------ derived fields


def derive(plan: Plan, rec: Records) -> Records:
    """Add the derived fields of fields.DERIVED to accepted records (a new Records)."""
    out = Records(
        rec.record_type,
        rec.n,
        dict(rec.cols),
        dict(rec.codes),
        dict(rec.cats),
        dict(rec.text),
        dict(rec.keys),
        rec.ids,
        rec.file_index,
        rec.row,
    )
    carriers = np.array([c in plan.test_carrier_ids for c in rec.cats["carrier_id"]] + [False])
    if rec.record_type == "lines":  # a test carrier's lines are no rate base: its troubles are excluded
        out.cols["is_test"] = carriers[rec.codes["carrier_id"]]
        return out
    out.cols["is_test"] = rec.cols["test"] | carriers[rec.codes["carrier_id"]]
    for name in ("received", "completed", "foc", "cleared"):
        if f"{name}_at_local" in rec.cols:
            out.cols[f"{name}_date"] = calmod.local_days(rec.cols[f"{name}_at_local"])
    if rec.record_type == "orders":
        eff = np.full(rec.n, NULL, dtype=np.int64)
        std_due = np.full(rec.n, NULL, dtype=np.int64)
        intervals = np.array([plan.product(p).standard_interval_days for p in rec.cats["product"]] + [0])
        received = out.cols["received_date"]
        # nanoseconds, not whole seconds: 15:00:00.5 is strictly after a 15:00 cut-off
        ns_of_day = np.mod(rec.cols["received_at_local"], calmod.NS_PER_DAY)
        for state, idx in calmod.state_groups(rec.codes["state"], rec.cats["state"]):
            cal = calmod.business_calendar(plan, state)
            days = received[idx]
            late = cal.is_business_day(days) & (ns_of_day[idx] > cal.cutoff_s * NS_PER_S)
            eff[idx] = cal.roll_forward(days, late.astype(np.int64))
            std_due[idx] = cal.roll_forward(eff[idx], intervals[rec.codes["product"][idx]])
        out.cols["effective_received_date"] = eff
        out.cols["standard_due_date"] = std_due
    return out


def known_at(rec: Records, as_of_day: int) -> Records:
    """The records as an extract taken at the end of local day `as_of_day` would show them:
    a record received later is not known yet (left out; the caller counts them), and a later
    completion, FOC or clearance has not happened yet (null: the order or trouble is open)."""
    if "received_at_local" not in rec.cols:
        return rec  # lines in service: a monthly snapshot, not events
    known = rec.take(np.flatnonzero(calmod.local_days(rec.cols["received_at_local"]) <= as_of_day))
    for name in ("completed", "foc", "cleared"):
        if f"{name}_date" not in known.cols:
            continue
        later = known.cols[f"{name}_date"] > as_of_day  # NULL is the smallest int64: never later
        if later.any():
            for column in (f"{name}_at_utc", f"{name}_at_local", f"{name}_date"):
                if column in known.cols:
                    known.cols[column] = np.where(later, NULL, known.cols[column])
    return known


def match_key(fields: tuple[str, ...]) -> str:
    """The name under which Records.keys holds the codes of a match_on tuple."""
    return "+".join(fields)


def link(plan: Plan, records: dict[str, Records]) -> None:
    """Give each match_on of the plan's related_record rules one integer code space across
    record types (rec.keys[match_key(fields)], -1 where any of the fields is null), so
    matching never compares strings."""
    # a related_record value always has match_on (plan validation requires it)
    tuples = sorted({m.value.match_on for m in plan.measures if m.value.kind == "related_record"})
    for fields in tuples:
        holders = [r for r in records.values() if all(f in r.text or f in r.codes for f in fields)]
        if not holders:
            continue
        combined = [np.zeros(r.n, dtype=np.int64) for r in holders]
        for name in fields:  # mixed radix: (code of the first field, code of the second, ...)
            per = _field_codes(holders, name)
            size = max((int(c.max()) + 1 for c in per if len(c)), default=1)
            for k, c in enumerate(per):
                combined[k] = np.where((combined[k] < 0) | (c < 0), -1, combined[k] * size + c)
            if max((int(c.max()) for c in combined if len(c)), default=0) >= 1 << 31:
                combined = _dense(combined)  # a code takes 31 bits (see _keys)
        for r, c in zip(holders, combined, strict=True):
            r.keys[match_key(fields)] = c


def _field_codes(holders: list[Records], name: str) -> list[np.ndarray]:
    """Codes of one field in one space across record types (-1 = null): free text by its
    exact string, categorical codes by their category's text."""
    if all(name in r.codes for r in holders):
        union = sorted({c for r in holders for c in r.cats[name]})
        index = {c: i for i, c in enumerate(union)}
        return [np.array([index[c] for c in r.cats[name]] + [-1], dtype=np.int64)[r.codes[name]] for r in holders]
    texts = [r.text[name] if name in r.text else pa.array(r.decoded(name), pa.string()) for r in holders]
    both = pa.chunked_array([t.cast(pa.string()) for t in texts]).combine_chunks()
    coded = string_codes(both)
    out, start = [], 0
    for r in holders:
        out.append(coded[start : start + r.n])
        start += r.n
    return out


def _dense(codes: list[np.ndarray]) -> list[np.ndarray]:
    """The same codes renumbered 0, 1, ... across the arrays (-1 stays -1)."""
    both = np.concatenate(codes)
    valid = both >= 0
    dense = np.full(len(both), -1, dtype=np.int64)
    dense[valid] = np.unique(both[valid], return_inverse=True)[1]
    return np.split(dense, np.cumsum([len(c) for c in codes])[:-1])


# ---------------------------------------------------------------------------- conditions


def _field(rec: Records, name: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, values, null mask) of a field; timestamps as UTC ns, dates as days."""
    kind = fields_of(rec.record_type)[name]
    if name in rec.codes:
        codes = rec.codes[name]
        return "code", codes, codes < 0
    if name in rec.text:
        arr = rec.text[name]
        return "text", arr, null_mask(arr)
    if kind == "timestamp":
        values = rec.cols[f"{name}_utc"]
        return kind, values, values == NULL
    values = rec.cols[name]
    if kind == "date":
        return kind, values, values == NULL
    if kind == "number" or values.dtype.kind == "f":
        return "number", values, np.isnan(values)
    return kind, values, np.zeros(rec.n, dtype=bool)


def _literal(kind: str, value: object) -> object:
    if kind == "date":
        return int(np.datetime64(str(value), "D").astype(np.int64))
    if kind == "timestamp":
        return int(np.datetime64(str(value), "ns").astype(np.int64))
    return value


def condition_mask(rec: Records, cond: Condition) -> np.ndarray:
    kind, values, null = _field(rec, cond.field)
    op = cond.op
    if op == "is_null":
        return null
    if op == "not_null":
        return ~null
    if op in ("is_true", "is_false"):
        return ~null & (values if op == "is_true" else ~values)
    if kind == "code" or kind == "text":
        wanted = list(cond.value) if isinstance(cond.value, tuple) else [cond.value]
        if kind == "code":
            wanted_text = {str(w) for w in wanted}
            lookup = np.array([c in wanted_text for c in rec.cats[cond.field]] + [False], dtype=bool)
            hit = lookup[values]  # code -1 (null) reads the final False
        else:
            hit = np.asarray(pc.is_in(values, pa.array([str(w) for w in wanted])).to_numpy(zero_copy_only=False), bool)
        if op in ("eq", "in"):
            return hit & ~null
        if op in ("ne", "not_in"):
            return ~hit & ~null
        raise ValueError(f"operator {op} does not apply to code field {cond.field}")
    other: Any  # a column, an array of literals or one literal
    if cond.field_ref is not None:
        _, other, other_null = _field(rec, cond.field_ref)
        null = null | other_null
    else:
        other = (
            np.asarray([_literal(kind, v) for v in cond.value])
            if isinstance(cond.value, tuple)
            else _literal(kind, cond.value)
        )
    compare = {
        "eq": np.equal,
        "ne": np.not_equal,
        "gt": np.greater,
        "ge": np.greater_equal,
        "lt": np.less,
        "le": np.less_equal,
    }
    if op in ("in", "not_in"):
        hit = np.isin(values, other)
        return ~null & (hit if op == "in" else ~hit)
    return ~null & compare[op](values, other)


def conditions_mask(rec: Records, conds: tuple[Condition, ...]) -> np.ndarray:
    mask = np.ones(rec.n, dtype=bool)
    for cond in conds:
        mask &= condition_mask(rec, cond)
    return mask


# ---------------------------------------------------------------------------- value kinds


def _by_state(plan: Plan, rec: Records, fn) -> np.ndarray:
    out = np.full(rec.n, np.nan)
    for state, idx in calmod.state_groups(rec.codes["state"], rec.cats["state"]):
        out[idx] = fn(calmod.business_calendar(plan, state), idx)
    return out


def _within_business_hours(plan: Plan, rec: Records, v: ValueSpec, related: dict[str, Records]) -> np.ndarray:
    start, end = rec.cols[f"{v.from_field}_local"], rec.cols[f"{v.to_field}_local"]
    if v.limit_by is None:
        limit = np.full(rec.n, v.limit_hours)
    else:
        table = dict(v.limit_values)
        lookup = np.array([table.get(c, np.nan) for c in rec.cats[v.limit_by]] + [np.nan])
        limit = lookup[rec.codes[v.limit_by]]
    missing = (start == NULL) | (end == NULL)
    start, end = np.where(missing, 0, start), np.where(missing, 0, end)
    hours = _by_state(plan, rec, lambda cal, i: (cal.business_seconds(end[i]) - cal.business_seconds(start[i])) / 3600)
    value = (hours <= limit).astype(np.float64)
    value[missing | np.isnan(limit)] = np.nan
    return value


def _on_or_before(plan: Plan, rec: Records, v: ValueSpec, related: dict[str, Records]) -> np.ndarray:
    assert v.anchor is not None and v.to_field is not None  # required by the kind (validated plan)
    _, date, null_a = _field(rec, v.anchor)
    _, deadline, null_b = _field(rec, v.to_field)
    value = (date <= deadline).astype(np.float64)
    value[null_a | null_b] = np.nan
    return value


def _business_days(plan: Plan, rec: Records, v: ValueSpec, related: dict[str, Records]) -> np.ndarray:
    assert v.from_field is not None and v.to_field is not None  # required by the kind (validated plan)
    _, start, null_a = _field(rec, v.from_field)
    _, end, null_b = _field(rec, v.to_field)
    missing = null_a | null_b
    start, end = np.where(missing, 0, start), np.where(missing, 0, end)
    days = _by_state(plan, rec, lambda cal, i: cal.count(start[i], end[i]))
    value = np.maximum(days, 0.0)
    value[missing] = np.nan
    return value


def _duration_hours(plan: Plan, rec: Records, v: ValueSpec, related: dict[str, Records]) -> np.ndarray:
    start, end = rec.cols[f"{v.from_field}_utc"], rec.cols[f"{v.to_field}_utc"]
    hours = (end - start) / NS_PER_HOUR
    if v.minus:
        hours = hours - np.nan_to_num(rec.cols[v.minus], nan=0.0)
    hours = np.maximum(hours, 0.0)
    hours[(start == NULL) | (end == NULL)] = np.nan
    if v.at_most is None:
        return hours
    value = (hours <= v.at_most).astype(np.float64)
    value[np.isnan(hours)] = np.nan
    return value


def _keys(codes: np.ndarray, utc_ns: np.ndarray) -> np.ndarray:
    """Sortable int64 of (match code, whole seconds since epoch): a coarse key, refined by ns."""
    return (codes.astype(np.int64) << 32) | (utc_ns // NS_PER_S)


def _order_by_key_then_time(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The order sorting by the coarse key, then by time within equal keys (rare: same code, same second)."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    tied = np.zeros(len(keys), dtype=bool)
    same = sorted_keys[1:] == sorted_keys[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    if tied.any():
        at = np.flatnonzero(tied)
        order[at] = order[at][np.lexsort((times[order[at]], sorted_keys[at]))]
    return order


_DAY_BITS = 18  # a local date of any int64 ns time lies within 2**17 days of 1970-01-01


def _coded_days(keys: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(match code, local date) in one int64 that orders by code first: the running minimum
    (maximum) of a run of records sorted by code never reaches into another code."""
    return ((keys >> 32) << _DAY_BITS) + (days + (1 << (_DAY_BITS - 1)))


def _related_record(plan: Plan, rec: Records, v: ValueSpec, related: dict[str, Records]) -> np.ndarray:
    """1/0 by whether another record with the same match values lies in the window.

    window_hours: after: anchor < t <= anchor + window; before: anchor - window <= t < anchor;
    exact to the nanosecond. window_days: after: anchor < t and local date of t <= local
    date of the anchor + N; before: t < anchor and local date of t >= local date of the
    anchor - N; each date in its own record's state's zone (its `_local` column).
    Others are sorted by (code, second, ns); a search on the coarse key lands on the right
    second and a few vectorized steps skip same-second records on the wrong side. For
    calendar days the nearest other in time need not have the nearest date (records of one
    circuit in states of different zones), so the test reads the smallest date of the
    others after the anchor (the largest before it) from a running minimum (maximum).
    """
    # required by the kind (validated plan)
    assert v.records is not None and v.match_on and (v.window_hours is not None or v.window_days is not None)
    keys, times, other_days = _others(related[v.records], v)
    own_codes = rec.keys[match_key(v.match_on)]
    anchor = rec.cols[f"{v.anchor}_utc"]
    valid = (own_codes >= 0) & (anchor != NULL)
    anchor = np.where(valid, anchor, 0)
    own_keys = _keys(np.where(valid, own_codes, 0), anchor)
    # the records are searched in key order, so each search and gather moves forward through the
    # sorted others (several times faster than random order at ten million records); the answers
    # go back to record order at the end
    by_key = np.argsort(own_keys)
    own_keys, anchor = own_keys[by_key], anchor[by_key]
    days = v.window_days
    window = round(v.window_hours * 3600 * NS_PER_S) if v.window_hours is not None else 0
    if days is not None:
        own_days = _coded_days(own_keys, calmod.local_days(rec.cols[f"{v.anchor}_local"])[by_key])
    last = len(keys) - 1
    if last < 0:
        present = np.zeros(rec.n, dtype=bool)
    elif v.direction == "after":
        pos = np.searchsorted(keys, own_keys, side="left")
        while True:  # step past same-second records not strictly after the anchor
            at = np.minimum(pos, last)
            step = (pos <= last) & (keys[at] == own_keys) & (times[at] <= anchor)
            if not step.any():
                break
            pos += step
        at = np.minimum(pos, last)
        delta = times[at] - anchor
        present = (pos <= last) & ((keys[at] >> 32) == (own_keys >> 32)) & (delta > 0)
        if days is None:
            present &= delta <= window
        else:  # the earliest date from `at` on (within the code: later codes are larger)
            earliest = np.minimum.accumulate(other_days[::-1])[::-1]
            present &= earliest[at] <= own_days + days
    else:
        pos = np.searchsorted(keys, own_keys, side="right") - 1
        while True:  # step back past same-second records not strictly before the anchor
            at = np.maximum(pos, 0)
            step = (pos >= 0) & (keys[at] == own_keys) & (times[at] >= anchor)
            if not step.any():
                break
            pos -= step
        at = np.maximum(pos, 0)
        delta = anchor - times[at]
        present = (pos >= 0) & ((keys[at] >> 32) == (own_keys >> 32)) & (delta > 0)
        if days is None:
            present &= delta <= window
        else:  # the latest date up to `at` (within the code: earlier codes are smaller)
            latest = np.maximum.accumulate(other_days)
            present &= latest[at] >= own_days - days
    value = np.empty(rec.n, dtype=np.float64)
    value[by_key] = present if v.outcome == "present" else ~present
    value[~valid] = np.nan
    return value


def _others(other: Records, v: ValueSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The others a related-record rule searches, sorted by (match code, second, ns): their coarse
    keys, times and, for a window of days, coded local dates (else none). Computed once per batch of
    records for every rule with the same others (OP-5 and MR-7 both search network troubles by
    circuit), and again if the records were linked anew since (other match codes)."""
    memo = ("related_record", v.records, v.match_on, v.related_time, v.where, v.window_days is not None)
    other_codes = other.keys[match_key(v.match_on)]
    cached = other.memo.get(memo)
    if cached is None or cached[0] is not other_codes:
        keep = conditions_mask(other, v.where)
        other_time = other.cols[f"{v.related_time}_utc"]
        keep &= (other_codes >= 0) & (other_time != NULL)
        kept = np.flatnonzero(keep)
        keys, times = _keys(other_codes[kept], other_time[kept]), other_time[kept]
        sort = _order_by_key_then_time(keys, times)
        keys, times, order = keys[sort], times[sort], kept[sort]
        days = np.zeros(0, dtype=np.int64)
        if v.window_days is not None:
            days = _coded_days(keys, calmod.local_days(other.cols[f"{v.related_time}_local"])[order])
        cached = other.memo[memo] = (other_codes, keys, times, days)
    return cached[1], cached[2], cached[3]


def _count(plan: Plan, rec: Records, v: ValueSpec, related: dict[str, Records]) -> np.ndarray:
    return np.ones(rec.n)


VALUE_KINDS = {
    "within_business_hours": _within_business_hours,
    "on_or_before": _on_or_before,
    "business_days": _business_days,
    "duration_hours": _duration_hours,
    "related_record": _related_record,
    "count": _count,
}


# ------------------------------------------------------------------------------ measures


def data_period(period: str, measure: Measure) -> str:
    """The month whose records a measure reports in `period` (earlier when in arrears)."""
    return calmod.period_text(calmod.period_index(period) - measure.arrears_months)


def in_period(rec: Records, measure: Measure, period: str) -> np.ndarray:
    """Rows whose period_by timestamp falls, in local time, in the measure's data month."""
    local = rec.cols[f"{measure.period_by}_local"]
    first, end = calmod.month_span_ns(calmod.period_index(data_period(period, measure)))
    return (local >= first) & (local < end)  # NULL, the smallest int64, is in no month


def period_key(measure: Measure, period: str) -> tuple[str, str, str]:
    """What period_rows shares between measures: record type, the field placing records in periods, data month."""
    return (measure.records, measure.period_by, data_period(period, measure))


def period_rows(records: dict[str, Records], measure: Measure, period: str, cache: dict) -> Records:
    """The records of a measure's type in its data period, shared through `cache` by measures
    placed in periods by the same field."""
    key = period_key(measure, period)
    if key not in cache:
        everything = records[measure.records]
        cache[key] = everything.take(np.flatnonzero(in_period(everything, measure, period)))
    return cache[key]


def evaluate_measure(
    plan: Plan, measure: Measure, period: str, records: dict[str, Records], cache: dict | None = None
) -> Evaluated:
    """Include/exclude and value every record of the measure's type in its data period.

    `cache` shares the period's rows between measures placed in periods by the same field.
    """
    rec = period_rows(records, measure, period, {} if cache is None else cache)
    # records the commission excused (carrier_sla.inputs.excusals) first, then the plan's rules in order
    reasons = [code for code, _ in measure.approved] + [e.code for e in measure.exclusions] + [NOT_COMPUTABLE]
    reason = np.full(rec.n, -1, dtype=np.int16)
    for i, (_, ids) in enumerate(measure.approved):
        if rec.ids is not None and rec.n:
            hit = np.asarray(pc.is_in(rec.ids.cast(pa.string()), pa.array(ids, pa.string())).to_numpy(False), bool)
            reason[hit & (reason < 0)] = i
    for i, rule in enumerate(measure.exclusions, start=len(measure.approved)):
        hit = conditions_mask(rec, rule.when) & (reason < 0)
        reason[hit] = i
    value = VALUE_KINDS[measure.value.kind](plan, rec, measure.value, records)
    reason[(reason < 0) & np.isnan(value)] = len(reasons) - 1
    value = np.where(reason < 0, value, np.nan)
    return Evaluated(measure, rec, reason, reasons, value)


def lines_in_period(records: dict[str, Records], measure: Measure, period: str) -> Records:
    """The base records (lines in service) of a rate measure's data month."""
    lines = records["lines"]
    month = data_period(period, measure)
    cats = lines.cats["period"]
    code = cats.index(month) if month in cats else -2
    return lines.take(np.flatnonzero((lines.codes["period"] == code) & ~lines.cols["is_test"]))
