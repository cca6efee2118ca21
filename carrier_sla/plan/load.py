"""Load a plan, validate it, and build the frozen spec the engine trusts.

A plan is JSON (or YAML) validated against schemas/plan.schema.json, then checked for
cross-references (products, fields, dimensions, time zones, holiday calendars) by
carrier_sla.plan.checks. Every problem is collected and reported at once with its JSON pointer. Nothing in a plan is
evaluated as code: conditions are (field, op, value) triples from a closed vocabulary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carrier_sla.errors import PlanError, PlanProblem
from carrier_sla.plan import document as plan_document
from carrier_sla.plan.checks import clock_seconds, reference_problems, schema_problems
from carrier_sla.plan.remedy_rules import Remedies, build_remedies

PLANS_DIR = Path(__file__).resolve().parent.parent / "plans"


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
    match_on: tuple[str, ...] = ()  # related records agree on every one of these fields
    anchor: str | None = None
    related_time: str | None = None
    window_hours: float | None = None  # a window in real elapsed hours ...
    window_days: int | None = None  # ... or in local calendar days (a plan gives exactly one)
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
    unit_of_measurement: float | None = None  # the step values are recorded in (modified_t_log's offset)
    # exclusions approved by the commission for single records (carrier_sla.inputs.excusals), checked before the
    # plan's own: (exclusion reason "approved:REFERENCE", the record ids); never part of a plan document
    approved: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def scale(self) -> float:
        """Factor from the tested quantity to the reported one (percent, per 100 lines)."""
        if self.type == "rate" and self.rate_base is not None:
            return self.rate_base.per
        return 100.0 if self.type == "proportion" and self.unit == "percent" else 1.0


@dataclass(frozen=True)
class HolidaySpec:
    """The holidays of a business calendar as the plan lists them, per year (calendar.holidays,
    or a state's own). A year the plan does not list is unknown: business days in it cannot be
    computed (carrier_sla.engine.holiday_years), while a year listed with no dates has none."""

    years: tuple[tuple[int, tuple[dt.date, ...]], ...] = ()  # (year, its dates ascending), by year

    @property
    def listed_years(self) -> tuple[int, ...]:
        return tuple(year for year, _ in self.years)

    @property
    def dates(self) -> tuple[dt.date, ...]:
        return tuple(day for _, days in self.years for day in days)


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
    resamples: int = 100_000  # Monte Carlo permutation tests: the most draws
    sequential_h: int | None = None  # stop at the h-th resampled sum at least as bad (Besag-Clifford); None: never
    lattice: tuple[tuple[str, float], ...] = ()  # measure unit -> lattice step
    log_offset: float = 0.4  # modified_t_log adds log_offset x the measure's unit of measurement
    seed: int = 0
    allowance_types: tuple[str, ...] = ()
    undefined_statistic: str = "exact_test"  # exact_test | undetermined: where the modified z or t is undefined
    rate_variance: str = "poisson"  # poisson | binomial: the retail variance of a rate's modified z

    @staticmethod
    def exact_method(measure_type: str) -> str:
        """The exact test of a measure type's value kind (permutation, Fisher, conditional binomial)."""
        return {"mean": "permutation", "proportion": "fisher_exact", "rate": "binomial_exact"}[measure_type]

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
    remedies: Remedies | None = None  # None: the plan pays nothing
    restatement_lookback_months: int | None = None  # restatement.lookback_months; None: no limit (engine.trueup)
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

            def text_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
                """Mapping keys as JSON has them: an unquoted year (2026:) is the key "2026"; a
                repeated key is kept for plan_document.problems to name."""
                loader.flatten_mapping(node)
                pairs = [
                    (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
                    for k, v in node.value
                ]
                return plan_document.object_pairs(
                    [(str(k) if isinstance(k, int) and not isinstance(k, bool) else k, v) for k, v in pairs]
                )

            _PlanLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, text_keys)
            try:
                return yaml.load(raw, Loader=_PlanLoader), raw  # a SafeLoader: no arbitrary objects
            except yaml.YAMLError as exc:  # not a ValueError: name it here
                raise ValueError(str(exc)) from exc
        return json.loads(raw, object_pairs_hook=plan_document.object_pairs), raw
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlanError(str(path), [PlanProblem("", f"not valid JSON/YAML: {exc}")]) from exc
    except RecursionError as exc:  # arrays or objects nested thousands deep
        raise PlanError(str(path), [PlanProblem("", plan_document.TOO_DEEP)]) from exc


def load_plan(plan: str | Path) -> Plan:
    """Load, validate and freeze a plan; raise PlanError listing every problem."""
    path = resolve_plan_path(plan)
    document, raw = _read_document(path)
    problems = all_problems(document)
    if problems:
        raise PlanError(str(path), problems)
    return build_plan(document, sha256=hashlib.sha256(raw).hexdigest(), source=str(path))


def all_problems(document: Any) -> list[PlanProblem]:
    """Repeated keys, non-finite numbers and too deep nesting (plan_document), schema problems
    and, as far as the document's shape allows, cross-reference problems."""
    shape, too_deep = plan_document.problems(document)
    if too_deep:  # the schema's validator recurses with the document
        return sorted(set(shape))
    problems = schema_problems(document)
    try:
        problems += reference_problems(document)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        if not problems and not shape:  # pragma: no cover - the schema guarantees the shape reference checks read
            raise
    said = {p.pointer for p in shape}  # a non-finite number's own problem says it all
    return sorted(set(shape + [p for p in problems if p.pointer not in said]))


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


# -------------------------------------------------------------------------- building


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
    """{"2026": ["2026-01-01", {"date": "2026-01-19", "name": "..."}, ...], ...}: names are for the reader."""

    def day(item: str | dict[str, str]) -> dt.date:
        return dt.date.fromisoformat(item if isinstance(item, str) else item["date"])

    return HolidaySpec(
        tuple(sorted((int(year), tuple(sorted({day(i) for i in items}))) for year, items in spec.items()))
    )


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    """A field name or a list of them as a tuple (a single name is the list of one)."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


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
        match_on=_names(v.get("match_on")),
        anchor=v.get("anchor") or v.get("date"),
        related_time=v.get("related_time", "received_at") if v["kind"] == "related_record" else None,
        window_hours=float(v["window_hours"]) if "window_hours" in v else None,
        window_days=int(v["window_days"]) if "window_days" in v else None,
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
        unit_of_measurement=float(m["unit_of_measurement"]) if "unit_of_measurement" in m else None,
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
                if kind != "undefined_statistic"
            )
        ),
        resamples=st.get("permutation", {}).get("resamples", 100_000),
        sequential_h=st.get("permutation", {}).get("sequential", {}).get("h"),
        lattice=tuple(sorted(st.get("permutation", {}).get("lattice", {}).items())),
        log_offset=float(st.get("log_offset", 0.4)),
        seed=st.get("seed", 0),
        allowance_types=tuple(st.get("benchmark_allowance", {}).get("measure_types", [])),
        undefined_statistic=st.get("routing", {}).get("undefined_statistic", "exact_test"),
        rate_variance=st.get("rate_variance", "poisson"),
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
            business_start_s=clock_seconds(cal["business_hours"]["start"]),
            business_end_s=clock_seconds(cal["business_hours"]["end"]),
            order_cutoff_s=clock_seconds(cal["order_cutoff"]),
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
        remedies=build_remedies(doc.get("remedies")),
        restatement_lookback_months=doc.get("restatement", {}).get("lookback_months"),
        sha256=sha256,
        source=source,
        document=doc,
    )
