"""The plan's `remedies` section: what a miss costs, to whom (domain.md, "Remedies").

Validated by JSON Schema (schemas/plan.schema.json, $defs remedies), cross-checked here, then
turned into frozen dataclasses. Money is Decimal from the plan's text (a JSON number is read
through its decimal text, so 75.5 is exactly 75.50), never a binary float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from carrier_sla.errors import PlanProblem

ROUNDING = ("up", "nearest", "down", "none")
ANY_STATE = "*"
CENT = Decimal("0.01")
# the largest amount the ledger's decimal(14, 2) columns hold (carrier_sla.engine.remedies.MONEY)
LEDGER_MAX = Decimal("999999999999.99")


@dataclass(frozen=True)
class Tier:
    """A payment tier: who is paid (a CLEC for scope clec, the state fund for clec_aggregate),
    from which consecutive month of miss, and the amount per unit by category and month."""

    name: str
    scope: str  # "clec" | "clec_aggregate"
    from_month: int
    amounts: tuple[tuple[str, tuple[Decimal, ...]], ...]  # category -> amounts for months from_month, +1, ...
    title: str = ""

    def amount_entry(self, category: str, consecutive_months: int) -> int:
        """Which entry of the category's amounts pays the given consecutive month of miss (the last repeats)."""
        return min(consecutive_months - self.from_month, len(dict(self.amounts)[category]) - 1)

    def unit_amount(self, category: str, consecutive_months: int) -> Decimal:
        """The amount per unit in the given consecutive month of miss (the last entry repeats)."""
        return dict(self.amounts)[category][self.amount_entry(category, consecutive_months)]


@dataclass(frozen=True)
class RemedyRule:
    """How one measure pays: category, basis (per occurrence or per measurement), tiers."""

    category: str
    basis: str  # "occurrence" | "measurement"
    tiers: tuple[str, ...]


@dataclass(frozen=True)
class Remedies:
    tiers: tuple[Tier, ...]
    measures: tuple[tuple[str, RemedyRule], ...]  # measure id -> rule
    rounding: str = "up"
    small_sample: str = "threshold"
    monthly_caps: tuple[tuple[str, Decimal], ...] = ()  # state or "*" -> cap
    annual_caps: tuple[tuple[str, Decimal], ...] = ()
    currency: str = "USD"
    note: str = ""

    def rule(self, measure_id: str) -> RemedyRule | None:
        return dict(self.measures).get(measure_id)

    def tier(self, name: str) -> Tier:
        return next(t for t in self.tiers if t.name == name)

    @staticmethod
    def _cap(table: tuple[tuple[str, Decimal], ...], state: str) -> Decimal | None:
        caps = dict(table)
        return caps.get(state, caps.get(ANY_STATE))

    def monthly_cap(self, state: str) -> Decimal | None:
        return self._cap(self.monthly_caps, state)

    def annual_cap(self, state: str) -> Decimal | None:
        return self._cap(self.annual_caps, state)


def money(value: Any) -> Decimal:
    """A plan amount as Decimal in cents, through its decimal text (JSON numbers included): 150 -> 150.00."""
    amount = Decimal(str(value))
    return amount.quantize(CENT) if amount.is_finite() and amount == amount.quantize(CENT) else amount


def build_remedies(doc: dict[str, Any] | None) -> Remedies | None:
    if doc is None:
        return None
    occ = doc.get("occurrences", {})
    caps = doc.get("caps", {})
    return Remedies(
        tiers=tuple(
            Tier(
                name=name,
                scope=t["scope"],
                from_month=t.get("from_month", 1),
                amounts=tuple(sorted((c, tuple(money(a) for a in row)) for c, row in t["amounts"].items())),
                title=t.get("title", ""),
            )
            for name, t in sorted(doc["tiers"].items())
        ),
        measures=tuple(
            sorted(
                (mid, RemedyRule(r["category"], r["basis"], tuple(r["tiers"]))) for mid, r in doc["measures"].items()
            )
        ),
        rounding=occ.get("rounding", "up"),
        small_sample=occ.get("small_sample", "threshold"),
        monthly_caps=tuple(sorted((s, money(v)) for s, v in caps.get("monthly", {}).items())),
        annual_caps=tuple(sorted((s, money(v)) for s, v in caps.get("annual", {}).items())),
        currency=doc.get("currency", "USD"),
        note=doc.get("note", ""),
    )


def remedies_problems(doc: dict[str, Any], measure_ids: list[str], states: list[str]) -> list[PlanProblem]:
    """Cross-references JSON Schema cannot check: measures, tiers, categories, states, cents."""
    out: list[PlanProblem] = []
    tiers = doc.get("tiers", {})
    scopes = [t.get("scope") for t in tiers.values()]
    for scope in set(scopes):
        if scopes.count(scope) > 1:
            out.append(PlanProblem("/remedies/tiers", f"two tiers pay for scope {scope!r}: one tier per scope"))
    for name, tier in tiers.items():
        for category, row in tier.get("amounts", {}).items():
            for j, amount in enumerate(row):
                if msg := _money_problem(amount):
                    out.append(PlanProblem(f"/remedies/tiers/{name}/amounts/{category}/{j}", msg))
    for mid, rule in doc.get("measures", {}).items():
        ptr = f"/remedies/measures/{mid}"
        if mid not in measure_ids:
            out.append(PlanProblem(ptr, f"unknown measure {mid!r}"))
        for j, name in enumerate(rule.get("tiers", [])):
            if name not in tiers:
                out.append(PlanProblem(f"{ptr}/tiers/{j}", f"unknown tier {name!r}"))
            elif rule.get("category") not in tiers[name].get("amounts", {}):
                out.append(PlanProblem(f"{ptr}/category", f"tier {name!r} has no amounts for {rule.get('category')!r}"))
    for kind, table in doc.get("caps", {}).items():
        for state, amount in table.items():
            ptr = f"/remedies/caps/{kind}/{state}"
            if state != ANY_STATE and state not in states:
                out.append(PlanProblem(ptr, f"unknown state {state!r} (use a state code of the plan or '*')"))
            if msg := _money_problem(amount):
                out.append(PlanProblem(ptr, msg))
    return out


def _money_problem(value: Any) -> str | None:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return f"{value!r} is not an amount"
    if not amount.is_finite() or amount < 0:
        return f"{value!r} is not a non-negative amount"
    if amount > LEDGER_MAX:
        return f"{value!r} is beyond what the ledger holds (decimal(14,2): at most {LEDGER_MAX:,})"
    if amount != amount.quantize(CENT):
        return f"{value!r} has fractions of a cent"
    return None
