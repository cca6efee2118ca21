"""Load a plan, validate it, and build the frozen spec the engine trusts.

A plan is JSON (or YAML) validated against schemas/plan.schema.json, then checked for
cross-references (products, fields, dimensions, time zones, holiday calendars). Every
problem is collected and reported at once with its JSON pointer. Nothing in a plan is
evaluated as code: conditions are (field, op, value) triples from a closed vocabulary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import holidays as holidays_pkg
import jsonschema
from jsonschema.exceptions import best_match

from carrier_sla import fields
from carrier_sla.errors import PlanError, PlanProblem

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
PLANS_DIR = Path(__file__).resolve().parent / "plans"


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None  # a scalar, or a tuple for in / not_in
    field_ref: str | None = None


@dataclass(frozen=True)
class Exclusion:
    code: str
    when: tuple[Condition, ...]
    description: str = ""


@dataclass(frozen=True)
class ValueSpec:
    """How one record's value is computed; `kind` picks the evaluator, the rest are its fields."""

    kind: str
    from_field: str | None = None
    to_field: str | None = None
    limit_hours: float | None = None
    limit_by: str | None = None
    limit_values: tuple[tuple[str, float], ...] = ()
    minus: str | None = None
    at_most: float | None = None
    records: str | None = None
    match_on: str | None = None
    anchor: str | None = None
    related_time: str | None = None
    window_hours: float | None = None
    direction: str | None = None
    outcome: str | None = None
    where: tuple[Condition, ...] = ()

    @property
    def binary(self) -> bool:
        """True when the value is 0/1 (a proportion's numerator contribution)."""
        return self.kind in ("within_business_hours", "on_or_before", "related_record") or (
            self.kind == "duration_hours" and self.at_most is not None
        )


@dataclass(frozen=True)
class Standard:
    type: str  # parity | benchmark | diagnostic
    target: float | None = None
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class Dimension:
    field: str
    products: tuple[str, ...] | None = None  # CLEC products the split applies to; None = all

    def applies_to(self, product: str) -> bool:
        return self.products is None or product in self.products


@dataclass(frozen=True)
class RateBase:
    records: str
    field: str
    per: float


@dataclass(frozen=True)
class Measure:
    id: str
    title: str
    records: str
    period_by: str
    type: str  # proportion | mean | rate
    direction: str  # higher_better | lower_better
    value: ValueSpec
    exclusions: tuple[Exclusion, ...]
    standards: tuple[Standard, ...]
    unit: str = ""
    arrears_months: int = 0
    dimensions: tuple[Dimension, ...] = ()
    rate_base: RateBase | None = None

    @property
    def scale(self) -> float:
        """Factor from the tested quantity to the reported one (percent, per 100 lines)."""
        if self.type == "rate" and self.rate_base is not None:
            return self.rate_base.per
        return 100.0 if self.type == "proportion" and self.unit == "percent" else 1.0


@dataclass(frozen=True)
class HolidaySpec:
    country: str
    subdivision: str | None = None
    extra_dates: tuple[dt.date, ...] = ()


@dataclass(frozen=True)
class State:
    code: str
    time_zone: str
    holidays: HolidaySpec


@dataclass(frozen=True)
class Product:
    code: str
    family: str
    standard_interval_days: int
    retail_analog: str | None = None
    title: str = ""

    @property
    def is_retail(self) -> bool:
        return self.family == "retail"


@dataclass(frozen=True)
class CalendarSpec:
    weekmask: str
    business_start_s: int  # seconds after local midnight
    business_end_s: int
    order_cutoff_s: int


@dataclass(frozen=True)
class Route:
    method: str
    max_clec_n: int | None = None


