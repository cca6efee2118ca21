"""The plan of a what-if: a plan document changed by `--set` specs, applied in order.

    exclusion.CODE=off             remove every exclusion rule with that code, from every measure
    MEASURE.exclusion.CODE=off     the same, in one measure
    /json/pointer=VALUE            set the value at an RFC 6901 pointer (the last token may be a new
                                   key of an object, or '-' to append to an array); VALUE is parsed
                                   as JSON, else taken as text; nothing is evaluated as code

`apply_sets` edits a copy of the document and never the caller's; a bad spec is a UsageError naming
it. `what_if_plan` picks the document (another plan, or the baseline run's) and validates the result
like any plan (PlanError lists every problem with its pointer).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from carrier_sla.errors import UsageError
from carrier_sla.plan.load import Plan, plan_from_document
from carrier_sla.plan.versions import load_versions

_EXCLUSION_SPEC = re.compile(r"^(?:(?P<measure>[^.=/]+)\.)?exclusion\.(?P<code>[^.=]+)=(?P<value>.*)$")


def apply_sets(document: dict[str, Any], specs: list[str]) -> dict[str, Any]:
    """A copy of the plan document with every --set spec applied in order (UsageError on a bad spec)."""
    doc = copy.deepcopy(document)
    for spec in specs:
        if spec.startswith("/"):
            if "=" not in spec:
                raise UsageError(f"--set {spec!r}: expected /json/pointer=VALUE")
            pointer, text = spec.split("=", 1)
            _set_pointer(doc, pointer, _parse_value(text), spec)
            continue
        match = _EXCLUSION_SPEC.match(spec)
        if match is None:
            raise UsageError(
                f"--set {spec!r}: expected exclusion.CODE=off, MEASURE.exclusion.CODE=off or /json/pointer=VALUE"
            )
        if match["value"] != "off":
            raise UsageError(f"--set {spec!r}: an exclusion rule can only be turned off (CODE=off)")
        _exclusion_off(doc, match["measure"], match["code"], spec)
    return doc


def _parse_value(text: str) -> Any:
    """JSON when it parses as JSON (NaN and Infinity excluded), else the text itself."""

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=no_constants)
    except ValueError:
        return text


def _set_pointer(doc: Any, pointer: str, value: Any, spec: str) -> None:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    node, walked = doc, ""
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise UsageError(f"--set {spec!r}: the plan has nothing at {walked}/{token}")
        walked += "/" + token
    last = tokens[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last == "-":
        node.append(value)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, list):
        raise UsageError(f"--set {spec!r}: {walked} has {len(node)} items: use an index below that, or '-' to append")
    else:
        raise UsageError(f"--set {spec!r}: {walked or '/'} is a value, not an object or array")


def _exclusion_off(doc: dict[str, Any], measure_id: str | None, code: str, spec: str) -> None:
    measures = doc.get("measures", [])
    if measure_id is not None:
        measures = [m for m in measures if m.get("id") == measure_id]
        if not measures:
            known = ", ".join(m.get("id", "?") for m in doc.get("measures", []))
            raise UsageError(f"--set {spec!r}: the plan has no measure {measure_id} (measures: {known})")
    removed = 0
    for measure in measures:
        kept = [e for e in measure.get("exclusions", []) if e.get("code") != code]
        removed += len(measure.get("exclusions", [])) - len(kept)
        measure["exclusions"] = kept
    if not removed:
        codes = sorted({e.get("code") for m in measures for e in m.get("exclusions", [])})
        where = f"measure {measure_id}" if measure_id else "any measure"
        raise UsageError(f"--set {spec!r}: no exclusion rule {code!r} in {where} (codes: {', '.join(codes)})")


def what_if_plan(
    other: str | None, specs: list[str], document: dict[str, Any] | None, run_id: str, period: str
) -> Plan:
    """The plan to recompute `period` under: the plan `other` (a file, a bundled plan id, or a folder of
    versions: the version in force in `period`) or else the baseline run's plan `document`, with every
    spec applied; UsageError when neither is there to change, or no version of the folder is in force."""
    if other:
        loaded = load_versions(other).for_period(period)
        return plan_from_document(apply_sets(loaded.document, specs), loaded.source) if specs else loaded
    if document is None:
        raise UsageError(f"run {run_id} kept no plan.json and its plan file has changed since: give --plan with --set")
    return plan_from_document(apply_sets(document, specs), f"run {run_id} plan.json")
