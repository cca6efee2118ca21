"""The words every writer and reader of the store shares: statuses, scopes, the spelling of the
all-CLEC aggregate, the cell key, and the output tables with a one-line description of every
column. Defined here once; everything else imports them (tests/test_vocabulary.py greps the
package for second definitions).

Layout rules the schemas follow (README, "Output tables"):
- partition columns live in the path only (Hive): `period=YYYY-MM/` for every table,
  `measure_id=ID/` under records; no file holds a column of the same name;
- one name per concept in every table and command (`measure_id`, `carrier_id`, ...), and none
  that SQL reserves (DuckDB's reserved and column-name keywords: no `row`, `column`, `order`);
- counts, degrees of freedom, resamples and seeds are integers (null where undefined);
- the dimension columns (the fields plans split cells by) take their Arrow type from the input
  field's contract type (schemas/records/*.schema.json): a boolean split is bool, a code split text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# ---------------------------------------------------------------------------------- verdicts

# A cell's status, in the order tables and summaries list them.
STATUSES = ("met", "miss", "no_activity", "no_retail_analog", "undetermined", "diagnostic")
VERDICTS = ("met", "miss")  # the statuses that are a verdict; the others leave escalation as it was
NO_VERDICT = tuple(s for s in STATUSES if s not in VERDICTS)

# A cell's scope: one CLEC's cell, or the all-CLEC aggregate of the same measure, state and product.
SCOPES = ("clec", "clec_aggregate")
CLEC, CLEC_AGGREGATE = SCOPES

# carrier_id of the all-CLEC aggregate, in every table and command. Not null: SQL joins and
# `WHERE carrier_id = ...` never match a null, and pandas' groupby drops null keys by default.
# A leading underscore: the record contract's carrier_id pattern ^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$
# cannot produce it, so no CLEC can be named so; and it needs no quoting on a shell command line.
AGGREGATE = "_all"

# ------------------------------------------------------------------------------- the cell key


def cell_key(dimensions: Sequence[str] | None = None) -> tuple[str, ...]:
    """The columns that identify a result cell.

    With a measure's own dimension fields: measure_id, *dimensions, state, product, scope,
    carrier_id -- the cells of that measure as the engine builds them. Without (None): the
    `submeasure` label (e.g. 'dispatch=true') stands for the dimension values, which identifies
    the cells of every measure in one table whatever each splits by.
    """
    middle = ("submeasure",) if dimensions is None else tuple(dimensions)
    return ("measure_id", *middle, "state", "product", "scope", "carrier_id")


# The key of a cell in any table of results (results, remedies, diff, what-if, explain).
CELL_KEY = cell_key()
# The cell of a measure without its scope and CLEC (a package's cell) ...
MEASURE_CELL = CELL_KEY[:4]
# ... an escalation count's: its tier (which fixes the scope) and CLEC ...
ESCALATION_KEY = ("tier", *MEASURE_CELL, "carrier_id")
# ... and a payment line's: its tier and payee (the CLEC, or a state's fund).
PAYMENT_KEY = ("tier", "payee", *MEASURE_CELL)
# The order of a payee's statement lines (and, after the payee, of the adjustments table).
STATEMENT_ORDER = ("tier", "state", "measure_id", "submeasure", "product")
# The order of cells in the report's tables: a cell's key columns as a reader scans them.
READING_ORDER = ("measure_id", "state", "product", "submeasure", "carrier_id")


def cell_id(measure_id: str, dimensions: Sequence[str], cell: Any) -> tuple[str, ...]:
    """The identity of one cell (a mapping or a pandas row) of a measure split by `dimensions`, as
    text: the same for the engine's cell and for its row read back from the store (the cells that
    missed the month before are found by it), so its text never changes: the aggregate's carrier is
    'None' and a dimension is `field=value`. (Monte Carlo seeds come from the cell's retail pool and
    CLEC sample size instead: carrier_sla.engine.verdicts.monte_carlo_seed.)"""
    carrier = cell.get("carrier_id")
    carrier_text = "None" if _blank(carrier) or carrier == AGGREGATE else str(carrier)
    parts = [measure_id, str(cell["scope"]), carrier_text, str(cell["state"]), str(cell["product"])]
    for d in dimensions:
        value = cell.get(d)
        parts.append(f"{d}={None if _blank(value) else value}")
    return tuple(parts)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# ------------------------------------------------------------------------------------ money


def money(amount: Any, currency: str | None = None, sign: bool = False) -> str:
    """An amount as every command's text prints it: `USD 1,500.00` (thousands grouped, to the cent,
    the currency first when known; `sign`: +/- always shown, for differences). Machine outputs
    (JSON, CSV, Parquet) keep plain decimals such as 1500.00."""
    from decimal import Decimal

    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    text = f"{value:+,.2f}" if sign else f"{value:,.2f}"
    return f"{currency} {text}" if currency else text


# ------------------------------------------------------------------------------- dimensions

# Arrow type of a column by the input contract's field type (carrier_sla.plan.fields.column_type).
ARROW_OF_FIELD_TYPE: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "code": pa.string(),
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


# --------------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str


@dataclass(frozen=True)
class Table:
    """One output table: its partition folders, columns (dimension columns go after
    `dimensions_after`) and what a row is."""

    name: str
    row: str  # what one row is
    partitions: tuple[str, ...]
    columns: tuple[Column, ...]
    dimensions_after: str | None = None  # the column the plan's dimension columns follow
    file_format: str = "parquet"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def schema(self, dimensions: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
        """The Arrow schema of the table's files, with the plan's dimension columns when it has them."""
        fields: list[pa.Field] = []
        for c in self.columns:
            fields.append(pa.field(c.name, c.type))
            if c.name == self.dimensions_after:
                fields += [pa.field(name, kind) for name, kind in (dimensions or {}).items()]
        return pa.schema(fields)


_TEXT, _FLOAT, _INT, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.bool_()
_CODE = pa.dictionary(pa.int32(), pa.string())  # text with few distinct values (dictionary-encoded)
MONEY = pa.decimal128(14, 2)  # money in cents, never a binary float

_CELL = (
    Column("measure_id", _TEXT, "the plan's measure id, e.g. OP-4"),
    Column("submeasure", _TEXT, "the dimension values that split the cell, e.g. dispatch=true; all when unsplit"),
    Column("state", _TEXT, "two-letter state code"),
    Column("product", _TEXT, "the CLEC product code of the cell"),
)
_SCOPE = Column("scope", _TEXT, "clec: one CLEC's cell; clec_aggregate: all CLECs together")
_CARRIER = Column("carrier_id", _TEXT, f"the CLEC of the cell; {AGGREGATE} for the all-CLEC aggregate")

RESULTS = Table(
    "results",
    "one judged cell: measure, state, product, dimension values and CLEC (or the aggregate)",
    ("period",),
    (
        Column("data_period", _TEXT, "the month whose records were judged (earlier for measures reported in arrears)"),
        Column("plan_id", _TEXT, "the plan's id"),
        Column("plan_version", _TEXT, "the plan's version in force for the month"),
        *_CELL,
        _SCOPE,
        _CARRIER,
        Column("standard", _TEXT, "parity, benchmark or diagnostic; null when no standard of the plan matches"),
        Column("direction", _TEXT, "higher_better or lower_better"),
        Column("unit", _TEXT, "the unit of the values, from the plan (percent, hours, days, ...)"),
        Column("clec_n", _INT, "CLEC records counted (lines in service for rates)"),
        Column("clec_numerator", _FLOAT, "CLEC records meeting the measure, or the sum of their values"),
        Column("clec_value", _FLOAT, "the CLEC result in the measure's unit"),
        Column("retail_n", _INT, "retail-analog records counted (lines for rates); null without a parity standard"),
        Column("retail_numerator", _FLOAT, "retail records meeting the measure, or the sum of their values"),
        Column("retail_value", _FLOAT, "the retail-analog result in the measure's unit"),
        Column("retail_stdev", _FLOAT, "standard deviation of the retail values (parity)"),
        Column("benchmark", _FLOAT, "the benchmark target in the measure's unit (benchmark standards)"),
        Column("method", _TEXT, "the test or comparison that gave the verdict"),
        Column("statistic", _FLOAT, "the test statistic (z, t), oriented so that positive is worse for the CLEC"),
        Column("p_value", _FLOAT, "one-tailed p-value of the test"),
        Column("critical_value", _FLOAT, "the critical value the statistic was compared with"),
        Column("alpha", _FLOAT, "the one-tailed significance the p-value was compared with"),
        Column("df", _INT, "degrees of freedom of the modified t test (retail_n - 1)"),
        Column("resamples", _INT, "Monte Carlo resamples drawn (permutation test)"),
        Column(
            "seed",
            _INT,
            "the Monte Carlo seed of the cell's stream of draws (63 bits, from the plan's seed, the cell's retail"
            " pool and its CLEC sample size: shared by the cells of one pool and size)",
        ),
        Column("allowed_misses", _INT, "misses a small-sample benchmark allowance permits"),
        Column("status", _TEXT, "the verdict: " + ", ".join(STATUSES)),
        Column("status_reason", _TEXT, "why a cell got no verdict, in words"),
        Column("clec_records_evaluated", _INT, "CLEC records evaluated, included or excluded"),
        Column("provisional", _BOOL, "month to date: the period had not ended at the data's as-of date"),
        Column("provisional_as_of", _TEXT, "the as-of date of provisional results (YYYY-MM-DD)"),
        Column("excused", _BOOL, "the commission approved an excusal: the verdict stands, nothing is paid"),
        Column("excusal_reference", _TEXT, "the commission's docket or order of the excusal"),
        Column("excusal_reason", _TEXT, "the excusal's reason, in words"),
    ),
    dimensions_after="product",
)

RECORDS = Table(
    "records",
    "one input record in one measure: included or why not, and its value",
    ("period", "measure_id"),
    (
        Column("record_id", _TEXT, "the record's id (order_id, ticket_id; period/carrier/state/product for lines)"),
        Column("record_type", _CODE, "orders, troubles or lines"),
        Column("carrier_id", _CODE, "the carrier of the record (the plan's retail id for the ILEC's own)"),
        Column("state", _CODE, "two-letter state code"),
        Column("product", _CODE, "product code"),
        Column("submeasure", _CODE, "the submeasure label of the record's cell (see results)"),
        Column("included", _BOOL, "whether the record counted in the measure"),
        Column("exclusion_reason", _CODE, "the plan rule's code that excluded it; null when included"),
        Column("value", _FLOAT, "the record's value in the measure (1/0 for proportions, hours, days, lines)"),
        Column("source_file", _CODE, "the input file the record came from"),
        Column("source_row", _INT, "its row in that file (1 = first data row)"),
    ),
    dimensions_after="submeasure",
)

REJECTS = Table(
    "rejects",
    "one input row (or value) the contract refused",
    ("period",),
    (
        Column("record_type", _TEXT, "orders, troubles, lines or excusals"),
        Column("source_file", _TEXT, "the input file"),
        Column("input_row", _INT, "the row in that file (1 = first data row)"),
        Column("record_id", _TEXT, "the record's id, when it could be read"),
        Column("carrier_id", _TEXT, "the record's carrier, when it could be read"),
        Column("input_field", _TEXT, "the input column at fault"),
        Column("raw_value", _TEXT, "the value as read, as text"),
        Column("reason", _TEXT, "the reason code (carrier_sla.inputs.contract.Reason)"),
        Column("message", _TEXT, "the reason in words"),
    ),
)

_LEDGER_CELL = (
    Column("tier", _TEXT, "tier1 (paid to the CLEC) or tier2 (paid to the state fund)"),
    Column("payee", _TEXT, "the CLEC paid, or state_fund:XX"),
    *_CELL,
)

REMEDIES = Table(
    "remedies",
    "one payment line: a missed cell of a tier, its occurrences and amount",
    ("period",),
    (
        *_LEDGER_CELL,
        Column("category", _TEXT, "the measure's remedy category (high, medium, low)"),
        Column("basis", _TEXT, "the plan's payment basis: per occurrence or per measurement"),
        Column("consecutive_months", _INT, "consecutive missed months of the cell, this one included"),
        Column("occurrences_raw", _FLOAT, "occurrences from the threshold before rounding"),
        Column("occurrences", _FLOAT, "occurrences paid, after the plan's rounding (at least 1)"),
        Column("unit_amount", MONEY, "the amount per occurrence (or per measurement)"),
        Column("amount_uncapped", MONEY, "unit_amount x occurrences, before caps"),
        Column("amount", MONEY, "the amount paid, after the state's caps"),
        Column("cap", _TEXT, "monthly or annual when a cap reduced the state's payments"),
        Column("currency", _TEXT, "ISO 4217 currency code of the amounts"),
        Column("provisional", _BOOL, "from provisional (month-to-date) results"),
        _SCOPE,
        _CARRIER,
        Column("method", _TEXT, "the result's method"),
        Column("clec_n", _INT, "the result's clec_n"),
        Column("clec_value", _FLOAT, "the result's clec_value"),
        Column("retail_value", _FLOAT, "the result's retail_value"),
        Column("benchmark", _FLOAT, "the result's benchmark"),
        Column("critical_value_used", _FLOAT, "the critical value the threshold was computed at"),
        Column("threshold", _FLOAT, "the result that would just have passed, in the measure's unit"),
        Column("note", _TEXT, "a remark on the line (e.g. a miss inside the threshold)"),
    ),
)

ESCALATION = Table(
    "escalation",
    "one cell of a tier with its count of consecutive missed months after the month",
    ("period",),
    (
        Column("tier", _TEXT, "tier1 or tier2"),
        *_CELL,
        _CARRIER,
        Column("consecutive_months", _INT, "consecutive missed months (0 after a met month)"),
        Column("last_verdict_period", _TEXT, "the last month the cell had a verdict (met or miss)"),
        Column("as_of_period", _TEXT, "the month the count stands after"),
    ),
)

ADJUSTMENTS = Table(
    "adjustments",
    "one cell of a month restated after its payment: paid, restated and the difference",
    ("period",),
    (
        *_LEDGER_CELL,
        _SCOPE,
        _CARRIER,
        Column("paid", MONEY, "what the month's last final publication paid (0.00: the cell was not paid)"),
        Column("paid_run_id", _TEXT, "the run of that publication"),
        Column("restated", MONEY, "what this publication pays (0.00: the cell pays nothing now)"),
        Column("restated_run_id", _TEXT, "this run"),
        Column("adjustment", MONEY, "restated - paid; 0.00 outside the plan's restatement lookback"),
        Column("within_lookback", _BOOL, "whether the month is within restatement.lookback_months"),
        Column("currency", _TEXT, "ISO 4217 currency code"),
        Column("note", _TEXT, "a remark (e.g. outside the lookback)"),
    ),
)

# Statements are CSV files, one per payee (STATEMENT_FILE), for a CLEC to open in a spreadsheet:
# every value is text, and `period` stays in the file, which travels alone.
STATEMENTS = Table(
    "statements",
    "one payment line of a payee's statement, then a total line",
    ("period",),
    (
        Column("line", _TEXT, "the line number, or total"),
        Column("period", _TEXT, "the month paid for (in the file: a statement travels alone)"),
        Column("payee", _TEXT, "the CLEC paid, or state_fund:XX"),
        Column("tier", _TEXT, "tier1 or tier2"),
        *_CELL,
        Column("category", _TEXT, "the measure's remedy category"),
        Column("consecutive_months", _TEXT, "consecutive missed months"),
        Column("occurrences", _TEXT, "occurrences paid"),
        Column("unit_amount", _TEXT, "amount per occurrence, 0.00"),
        Column("amount_uncapped", _TEXT, "before caps, 0.00"),
        Column("amount", _TEXT, "paid, 0.00"),
        Column("currency", _TEXT, "ISO 4217 currency code"),
        Column("paid", _TEXT, "restated months: what was paid before"),
        Column("restated", _TEXT, "restated months: what is paid now"),
        Column("adjustment", _TEXT, "restated months: restated - paid"),
        Column("paid_run_id", _TEXT, "restated months: the run that paid"),
        Column("restated_run_id", _TEXT, "restated months: this run"),
        Column("note", _TEXT, "restated months: a remark"),
    ),
    file_format="csv",
)

TABLES: dict[str, Table] = {
    t.name: t for t in (RESULTS, RECORDS, REJECTS, REMEDIES, ESCALATION, STATEMENTS, ADJUSTMENTS)
}


def table_markdown(tables: Iterable[Table] = TABLES.values()) -> str:
    """The README's description of the output tables, generated from this module."""
    out = []
    for t in tables:
        path = "/".join(f"{p}=..." for p in t.partitions)
        kind = "CSV, one file per payee" if t.file_format == "csv" else "Parquet"
        out.append(f"#### {t.name}\n\n`STORE/{t.name}/{path}/` ({kind}). One row: {t.row}.\n")
        out.append("| column | type | description |\n| --- | --- | --- |")
        for c in t.columns:
            out.append(f"| `{c.name}` | {_type_text(c.type)} | {c.description} |")
            if c.name == t.dimensions_after:
                out.append(
                    "| *dimensions* | bool or text | one column per field the plan splits cells by "
                    "(e.g. `dispatch`), typed as the input field |"
                )
        out.append("")
    return "\n".join(out)


def _type_text(kind: pa.DataType) -> str:
    if pa.types.is_dictionary(kind):
        return "text (dictionary)"
    if pa.types.is_decimal(kind):
        return "decimal(14,2)"
    return {"string": "text", "int64": "int64", "double": "float64", "bool": "bool"}.get(str(kind), str(kind))
