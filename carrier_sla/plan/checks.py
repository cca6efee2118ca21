"""Checks of a plan document: JSON Schema, then cross-references the schema cannot see.

Every problem is collected, each with its JSON pointer; nothing stops at the first.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from carrier_sla.errors import PlanProblem
from carrier_sla.plan import fields
from carrier_sla.plan.remedy_rules import remedies_problems

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def clock_seconds(text: str) -> int:
    """Seconds after midnight of an HH:MM[:SS] clock time."""
    parts = [int(x) for x in text.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def plan_schema() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "plan.schema.json").read_text())


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path) if path else ""


def schema_problems(document: Any) -> list[PlanProblem]:
    """Every JSON Schema violation of a plan document, with its JSON pointer; holidays in the
    form plans had before they listed them (country, subdivision, extra_dates) are one problem
    saying what to do, not the schema's complaints about each key."""
    validator = jsonschema.Draft202012Validator(plan_schema(), format_checker=jsonschema.FormatChecker())
    old = _old_holiday_forms(document)
    problems = [PlanProblem(pointer, OLD_HOLIDAYS) for pointer in old]
    for error in validator.iter_errors(document):
        for shown in _explain(error):
            pointer = _pointer(shown.absolute_path)
            if not any(pointer == o or pointer.startswith(o + "/") for o in old):
                problems.append(PlanProblem(pointer, shown.message))
    return problems


OLD_HOLIDAY_KEYS = ("country", "subdivision", "extra_dates")
OLD_HOLIDAYS = (
    'holidays are listed per year by the plan itself now ({"2026": ["2026-01-01", ...], ...}), so that '
    "the plan's sha256 covers them: the country/subdivision/extra_dates form is no longer read. Print the list "
    "with `carrier-sla holidays --country US --years 2020-2035` (--subdivision for a state's holidays), paste "
    "it here, leave out the days the ILEC works and add the extra dates to their years"
)


def _old_holiday_forms(document: Any) -> list[str]:
    """Pointers of holiday objects in the old form, as far as the document's shape shows them."""
    if not isinstance(document, dict):
        return []
    found: list[tuple[str, Any]] = []
    if isinstance(document.get("calendar"), dict):
        found.append(("/calendar/holidays", document["calendar"].get("holidays")))
    if isinstance(document.get("states"), list):
        found += [
            (f"/states/{i}/holidays", s.get("holidays"))
            for i, s in enumerate(document["states"])
            if isinstance(s, dict)
        ]
    return [pointer for pointer, spec in found if isinstance(spec, dict) and any(k in spec for k in OLD_HOLIDAY_KEYS)]


