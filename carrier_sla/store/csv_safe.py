"""CSV cells a spreadsheet would run as a formula, neutralised (OWASP, "CSV Injection").

A spreadsheet opening a CSV file takes a cell that starts with `=`, `+`, `-` or `@` (or a tab or
carriage return before one) as a formula. Text that came from input files (record ids, rejected
rows as written) can start so: every CSV file written for people to open (package, report,
what-if, diff, statements) prefixes such a text cell with a single quote, which spreadsheets
show as text. Only text is touched: numbers in numeric columns stay numbers, and so does text
that is a plain decimal number ("-12.50", a difference of money written as text), which no
spreadsheet takes for a formula. The Parquet files keep every value as written.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

STARTS = "=+-@\t\r"
RISKY = r"^[=+\-@\t\r]"
NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_RISKY, _NUMBER = re.compile(RISKY), re.compile(NUMBER)


def cell(value: object) -> object:
    """`value` with a quote in front when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value[:1] in STARTS and value and not _NUMBER.match(value):
        return "'" + value
    return value


def frame(data: pd.DataFrame) -> pd.DataFrame:
    """A copy of `data` whose text cells are neutralised (numeric columns untouched). Each distinct
    value of a column is looked at once (a column of a few states, measures or products costs a
    few checks, not one per row)."""
    out = data.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            values = column.to_numpy(dtype=object)
            try:
                codes, uniques = pd.factorize(values)  # missing values: code -1, left as they are
            except TypeError:  # unhashable cells (lists): value by value
                out[name] = column.map(cell, na_action="ignore")
                continue
            risky = np.array([isinstance(u, str) and cell(u) is not u for u in uniques], dtype=bool)
            if risky.any():
                fixed = np.array([cell(u) for u in uniques], dtype=object)
                at = (codes >= 0) & risky[np.maximum(codes, 0)]
                values = values.copy()
                values[at] = fixed[codes[at]]
                out[name] = pd.Series(values, index=column.index, dtype=column.dtype)
    return out


def frames(sheets: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """frame() of each sheet; sheets of one shape (the same columns and types: a month's statements)
    are neutralised together, once, then cut apart (200 payees' statements: 0.3 s as 200 frames)."""
    if len(sheets) < 2 or any(not s.dtypes.equals(sheets[0].dtypes) for s in sheets[1:]):
        return [frame(sheet) for sheet in sheets]
    safe = frame(pd.concat(sheets, ignore_index=True))
    bounds = list(itertools.accumulate((len(sheet) for sheet in sheets), initial=0))
    return [safe.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(bounds)]


def table(data: pa.Table) -> pa.Table:
    """`data` with its text columns neutralised (dictionary columns decoded to text first)."""
    columns = []
    for field, column in zip(data.schema, data.columns, strict=True):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            text = column.cast(kind) if kind is not field.type else column
            risky = pc.and_(pc.match_substring_regex(text, RISKY), pc.invert(pc.match_substring_regex(text, NUMBER)))
            column = pc.if_else(pc.fill_null(risky, False), pc.binary_join_element_wise("'", text, ""), text)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names)
