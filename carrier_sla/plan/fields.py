"""The fields a plan may name, per record type: input columns and derived fields.

Input columns and their types come from the record contract (schemas/records/*.json);
derived fields are computed by carrier_sla.engine.evaluate from them. This is the closed
vocabulary that plan conditions and value rules refer to.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carrier_sla import vocabulary

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "records"

# Derived fields: name -> (type, meaning). Computed per record in local time of its state.
DERIVED: dict[str, dict[str, tuple[str, str]]] = {
    "orders": {
        "is_test": ("bool", "test flag set, or the carrier is one of the plan's test carriers"),
        "received_date": ("date", "local date of received_at"),
        "effective_received_date": (
            "date",
            "received_date, or the next business day when received strictly after the order cut-off "
            "or on a non-business day",
        ),
        "standard_due_date": (
            "date",
            "effective_received_date plus the product's standard interval in business days",
        ),
        "completed_date": ("date", "local date of completed_at"),
        "foc_date": ("date", "local date of foc_at"),
    },
    "troubles": {
        "is_test": ("bool", "test flag set, or the carrier is one of the plan's test carriers"),
        "received_date": ("date", "local date of received_at"),
        "cleared_date": ("date", "local date of cleared_at"),
    },
    "lines": {},
}
# The input column each derived field is computed from (is_test also from the plan's test carriers),
# so that a reader can show the input a derived field came from.
DERIVED_FROM: dict[str, dict[str, str]] = {
    "orders": {
        "is_test": "test",
        "received_date": "received_at",
        "effective_received_date": "received_at",
        "standard_due_date": "received_at",
        "completed_date": "completed_at",
        "foc_date": "foc_at",
    },
    "troubles": {"is_test": "test", "received_date": "received_at", "cleared_date": "cleared_at"},
    "lines": {},
}

# Derived dates computed with business days, and the date each is counted from: a measure that
# reads one needs the plan's holidays of every year from that date to it (carrier_sla.engine.holiday_years).
BUSINESS_DAY_FIELDS: dict[str, dict[str, str]] = {
    "orders": {"effective_received_date": "received_date", "standard_due_date": "received_date"},
}


@cache
def record_schema(record_type: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{record_type}.schema.json").read_text())


def column_type(prop: dict[str, Any]) -> str:
    """The contract type of one schema property: timestamp, date, bool, integer, number, code, string."""
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    base = next(t for t in types if t != "null")
    if base == "string" and prop.get("format") == "date-time":
        return "timestamp"
    if base == "string" and prop.get("format") == "date":
        return "date"
    if base == "string" and ("enum" in prop or "x-codes" in prop or "pattern" in prop):
        return "code"
    return {"boolean": "bool", "integer": "integer", "number": "number"}.get(base, "string")


@cache
def fields_of(record_type: str) -> dict[str, str]:
    """Field name -> type for every field of a record type a plan may refer to."""
    props = record_schema(record_type)["properties"]
    out = {name: column_type(prop) for name, prop in props.items()}
    out.update({name: kind for name, (kind, _) in DERIVED[record_type].items()})
    return out


def dimension_types(plan: Any) -> dict[str, pa.DataType]:
    """Every dimension field the plan's measures split by (in first-use order), with its Arrow
    type from the field's type in the contract of the record type the measure reads."""
    out: dict[str, pa.DataType] = {}
    for m in plan.measures:
        for d in m.dimensions:
            if d.field not in out:
                out[d.field] = vocabulary.ARROW_OF_FIELD_TYPE[fields_of(m.records)[d.field]]
    return out
