"""Lenient, vectorized parsing of text columns: timestamps, dates, numbers, booleans, codes.

Each parser returns values and an `ok` mask instead of raising, so a bad value becomes a
rejected row. A fast whole-column Arrow cast is tried first; only around the values it
cannot take does parsing fall back, by bisection, to a regex parse of small slices. The
regex parse takes exactly what the Arrow cast takes, so a value parses (or not) whatever
its neighbours are, in a whole run and in a partition alike.

Times beyond what int64 nanoseconds hold (before 1677 or after 2262) saturate at the int64
limits (TOO_EARLY, TOO_LATE) instead of wrapping around, so that the contract's range check
rejects them (a year 2600 must never become a date in 2015).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carrier_sla.plan.calendar import NS_PER_DAY, NS_PER_S, NULL

TRUE_TEXT = ["true", "t", "1", "yes", "y"]
FALSE_TEXT = ["false", "f", "0", "no", "n"]
TOO_EARLY = NULL + 1  # a time before the int64 nanosecond range (NULL is int64's minimum)
TOO_LATE = np.iinfo(np.int64).max  # a time after it
# Arrow's text -> number grammars (leading and trailing white space trimmed first)
INTEGER_RE = r"^-?[0-9]+$"
FLOAT_RE = r"(?i)^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan(\([0-9a-z_]*\))?)$"
TS_RE = (
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?P<f>\.\d{1,9})?)?)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


def null_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:  # the usual column: no bitmap to unpack
        return np.zeros(len(arr), dtype=bool)
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


def _saturating_ns(values: np.ndarray, per_unit: int) -> np.ndarray:
    """int64 counts of a time unit (`per_unit` ns each) as int64 ns; beyond the ns range
    TOO_EARLY or TOO_LATE (NULL stays NULL)."""
    limit = TOO_LATE // per_unit
    ns = np.clip(values, -limit, limit) * per_unit
    ns = np.where(values > limit, TOO_LATE, np.where(values < -limit, TOO_EARLY, ns))
    return np.where(values == NULL, NULL, ns)


def _parse_ts_leaf(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regex parse of ISO 8601 text: (wall-clock ns, offset seconds or NULL, parsed ok)."""
    m = pc.extract_regex(arr, TS_RE)
    matched = ~null_mask(m) | null_mask(arr)
    y, mo, d = (_int_field(m, k) for k in ("y", "mo", "d"))
    h, mi, s = (_int_field(m, k) for k in ("h", "mi", "s"))
    frac_text = pc.utf8_rpad(pc.utf8_slice_codeunits(_group(m, "f").fill_null(".0"), 1), 9, "0")
    frac = np.asarray(pc.cast(frac_text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    days, ok = _civil_days(y, mo, d)
    ok &= (h < 24) & (mi < 60) & (s < 60)
    ns = _saturating_ns(days, NS_PER_DAY)
    inside = (ns != TOO_EARLY) & (ns != TOO_LATE)  # the day's first ns is held: so is its last
    ns = np.where(inside, ns + (h * 3600 + mi * 60 + s) * NS_PER_S + frac, ns)
    tz = _group(m, "tz")
    has_tz = ~null_mask(tz)
    offset = np.full(len(arr), NULL, dtype=np.int64)
    if has_tz.any():
        tz_text = pc.replace_substring(pc.replace_substring(tz.fill_null("Z"), ":", ""), "Z", "+0000")
        sign = np.where(np.asarray(pc.utf8_slice_codeunits(tz_text, 0, 1).to_numpy(zero_copy_only=False)) == "-", -1, 1)
        hh = np.asarray(
            pc.cast(pc.utf8_slice_codeunits(tz_text, 1, 3), pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64
        )
        mm = np.asarray(
            pc.cast(pc.utf8_slice_codeunits(tz_text, 3, 5), pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64
        )
        offset = np.where(has_tz, sign * (hh * 3600 + mm * 60), NULL)
        ok &= ~has_tz | ((hh < 24) & (mm < 60))
    ok &= matched
    null = null_mask(arr)
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
        per_unit = {"s": NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}[arr.type.unit]
        counts = np.asarray(arr.cast(pa.int64()).fill_null(NULL).to_numpy(zero_copy_only=False), dtype=np.int64)
        offset = np.full(len(arr), 0 if arr.type.tz else NULL, dtype=np.int64)
        return _saturating_ns(counts, per_unit), offset, np.ones(len(arr), dtype=bool)
    if pa.types.is_date(arr.type):
        days = np.asarray(
            arr.cast(pa.date32()).cast(pa.int32()).cast(pa.int64()).fill_null(NULL).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        return _saturating_ns(days, NS_PER_DAY), np.full(len(arr), NULL, dtype=np.int64), np.ones(len(arr), dtype=bool)
    text = arr.cast(pa.string())
    parts = _lenient(text, _ts_fast, _parse_ts_leaf)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def _date_leaf(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    m = pc.extract_regex(arr, r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})$")
    null = null_mask(arr)
    days, ok = _civil_days(_int_field(m, "y"), _int_field(m, "mo"), _int_field(m, "d"))
    ok &= ~null_mask(m)
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
        text = pc.utf8_trim_whitespace(arr)
        good = pc.match_substring_regex(text, INTEGER_RE if pa.types.is_integer(kind) else FLOAT_RE).fill_null(False)
        # through float64, which takes every text of either grammar (an integer beyond int64
        # too: its size, not its last digits, is what the contract checks)
        values = pc.cast(pc.if_else(good, text, pa.scalar(None, pa.string())), pa.float64())
        null = null_mask(arr)
        ok = np.asarray(good.to_numpy(zero_copy_only=False), dtype=bool) | null
        return np.asarray(values.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64), ok

    return leaf


def parse_numbers(arr: pa.Array, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, NaN = null or bad; ok) for a numeric column.

    A value that parses may still be NaN or infinite (text "NaN", "inf", "1e309"; a float
    column's NaN), and an integer may be beyond what float64 holds exactly: the contract
    checks those (carrier_sla.inputs.contract)."""
    kind = pa.int64() if integer else pa.float64()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        # not a safe cast: an integer beyond 2**53 loses its last digits, not its size
        values = arr.cast(pa.float64(), safe=False).fill_null(np.nan)
        values = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        ok = np.ones(len(arr), dtype=bool)
        if integer and pa.types.is_floating(arr.type):
            ok = ~np.isfinite(values) | (values == np.round(values))  # NaN and infinities: checked by the contract
        return values, ok

    def fast(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        text = pc.utf8_trim_whitespace(a)
        out = pc.cast(text, kind).cast(pa.float64(), safe=False).fill_null(np.nan)
        ok = np.ones(len(a), dtype=bool)
        if integer:  # Arrow also reads hexadecimal (0x1F) as an integer; the contract's integers are decimal
            ok = ~np.asarray(pc.match_substring(text, "x", ignore_case=True).fill_null(False), dtype=bool)
        return np.where(ok, np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64), np.nan), ok

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
    return true, true | false | null_mask(arr)


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