@dataclass(frozen=True)
class Statistics:
    """How parity cells are tested and judged (plan section `statistics`)."""

    parity_method: str
    critical_value: float | None = None
    critical_values: tuple[tuple[str, tuple[tuple[int | None, float], ...]], ...] = ()  # tier -> (max_n, value)
    alpha: float | None = None
    alpha_after_miss: float | None = None
    routing: tuple[tuple[str, tuple[Route, ...]], ...] = ()  # measure type -> routes
    resamples: int = 100_000
    lattice: tuple[tuple[str, float], ...] = ()  # measure unit -> lattice step
    log_offset: float = 0.4
    seed: int = 0
    allowance_types: tuple[str, ...] = ()

    def method_for(self, measure_type: str, clec_n: int) -> str:
        """The method the plan routes a cell of this type and CLEC sample size to."""
        for route in dict(self.routing).get(measure_type, ()):
            if route.max_clec_n is None or clec_n <= route.max_clec_n:
                return route.method
        return self.parity_method

    def critical_value_for(self, scope: str, n: int) -> float | None:
        """The critical value for a cell of this scope and CLEC sample size (None when judged by alpha)."""
        if self.critical_value is not None:
            return self.critical_value
        tables = dict(self.critical_values)
        table = tables.get(scope) or tables.get("clec")
        if table is None:
            return None
        for max_n, value in table:
            if max_n is None or n <= max_n:
                return value
        return table[-1][1]


@dataclass(frozen=True)
class Plan:
    id: str
    version: str
    title: str
    effective_from: dt.date
    effective_to: dt.date | None
    retail_carrier_id: str
    test_carrier_ids: tuple[str, ...]
    calendar: CalendarSpec
    states: tuple[State, ...]
    products: tuple[Product, ...]
    statistics: Statistics
    measures: tuple[Measure, ...]
    notice: str = ""
    # provenance, not content: a plan dumped and loaded again (or the same plan as YAML) is equal
    sha256: str = field(default="", compare=False)
    source: str = field(default="", compare=False)
    document: Any = field(default=None, compare=False, hash=False, repr=False)  # the validated JSON, for dump_plan

    def product(self, code: str) -> Product:
        return next(p for p in self.products if p.code == code)

    def measure(self, measure_id: str) -> Measure:
        return next(m for m in self.measures if m.id == measure_id)

    @property
    def state_codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.states)


# ---------------------------------------------------------------------------- loading


def resolve_plan_path(plan: str | Path) -> Path:
    """A path to a plan file, or the id of a bundled plan (e.g. example-qc)."""
    path = Path(plan)
    if path.is_file():
        return path
    bundled = PLANS_DIR / f"{plan}.json"
    if bundled.is_file():
        return bundled
    known = ", ".join(sorted(p.stem for p in PLANS_DIR.glob("*.json")))
    raise PlanError(str(plan), [PlanProblem("", f"no such plan file or bundled plan id (bundled: {known})")])


def bundled_plan_ids() -> list[str]:
    return sorted(p.stem for p in PLANS_DIR.glob("*.json"))


def _read_document(path: Path) -> tuple[Any, bytes]:
    raw = path.read_bytes()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml  # optional: pip install carrier_sla[yaml]
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise PlanError(str(path), [PlanProblem("", "YAML plans need PyYAML (pip install PyYAML)")]) from exc

            class _PlanLoader(yaml.SafeLoader):
                """Safe loading that keeps unquoted ISO dates as text, as the plan schema expects."""

            _PlanLoader.yaml_implicit_resolvers = {
                first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
                for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
            }
            try:
                return yaml.load(raw, Loader=_PlanLoader), raw  # a SafeLoader: no arbitrary objects
            except yaml.YAMLError as exc:  # not a ValueError: name it here
                raise ValueError(str(exc)) from exc
        return json.loads(raw), raw
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlanError(str(path), [PlanProblem("", f"not valid JSON/YAML: {exc}")]) from exc


def plan_schema() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "plan.schema.json").read_text())


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path) if path else ""


def schema_problems(document: Any) -> list[PlanProblem]:
    """Every JSON Schema violation of a plan document, with its JSON pointer."""
    validator = jsonschema.Draft202012Validator(plan_schema(), format_checker=jsonschema.FormatChecker())
    problems = []
    for error in validator.iter_errors(document):
        for shown in _explain(error):
            problems.append(PlanProblem(_pointer(shown.absolute_path), shown.message))
    return problems


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