def _explain(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors worth showing for one schema error.

    For a oneOf over value kinds, the errors of the branch whose `kind` matches the
    document (not a guess across all branches); otherwise jsonschema's best match.
    """
    if not error.context:
        return [error]
    if error.validator == "oneOf" and isinstance(error.instance, dict) and "kind" in error.instance:
        branches: dict[object, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        matching = [
            errs
            for errs in branches.values()
            if not any(list(e.schema_path)[-2:] == ["kind", "const"] or list(e.path) == ["kind"] for e in errs)
        ]
        if len(matching) == 1:
            return matching[0]
    return [best_match(error.context)]


def _holiday_problems(spec: dict[str, Any], pointer: str) -> list[PlanProblem]:
    """Each listed date in its own year, and listed once (the schema checks the dates' form)."""
    out: list[PlanProblem] = []
    if any(k in spec for k in OLD_HOLIDAY_KEYS):
        return out  # the old form: one problem from schema_problems
    for year, items in spec.items():
        seen: set[dt.date] = set()
        for j, item in enumerate(items):
            text = item if isinstance(item, str) else item.get("date") if isinstance(item, dict) else None
            try:
                day = dt.date.fromisoformat(text) if isinstance(text, str) else None
            except ValueError:
                day = None  # not a date: the schema says so
            if day is None:
                continue
            if str(day.year) != year:
                out.append(
                    PlanProblem(f"{pointer}/{year}/{j}", f"{text} is not in {year}: list each date under its own year")
                )
            elif day in seen:
                out.append(PlanProblem(f"{pointer}/{year}/{j}", f"{text} is listed twice"))
            seen.add(day)
    return out


def reference_problems(doc: dict[str, Any]) -> list[PlanProblem]:
    """Problems JSON Schema cannot see: unknown products, fields, zones, calendars."""
    out: list[PlanProblem] = []
    add = lambda ptr, msg: out.append(PlanProblem(ptr, msg))  # noqa: E731

    products = {p["code"]: p for p in doc["products"]}
    if len(products) != len(doc["products"]):
        add("/products", "product codes are not unique")
    for i, p in enumerate(doc["products"]):
        analog = p.get("retail_analog")
        if p["family"] == "retail" and analog:
            add(f"/products/{i}/retail_analog", "a retail product has no retail analog")
        if p["family"] != "retail":
            if not analog:
                add(f"/products/{i}/retail_analog", f"CLEC product {p['code']} needs a retail analog")
            elif analog not in products or products[analog]["family"] != "retail":
                add(f"/products/{i}/retail_analog", f"unknown retail product {analog!r}")
    codes = [s["code"] for s in doc["states"]]
    if len(set(codes)) != len(codes):
        add("/states", "state codes are not unique")
    for i, s in enumerate(doc["states"]):
        try:
            zoneinfo.ZoneInfo(s["time_zone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            add(f"/states/{i}/time_zone", f"unknown IANA time zone {s['time_zone']!r}")
        if "holidays" in s:
            out.extend(_holiday_problems(s["holidays"], f"/states/{i}/holidays"))
    cal = doc["calendar"]
    out.extend(_holiday_problems(cal["holidays"], "/calendar/holidays"))
    if "1" not in cal.get("weekmask", "1111100"):
        add("/calendar/weekmask", "no business day: at least one day of the week (Monday..Sunday) must be 1")
    if clock_seconds(cal["business_hours"]["start"]) >= clock_seconds(cal["business_hours"]["end"]):
        add("/calendar/business_hours", "start must be before end")
    if doc.get("effective_to") and doc["effective_to"] < doc["effective_from"]:
        add("/effective_to", "ends before effective_from")
    if doc["retail_carrier_id"] in doc.get("test_carrier_ids", []):
        add("/test_carrier_ids", "the retail carrier cannot be a test carrier")

    out.extend(_statistics_problems(doc["statistics"]))
    if "restatement" in doc and "remedies" not in doc:
        add("/restatement", "a plan without remedies pays nothing, so there is no money for a restatement to adjust")
    if "remedies" in doc:
        out.extend(remedies_problems(doc["remedies"], [m["id"] for m in doc["measures"]], codes))
    ids = [m["id"] for m in doc["measures"]]
    log_t = _routes_to_modified_t_log(doc["statistics"])
    for i, m in enumerate(doc["measures"]):
        if ids.count(m["id"]) > 1:
            add(f"/measures/{i}/id", f"duplicate measure id {m['id']!r}")
        if log_t and m.get("type") == "mean" and "unit_of_measurement" not in m:
            add(
                f"/measures/{i}",
                "a mean measure tested by modified_t_log needs unit_of_measurement (the step its values are "
                "recorded in: the log offset is log_offset x that unit)",
            )
        try:
            out.extend(_measure_problems(m, f"/measures/{i}", products, codes))
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            continue  # a measure broken in shape: its schema problems say what is wrong
    return out


METHOD_TYPES = {
    "modified_z": ("mean", "proportion", "rate"),
    "modified_t_log": ("mean",),
    "permutation": ("mean",),
    "fisher_exact": ("proportion",),
    "binomial_exact": ("rate",),
}


def _routes_to_modified_t_log(st: dict[str, Any]) -> bool:
    """Whether a mean cell of this plan can be tested by the modified t on logs."""
    routes = st.get("routing", {}).get("mean", [])
    return st.get("parity_method") == "modified_t_log" or any(r.get("method") == "modified_t_log" for r in routes)


def _statistics_problems(st: dict[str, Any]) -> list[PlanProblem]:
    out = []
    thresholds = [k for k in ("critical_value", "critical_values", "alpha") if k in st]
    if len(thresholds) != 1:
        out.append(
            PlanProblem(
                "/statistics",
                f"give exactly one of critical_value, critical_values, alpha (found: {thresholds or 'none'})",
            )
        )
    if "alpha_after_miss" in st and "alpha" not in st:
        out.append(PlanProblem("/statistics/alpha_after_miss", "needs alpha"))
    if st["parity_method"] == "modified_t_log" and "alpha" not in st:
        out.append(PlanProblem("/statistics/parity_method", "modified_t_log is judged by alpha"))
    for kind, routes in st.get("routing", {}).items():
        if kind == "undefined_statistic":
            continue  # a setting, not a list of routes
        last = 0
        for j, route in enumerate(routes):
            if kind not in METHOD_TYPES[route["method"]]:
                out.append(
                    PlanProblem(f"/statistics/routing/{kind}/{j}/method", f"{route['method']} does not test a {kind}")
                )
            if "max_clec_n" in route:
                if route["max_clec_n"] <= last:
                    out.append(PlanProblem(f"/statistics/routing/{kind}/{j}/max_clec_n", "sample sizes must increase"))
                last = route["max_clec_n"]
    permutation = st.get("permutation", {})
    h, most = permutation.get("sequential", {}).get("h"), permutation.get("resamples", 100_000)
    if h is not None and h > most:
        out.append(
            PlanProblem(
                "/statistics/permutation/sequential/h", f"h = {h} exceeds resamples ({most}): no test could stop"
            )
        )
    for tier, rows in st.get("critical_values", {}).items():
        last = 0
        for j, row in enumerate(rows):
            ptr = f"/statistics/critical_values/{tier}/{j}"
            if "max_n" not in row and j != len(rows) - 1:
                out.append(PlanProblem(ptr, "only the last row may omit max_n"))
            elif "max_n" in row:
                if row["max_n"] <= last:
                    out.append(PlanProblem(f"{ptr}/max_n", "sample sizes must increase"))
                last = row["max_n"]
        if rows and "max_n" in rows[-1]:
            out.append(
                PlanProblem(
                    f"/statistics/critical_values/{tier}",
                    "the last row must omit max_n (it covers every larger sample)",
                )
            )
    return out


def _measure_problems(m: dict[str, Any], base: str, products: dict[str, Any], states: list[str]) -> list[PlanProblem]:
    out: list[PlanProblem] = []
    add = lambda ptr, msg: out.append(PlanProblem(base + ptr, msg))  # noqa: E731
    rtype = m["records"]

    def check_field(ptr: str, name: str, kinds: tuple[str, ...] | None = None, of: str = rtype) -> None:
        available = fields.fields_of(of)
        if name not in available:
            add(ptr, f"unknown field {name!r} of {of} (known: {', '.join(sorted(available))})")
        elif kinds and available[name] not in kinds:
            add(ptr, f"field {name!r} is a {available[name]}, expected {' or '.join(kinds)}")

    def check_conditions(ptr: str, conds: list[dict[str, Any]], of: str = rtype) -> None:
        for j, c in enumerate(conds):
            bool_op = c["op"] in ("is_true", "is_false")
            check_field(f"{ptr}/{j}/field", c["field"], ("bool",) if bool_op else None, of=of)
            if "field_ref" in c:
                check_field(f"{ptr}/{j}/field_ref", c["field_ref"], of=of)

    check_field("/period_by", m["period_by"], ("timestamp",))
    for j, e in enumerate(m["exclusions"]):
        check_conditions(f"/exclusions/{j}/when", e["when"])
    codes = [e["code"] for e in m["exclusions"]]
    if len(set(codes)) != len(codes):
        add("/exclusions", "exclusion codes are not unique")

    dims = [d["field"] for d in m.get("dimensions", [])]
    for j, d in enumerate(m.get("dimensions", [])):
        check_field(f"/dimensions/{j}/field", d["field"], ("bool", "code"))
        for k, p in enumerate(d.get("products", [])):
            if p not in products or products[p]["family"] == "retail":
                add(f"/dimensions/{j}/products/{k}", f"unknown CLEC product {p!r}")

    v = m["value"]
    kind = v["kind"]
    vp = "/value"
    if kind in ("within_business_hours", "duration_hours"):
        check_field(f"{vp}/from", v["from"], ("timestamp",))
        check_field(f"{vp}/to", v["to"], ("timestamp",))
    if kind == "within_business_hours" and isinstance(v["limit_hours"], dict):
        check_field(f"{vp}/limit_hours/by", v["limit_hours"]["by"], ("code",))
    if kind == "duration_hours" and "minus" in v:
        check_field(f"{vp}/minus", v["minus"], ("number",))
    if kind == "on_or_before":
        check_field(f"{vp}/date", v["date"], ("date",))
        check_field(f"{vp}/deadline", v["deadline"], ("date",))
    if kind == "business_days":
        check_field(f"{vp}/from", v["from"], ("date",))
        check_field(f"{vp}/to", v["to"], ("date",))
    if kind == "related_record":
        names = (
            [(f"{vp}/match_on", v["match_on"])]
            if isinstance(v["match_on"], str)
            else [(f"{vp}/match_on/{j}", name) for j, name in enumerate(v["match_on"])]
        )
        for ptr, name in names:  # a field of this record and of the related one (the schema checks the type)
            if not isinstance(name, str):
                continue
            check_field(ptr, name, ("string", "code"))
            check_field(ptr, name, ("string", "code"), of=v["records"])
        windows = [k for k in ("window_hours", "window_days") if k in v]
        if len(windows) != 1:
            add(vp, f"give exactly one of window_hours, window_days (found: {', '.join(windows) or 'none'})")
        check_field(f"{vp}/anchor", v["anchor"], ("timestamp",))
        check_field(f"{vp}/related_time", v.get("related_time", "received_at"), ("timestamp",), of=v["records"])
        check_conditions(f"{vp}/where", v.get("where", []), of=v["records"])

    binary = kind in ("within_business_hours", "on_or_before", "related_record") or (
        kind == "duration_hours" and "at_most" in v
    )
    if m["type"] == "proportion" and not binary:
        add(vp, f"a proportion needs a 0/1 value; {kind} without at_most gives a quantity")
    if m["type"] == "mean" and (binary or kind == "count"):
        add(vp, f"a mean needs a quantity; {kind} gives 0/1 or a count")
    if m["type"] == "rate" and kind != "count":
        add(vp, "a rate counts records: use kind count")
    if m["type"] != "rate" and "rate_base" in m:
        add("/rate_base", "only a rate has a base")

    for j, s in enumerate(m["standards"]):
        for key, values in s.get("when", {}).items():
            if key == "products":
                for k, p in enumerate(values):
                    if p not in products:
                        add(f"/standards/{j}/when/products/{k}", f"unknown product {p!r}")
            elif key == "states":
                for k, st in enumerate(values):
                    if st not in states:
                        add(f"/standards/{j}/when/states/{k}", f"unknown state {st!r}")
            elif key not in dims:
                add(f"/standards/{j}/when/{key}", f"{key!r} is neither products, states nor a dimension of the measure")
        if s["type"] == "benchmark" and m["type"] == "proportion" and not 0 <= s["target"] <= 100:
            add(f"/standards/{j}/target", "a percentage benchmark lies in 0..100")
        if s["type"] == "benchmark" and m["type"] == "rate":
            add(f"/standards/{j}", "benchmarks on rates are not supported")
    return out
