"""carrier-sla diff --plan A --plan B: what changed between two versions of a plan, in words.

Compares the two plan documents section by section: the version and its dates; measures (added,
removed, and per measure its rule: records, period, type, value, exclusions by code, dimensions,
standards); statistics (critical values and their tables, alpha, routing, ...); remedies (tier
amounts per category, escalation start, the measures' categories and tiers, caps, rounding);
holidays per year (dates added and removed, with their names); states, products, calendar and
the restatement option. Anything else that differs is listed at its JSON pointer, so no change
goes unsaid. Pure functions of the two documents; the command prints them (or JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from carrier_sla.plan.load import Plan

SECTIONS = ("plan", "measures", "statistics", "remedies", "holidays", "states", "products", "calendar", "other")


@dataclass(frozen=True)
class Change:
    section: str
    text: str


def _compact(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


def _by(items: Any, key: str) -> dict[str, Any]:
    return {str(x[key]): x for x in items or [] if isinstance(x, dict) and key in x}


def _generic(section: str, pointer: str, a: Any, b: Any) -> list[Change]:
    """Every leaf that differs, at its JSON pointer (dicts by key, lists whole)."""
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _generic(section, f"{pointer}/{key}", a.get(key), b.get(key))
        return out
    if a is None:
        return [Change(section, f"{pointer} added: {_compact(b)}")]
    if b is None:
        return [Change(section, f"{pointer} removed (was {_compact(a)})")]
    return [Change(section, f"{pointer}: {_compact(a)} -> {_compact(b)}")]


def _table(rows: Any) -> str:
    """A critical-value table as 'n <= 10: 1.04, ..., above: 4.3'."""
    parts = [f"n <= {r['max_n']:,}: {r['value']}" if "max_n" in r else f"above: {r['value']}" for r in rows or []]
    return ", ".join(parts) or "none"


def _standard(s: dict[str, Any]) -> str:
    target = f" {s['target']}" if "target" in s else ""
    when = "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in sorted(s.get("when", {}).items()))
    return f"{s['type']}{target}" + (f" ({when})" if when else "")


def _condition(c: dict[str, Any]) -> str:
    other = c.get("field_ref", c.get("value", ""))
    return f"{c['field']} {c['op']} {_compact(other)}".strip()


def _measure_changes(mid: str, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    out = []
    for key in ("title", "records", "period_by", "arrears_months", "type", "unit", "direction", "unit_of_measurement"):
        if a.get(key) != b.get(key):
            out.append(Change("measures", f"{mid} {key}: {_compact(a.get(key))} -> {_compact(b.get(key))}"))
    if a.get("value") != b.get("value"):
        out += [Change("measures", f"{mid} value{c.text}") for c in _generic("measures", "", a["value"], b["value"])]
    ea, eb = _by(a.get("exclusions"), "code"), _by(b.get("exclusions"), "code")
    for code in sorted(set(ea) | set(eb)):
        if code not in eb:
            out.append(Change("measures", f"{mid} exclusion {code} removed"))
        elif code not in ea:
            when = " and ".join(_condition(c) for c in eb[code]["when"])
            out.append(Change("measures", f"{mid} exclusion {code} added: {when}"))
        elif ea[code] != eb[code]:
            before = " and ".join(_condition(c) for c in ea[code]["when"])
            after = " and ".join(_condition(c) for c in eb[code]["when"])
            out.append(Change("measures", f"{mid} exclusion {code}: {before} -> {after}"))
    if [e.get("code") for e in a.get("exclusions", [])] != [e.get("code") for e in b.get("exclusions", [])] and set(
        ea
    ) == set(eb):
        out.append(Change("measures", f"{mid} exclusions reordered: {', '.join(eb)} (the first that holds applies)"))
    if a.get("standards") != b.get("standards"):
        before = "; ".join(_standard(s) for s in a.get("standards", []))
        after = "; ".join(_standard(s) for s in b.get("standards", []))
        out.append(Change("measures", f"{mid} standards: {before} -> {after}"))
    if a.get("dimensions") != b.get("dimensions"):
        out.append(
            Change("measures", f"{mid} dimensions: {_compact(a.get('dimensions'))} -> {_compact(b.get('dimensions'))}")
        )
    handled = {"id", "title", "records", "period_by", "arrears_months", "type", "unit", "direction"}
    handled |= {"unit_of_measurement", "value", "exclusions", "standards", "dimensions"}
    rest_a = {k: v for k, v in a.items() if k not in handled}
    rest_b = {k: v for k, v in b.items() if k not in handled}
    return out + [Change("measures", f"{mid} {c.text.lstrip('/')}") for c in _generic("measures", "", rest_a, rest_b)]


def _statistics_changes(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    out = []
    if a.get("critical_value") != b.get("critical_value"):
        out.append(
            Change(
                "statistics",
                f"critical value: {_compact(a.get('critical_value'))} -> {_compact(b.get('critical_value'))}",
            )
        )
    ta, tb = a.get("critical_values", {}), b.get("critical_values", {})
    for tier in sorted(set(ta) | set(tb)):
        if ta.get(tier) != tb.get(tier):
            out.append(
                Change("statistics", f"critical values ({tier}): {_table(ta.get(tier))} -> {_table(tb.get(tier))}")
            )
    for key in ("alpha", "alpha_after_miss", "parity_method", "rate_variance", "seed", "log_offset"):
        if a.get(key) != b.get(key):
            out.append(Change("statistics", f"{key}: {_compact(a.get(key))} -> {_compact(b.get(key))}"))
    handled = {"critical_value", "critical_values", "alpha", "alpha_after_miss", "parity_method", "rate_variance"}
    handled |= {"seed", "log_offset"}
    rest_a = {k: v for k, v in a.items() if k not in handled}
    rest_b = {k: v for k, v in b.items() if k not in handled}
    return out + [Change("statistics", c.text.lstrip("/")) for c in _generic("statistics", "", rest_a, rest_b)]


def _amounts(row: Any) -> str:
    return ", ".join(f"{float(x):,.2f}" for x in row or []) or "none"


def _rule(r: dict[str, Any] | None) -> str:
    return "pays nothing" if r is None else f"{r['category']} per {r['basis']}, {', '.join(r['tiers'])}"


def _remedies_changes(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[Change]:
    if a is None or b is None:
        if a == b:
            return []
        return [
            Change("remedies", "remedies added: the plan now pays" if a is None else "remedies removed: pays nothing")
        ]
    out = []
    tiers_a, tiers_b = a.get("tiers", {}), b.get("tiers", {})
    for name in sorted(set(tiers_a) | set(tiers_b)):
        ta, tb = tiers_a.get(name), tiers_b.get(name)
        if ta is None or tb is None:
            out.append(Change("remedies", f"tier {name} {'added' if ta is None else 'removed'}"))
            continue
        for key in ("scope", "from_month", "title"):
            if ta.get(key) != tb.get(key):
                out.append(Change("remedies", f"{name} {key}: {_compact(ta.get(key))} -> {_compact(tb.get(key))}"))
        am, bm = ta.get("amounts", {}), tb.get("amounts", {})
        for category in sorted(set(am) | set(bm)):
            if am.get(category) != bm.get(category):
                out.append(
                    Change(
                        "remedies",
                        f"{name} amounts {category} (per unit, consecutive month {ta.get('from_month', 1)}, +1, ...): "
                        f"{_amounts(am.get(category))} -> {_amounts(bm.get(category))}",
                    )
                )
    ma, mb = a.get("measures", {}), b.get("measures", {})
    for mid in sorted(set(ma) | set(mb)):
        ra, rb = ma.get(mid), mb.get(mid)
        if ra != rb:
            out.append(Change("remedies", f"{mid}: {_rule(ra)} -> {_rule(rb)}"))
    handled = {"tiers", "measures"}
    rest_a = {k: v for k, v in a.items() if k not in handled}
    rest_b = {k: v for k, v in b.items() if k not in handled}
    return out + [Change("remedies", c.text.lstrip("/")) for c in _generic("remedies", "", rest_a, rest_b)]


def _day_names(items: Any) -> dict[str, str]:
    out = {}
    for item in items or []:
        if isinstance(item, str):
            out[item] = ""
        elif isinstance(item, dict) and "date" in item:
            out[item["date"]] = item.get("name", "")
    return out


def _holiday_changes(where: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[Change]:
    a, b = a or {}, b or {}
    out = []
    for year in sorted(set(a) | set(b)):
        if year not in b:
            out.append(Change("holidays", f"{where}{year}: no longer listed (its business days are unknown)"))
            continue
        if year not in a:
            out.append(Change("holidays", f"{where}{year}: listed ({len(b[year])} holidays)"))
            continue
        da, db = _day_names(a[year]), _day_names(b[year])
        added = [f"{d}" + (f" ({db[d]})" if db[d] else "") for d in sorted(set(db) - set(da))]
        removed = [f"{d}" + (f" ({da[d]})" if da[d] else "") for d in sorted(set(da) - set(db))]
        parts = ([f"added {', '.join(added)}"] if added else []) + (
            [f"removed {', '.join(removed)}"] if removed else []
        )
        if parts:
            out.append(Change("holidays", f"{where}{year}: {'; '.join(parts)}"))
    return out


def changes(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    """Every difference between two plan documents, in words, by section."""
    out: list[Change] = []
    for key in ("id", "version", "title", "notice"):
        if a.get(key) != b.get(key):
            out.append(Change("plan", f"{key}: {_compact(a.get(key))} -> {_compact(b.get(key))}"))
    span = lambda d: f"{d.get('effective_from')}..{d.get('effective_to') or 'open'}"  # noqa: E731
    if span(a) != span(b):
        out.append(Change("plan", f"in force: {span(a)} -> {span(b)}"))
    ma, mb = _by(a.get("measures"), "id"), _by(b.get("measures"), "id")
    for mid in [m for m in ma if m not in mb]:
        out.append(Change("measures", f"{mid} removed: {ma[mid].get('title', '')}"))
    for mid in [m for m in mb if m not in ma]:
        out.append(Change("measures", f"{mid} added: {mb[mid].get('title', '')}"))
    for mid in [m for m in mb if m in ma]:
        out += _measure_changes(mid, ma[mid], mb[mid])
    out += _statistics_changes(a.get("statistics", {}), b.get("statistics", {}))
    out += _remedies_changes(a.get("remedies"), b.get("remedies"))
    out += _holiday_changes("", a.get("calendar", {}).get("holidays"), b.get("calendar", {}).get("holidays"))
    sa, sb = _by(a.get("states"), "code"), _by(b.get("states"), "code")
    for code in sorted(set(sa) | set(sb)):
        x, y = sa.get(code), sb.get(code)
        if x is None or y is None:
            out.append(Change("states", f"{code} {'added' if x is None else 'removed'}"))
            continue
        out += _holiday_changes(f"state {code} ", x.get("holidays"), y.get("holidays"))
        rest = _generic("states", "", {k: v for k, v in x.items() if k != "holidays"},
                        {k: v for k, v in y.items() if k != "holidays"})  # fmt: skip
        out += [Change("states", f"{code} {c.text.lstrip('/')}") for c in rest]
    pa_, pb = _by(a.get("products"), "code"), _by(b.get("products"), "code")
    for code in sorted(set(pa_) | set(pb)):
        x, y = pa_.get(code), pb.get(code)
        if x is None or y is None:
            out.append(Change("products", f"{code} {'added' if x is None else 'removed'}"))
        else:
            out += [Change("products", f"{code} {c.text.lstrip('/')}") for c in _generic("products", "", x, y)]
    cal_a = {k: v for k, v in a.get("calendar", {}).items() if k != "holidays"}
    cal_b = {k: v for k, v in b.get("calendar", {}).items() if k != "holidays"}
    out += [Change("calendar", c.text.lstrip("/")) for c in _generic("calendar", "", cal_a, cal_b)]
    handled = {"id", "version", "title", "notice", "effective_from", "effective_to", "measures", "statistics"}
    handled |= {"remedies", "calendar", "states", "products", "$schema"}
    rest_a = {k: v for k, v in a.items() if k not in handled}
    rest_b = {k: v for k, v in b.items() if k not in handled}
    out += _generic("other", "", rest_a, rest_b)
    return out


def render(a: Plan, b: Plan, found: list[Change]) -> str:
    """The changes as text, grouped by section."""
    head = [
        f"A: plan {a.id} {a.version} ({a.source}, sha256 {a.sha256[:12]})",
        f"B: plan {b.id} {b.version} ({b.source}, sha256 {b.sha256[:12]})",
    ]
    if not found:
        return "\n".join([*head, "no differences"])
    lines = [*head, f"{len(found)} change(s)"]
    for section in SECTIONS:
        items = [c.text for c in found if c.section == section]
        if items:
            lines += ["", section, *(f"  {t}" for t in items)]
    return "\n".join(lines)


def as_json(a: Plan, b: Plan, found: list[Change]) -> dict[str, Any]:
    side = lambda p: {"id": p.id, "version": p.version, "source": p.source, "sha256": p.sha256}  # noqa: E731
    return {"a": side(a), "b": side(b), "changes": [{"section": c.section, "text": c.text} for c in found]}