def load_plan(plan: str | Path) -> Plan:
    """Load, validate and freeze a plan; raise PlanError listing every problem."""
    path = resolve_plan_path(plan)
    document, raw = _read_document(path)
    problems = all_problems(document)
    if problems:
        raise PlanError(str(path), problems)
    return build_plan(document, sha256=hashlib.sha256(raw).hexdigest(), source=str(path))


def all_problems(document: Any) -> list[PlanProblem]:
    """Schema problems and, as far as the document's shape allows, cross-reference problems."""
    problems = schema_problems(document)
    try:
        problems += reference_problems(document)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        if not problems:  # pragma: no cover - the schema guarantees the shape reference checks read
            raise
    return sorted(set(problems))


def dump_plan(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON document; load_plan of it gives an equal spec."""
    return json.loads(json.dumps(plan.document))


def plan_from_document(document: Any, source: str = "<document>") -> Plan:
    """Validate and freeze a plan given as a parsed document (used by tests and what-if tools)."""
    problems = all_problems(document)
    if problems:
        raise PlanError(source, problems)
    raw = json.dumps(document, sort_keys=True).encode()
    return build_plan(document, sha256=hashlib.sha256(raw).hexdigest(), source=source)


# ------------------------------------------------------------------- cross-references


def _holiday_problem(spec: dict[str, Any]) -> str | None:
    try:
        holidays_pkg.country_holidays(spec["country"], subdiv=spec.get("subdivision"), years=2000)
    except (NotImplementedError, KeyError, ValueError) as exc:
        return f"unknown holiday calendar {spec['country']}/{spec.get('subdivision')}: {exc}"
    return None


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
        if "holidays" in s and (msg := _holiday_problem(s["holidays"])):
            add(f"/states/{i}/holidays", msg)
    cal = doc["calendar"]
    if msg := _holiday_problem(cal["holidays"]):
        add("/calendar/holidays", msg)
    if _clock(cal["business_hours"]["start"]) >= _clock(cal["business_hours"]["end"]):
        add("/calendar/business_hours", "start must be before end")
    if doc.get("effective_to") and doc["effective_to"] < doc["effective_from"]:
        add("/effective_to", "ends before effective_from")
    if doc["retail_carrier_id"] in doc.get("test_carrier_ids", []):
        add("/test_carrier_ids", "the retail carrier cannot be a test carrier")

    out.extend(_statistics_problems(doc["statistics"]))
    ids = [m["id"] for m in doc["measures"]]
    for i, m in enumerate(doc["measures"]):
        if ids.count(m["id"]) > 1:
            add(f"/measures/{i}/id", f"duplicate measure id {m['id']!r}")
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
        check_field(f"{vp}/match_on", v["match_on"], ("string", "code"))
        check_field(f"{vp}/match_on", v["match_on"], ("string", "code"), of=v["records"])
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


# -------------------------------------------------------------------------- building


def _clock(text: str) -> int:
    parts = [int(x) for x in text.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _conditions(items: list[dict[str, Any]]) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            field=c["field"],
            op=c["op"],
            value=tuple(c["value"]) if isinstance(c.get("value"), list) else c.get("value"),
            field_ref=c.get("field_ref"),
        )
        for c in items
    )


def _holidays(spec: dict[str, Any]) -> HolidaySpec:
    return HolidaySpec(
        country=spec["country"],
        subdivision=spec.get("subdivision"),
        extra_dates=tuple(sorted(dt.date.fromisoformat(d) for d in spec.get("extra_dates", []))),
    )


def _value(v: dict[str, Any]) -> ValueSpec:
    limit = v.get("limit_hours")
    return ValueSpec(
        kind=v["kind"],
        from_field=v.get("from"),
        to_field=v.get("to") or v.get("deadline"),
        limit_hours=float(limit) if isinstance(limit, int | float) else None,
        limit_by=limit["by"] if isinstance(limit, dict) else None,
        limit_values=tuple(sorted((k, float(x)) for k, x in limit["values"].items()))
        if isinstance(limit, dict)
        else (),
        minus=v.get("minus"),
        at_most=float(v["at_most"]) if "at_most" in v else None,
        records=v.get("records"),
        match_on=v.get("match_on"),
        anchor=v.get("anchor") or v.get("date"),
        related_time=v.get("related_time", "received_at") if v["kind"] == "related_record" else None,
        window_hours=float(v["window_hours"]) if "window_hours" in v else None,
        direction=v.get("direction"),
        outcome=v.get("outcome"),
        where=_conditions(v.get("where", [])),
    )


def _measure(m: dict[str, Any]) -> Measure:
    base = m.get("rate_base")
    return Measure(
        id=m["id"],
        title=m["title"],
        records=m["records"],
        period_by=m["period_by"],
        type=m["type"],
        direction=m["direction"],
        unit=m.get("unit", ""),
        arrears_months=m.get("arrears_months", 0),
        value=_value(m["value"]),
        exclusions=tuple(
            Exclusion(e["code"], _conditions(e["when"]), e.get("description", "")) for e in m["exclusions"]
        ),
        standards=tuple(
            Standard(
                type=s["type"],
                target=float(s["target"]) if "target" in s else None,
                when=tuple(sorted((k, tuple(vals)) for k, vals in s.get("when", {}).items())),
            )
            for s in m["standards"]
        ),
        dimensions=tuple(
            Dimension(d["field"], tuple(d["products"]) if "products" in d else None) for d in m.get("dimensions", [])
        ),
        rate_base=RateBase(base["records"], base["field"], float(base["per"])) if base else None,
    )


def _statistics(st: dict[str, Any]) -> Statistics:
    def table(rows: list[dict[str, Any]]) -> tuple[tuple[int | None, float], ...]:
        return tuple((r.get("max_n"), float(r["value"])) for r in rows)

    return Statistics(
        parity_method=st["parity_method"],
        critical_value=float(st["critical_value"]) if "critical_value" in st else None,
        critical_values=tuple(sorted((tier, table(rows)) for tier, rows in st.get("critical_values", {}).items())),
        alpha=st.get("alpha"),
        alpha_after_miss=st.get("alpha_after_miss"),
        routing=tuple(
            sorted(
                (kind, tuple(Route(r["method"], r.get("max_clec_n")) for r in routes))
                for kind, routes in st.get("routing", {}).items()
            )
        ),
        resamples=st.get("permutation", {}).get("resamples", 100_000),
        lattice=tuple(sorted(st.get("permutation", {}).get("lattice", {}).items())),
        log_offset=float(st.get("log_offset", 0.4)),
        seed=st.get("seed", 0),
        allowance_types=tuple(st.get("benchmark_allowance", {}).get("measure_types", [])),
    )


def build_plan(doc: dict[str, Any], sha256: str, source: str) -> Plan:
    cal = doc["calendar"]
    default_holidays = _holidays(cal["holidays"])
    return Plan(
        id=doc["id"],
        version=doc["version"],
        title=doc["title"],
        notice=doc.get("notice", ""),
        effective_from=dt.date.fromisoformat(doc["effective_from"]),
        effective_to=_date(doc.get("effective_to")),
        retail_carrier_id=doc["retail_carrier_id"],
        test_carrier_ids=tuple(doc.get("test_carrier_ids", [])),
        calendar=CalendarSpec(
            weekmask=cal.get("weekmask", "1111100"),
            business_start_s=_clock(cal["business_hours"]["start"]),
            business_end_s=_clock(cal["business_hours"]["end"]),
            order_cutoff_s=_clock(cal["order_cutoff"]),
        ),
        states=tuple(
            State(s["code"], s["time_zone"], _holidays(s["holidays"]) if "holidays" in s else default_holidays)
            for s in doc["states"]
        ),
        products=tuple(
            Product(
                code=p["code"],
                family=p["family"],
                standard_interval_days=p["standard_interval_days"],
                retail_analog=p.get("retail_analog"),
                title=p.get("title", ""),
            )
            for p in doc["products"]
        ),
        statistics=_statistics(doc["statistics"]),
        measures=tuple(_measure(m) for m in doc["measures"]),
        sha256=sha256,
        source=source,
        document=doc,
    )
