"""Preflight of the inputs: every record type's files exist and carry the required columns."""

from __future__ import annotations

from pathlib import Path

from carrier_sla import ingest
from carrier_sla.errors import InputDataError
from carrier_sla.fields import record_schema
from carrier_sla.inputs import needed_record_types
from carrier_sla.plan import Plan


def check_data_columns(plan: Plan, data_dir: Path) -> list[str]:
    """One line per input file found; raise InputDataError listing every missing column."""
    found = ingest.discover(Path(data_dir), needed_record_types(plan))
    lines, problems = [], []
    for rtype, files in found.items():
        required = record_schema(rtype)["required"]
        for source in files:
            names = ingest.read_columns_only(source)
            missing = [c for c in required if c not in names]
            if missing:
                problems.append(f"{source.path}: missing required column(s) {', '.join(missing)}")
            else:
                lines.append(f"{rtype}: {source.path} has every required column")
    if problems:
        first = problems[0]
        raise InputDataError("\n".join(problems), file=first.split(":")[0])
    return lines
