"""Restatement true-up: adjustment lines when a month's remedies are published final over final.

A month that was published final and is published final again (re-run, or its remedies recomputed
because an earlier month was restated) gets one adjustment line per payee and cell (tier, payee,
measure, submeasure, state, product) that either publication pays:

    adjustment = restated - paid

`paid`: the amount of the month's last final publication (the run that published it:
`paid_run_id`), 0.00 for a cell it did not pay; `restated`: this run's amount (`restated_run_id`),
0.00 for a cell it no longer pays. Amounts are exact decimals, so per payee
paid + adjustments = restated, to the cent. A provisional publication (month to date) pays
nothing: a final run after one adjusts against the last final publication before it, and a
provisional run over a final one publishes no adjustments.

The plan option `restatement.lookback_months` (of the run's plan) limits how far back a
restatement changes money: a month more than that many months before the month of the run's date
(`--today`, default the UTC date) is recomputed and published for the record, with adjustments
of 0.00 and a note saying so.

Every publication of a month's remedies publishes its `adjustments` table too (no rows when it is
not a restatement), so the table always belongs to the ledger beside it. Statements of a restated
month show, per line, `paid`, `restated` and `adjustment` and the two run ids, lines the restated
ledger no longer has included (amount 0.00), and the totals of each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from carrier_sla import vocabulary
from carrier_sla.engine import remedies
from carrier_sla.errors import StoreError
from carrier_sla.plan import calendar as calmod
from carrier_sla.store.view import StoreView, open_store

ZERO = Decimal("0.00")
KEY = list(vocabulary.PAYMENT_KEY)
TABLE = "adjustments"
ADJUSTMENT_SCHEMA = vocabulary.ADJUSTMENTS.schema()  # the files: the period is the partition folder
ADJUSTMENT_COLUMNS = ["period", *ADJUSTMENT_SCHEMA.names]  # the frames in memory carry it
EXTRA_STATEMENT_COLUMNS = vocabulary.STATEMENTS.names[len(remedies.STATEMENT_COLUMNS) :]  # restated months


@dataclass(frozen=True)
class Publication:
    """A month's remedies as one earlier run published them."""

    run_id: str
    ledger: pd.DataFrame


def _is_final(view: StoreView, period: str) -> bool:
    """Whether the view's results of the month are final (not month to date)."""
    if not view.has("results", period):
        return False
    flags = view.table("results", period, ["provisional"], verified=False)  # as published: this run may repair it
    if "provisional" not in flags.column_names:
        return True  # results from before month-to-date runs were always final
    return not any(flags.column("provisional").to_pylist())


def _views_newest_first(out: Path, this_run: str) -> Iterator[StoreView]:
    """The current view, then (opened only when needed) every other published run's view, newest
    first (run ids begin with their start time)."""
    current = open_store(out)
    if current.published:
        yield current
    for run_id in sorted(current.runs(), reverse=True):
        if run_id != this_run:
            yield current.run(run_id)


def last_final(out: Path, period: str, this_run: str) -> Publication | None:
    """The month's last final publication of remedies before this run (None: never published final)."""
    seen: set[str] = set()
    for view in _views_newest_first(out, this_run):
        try:
            producer = view.run_of(period, "remedies")
        except StoreError:  # an older view whose provenance cannot be read: not a publication to compare with
            continue
        if producer is None or producer in seen or producer == this_run:
            continue
        seen.add(producer)
        if _is_final(view, period):
            return Publication(producer, view.table("remedies", period, verified=False).to_pandas())
    return None


def within_lookback(lookback_months: int | None, period: str, today: Any) -> bool:
    """Whether a restatement of `period` on `today` changes money under restatement.lookback_months."""
    if lookback_months is None:
        return True
    now = calmod.period_index(f"{today.year:04d}-{today.month:02d}")
    return now - calmod.period_index(period) <= lookback_months


def adjustments(
    period: str,
    previous: Publication,
    ledger: pd.DataFrame,
    run_id: str,
    within: bool,
    note: str | None,
    currency: str,
) -> pd.DataFrame:
    """One line per payee and cell paid by either publication: paid, restated, adjustment (ADJUSTMENT_SCHEMA)."""
    columns = [*KEY, "scope", "carrier_id", "amount"]
    old = previous.ledger.reindex(columns=columns).astype({c: object for c in KEY})
    new = ledger.reindex(columns=columns).astype({c: object for c in KEY})
    for frame in (old, new):
        frame[KEY] = frame[KEY].astype(str)
    m = old.merge(new, on=KEY, how="outer", suffixes=("_paid", "_new"))
    if m.empty:  # neither publication pays anything: nothing to adjust
        return empty(period)
    paid = [a if isinstance(a, Decimal) else ZERO for a in m["amount_paid"]]
    restated = [a if isinstance(a, Decimal) else ZERO for a in m["amount_new"]]
    frame = pd.DataFrame(
        {
            "period": period,
            **{c: m[c].to_numpy(dtype=object) for c in KEY},
            "scope": m["scope_new"].where(m["scope_new"].notna(), m["scope_paid"]).to_numpy(dtype=object),
            "carrier_id": m["carrier_id_new"]
            .where(m["carrier_id_new"].notna(), m["carrier_id_paid"])
            .to_numpy(dtype=object),
            "paid": paid,
            "paid_run_id": previous.run_id,
            "restated": restated,
            "restated_run_id": run_id,
            "adjustment": [(r - p) if within else ZERO for p, r in zip(paid, restated, strict=True)],
            "within_lookback": within,
            "currency": currency,
            "note": note,
        }
    )
    frame = frame.assign(carrier_id=frame["carrier_id"].where(frame["carrier_id"].notna(), None))
    order = ["payee", *vocabulary.STATEMENT_ORDER]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)[ADJUSTMENT_COLUMNS]


def empty(period: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ADJUSTMENT_COLUMNS}).assign(period=period)


def true_up(
    out: Path,
    run_id: str,
    lookback_months: int | None,
    months: list[remedies.PeriodRemedies],
    final: dict[str, bool],
    today: Any,
    currency: str,
) -> dict[str, pd.DataFrame]:
    """The adjustments of every month this run publishes remedies for (no rows unless the month is
    published final over an earlier final publication)."""
    result = {}
    for month in months:
        previous = last_final(out, month.period, run_id) if final.get(month.period, False) else None
        if previous is None:
            result[month.period] = empty(month.period)
            continue
        within = within_lookback(lookback_months, month.period, today)
        note = (
            None
            if within
            else f"{month.period} is more than {lookback_months} month(s) before {today:%Y-%m} "
            "(restatement.lookback_months): recomputed and published for the record; no money changes"
        )
        result[month.period] = adjustments(month.period, previous, month.ledger, run_id, within, note, currency)
    return result


def month_is_final(out: Path, period: str) -> bool:
    """Whether the store's current results of the month are final (for months recomputed after a restatement)."""
    current = open_store(out)
    return current.published and _is_final(current, period)


def table(frame: pd.DataFrame) -> pa.Table:
    """The adjustments as stored (vocabulary.ADJUSTMENTS)."""
    return pa.Table.from_pandas(frame[ADJUSTMENT_SCHEMA.names], schema=ADJUSTMENT_SCHEMA, preserve_index=False)


def summary(frame: pd.DataFrame) -> dict[str, Any] | None:
    """The manifest's `restatement` of a month: run ids, totals and adjustment per payee (decimal text)."""
    if frame.empty:
        return None
    by_payee: dict[str, Decimal] = {}
    for payee, amount in zip(frame["payee"], frame["adjustment"], strict=True):
        by_payee[payee] = by_payee.get(payee, ZERO) + amount
    return {
        "paid_run_id": str(frame["paid_run_id"].iloc[0]),
        "restated_run_id": str(frame["restated_run_id"].iloc[0]),
        "within_lookback": bool(frame["within_lookback"].iloc[0]),
        "lines": len(frame),
        "paid": str(sum(frame["paid"], ZERO)),
        "restated": str(sum(frame["restated"], ZERO)),
        "adjustment": str(sum(frame["adjustment"], ZERO)),
        "adjustment_by_payee": {p: str(a) for p, a in sorted(by_payee.items())},
        "note": frame["note"].iloc[0],
    }


def statements(ledger: pd.DataFrame, adjusted: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One statement per payee (remedies.statements); for a restated month with `paid`, `restated`,
    `adjustment` and both run ids on every line, the cells no longer paid as lines of amount 0.00,
    and the totals of each on the `total` line."""
    sheets = remedies.statements(ledger)
    if adjusted.empty:
        return sheets
    period = str(adjusted["period"].iloc[0])
    out = {}
    for payee in sorted(set(sheets) | set(adjusted["payee"])):
        sheet = sheets.get(payee)
        body = (
            sheet[sheet["line"] != "total"].drop(columns="line")
            if sheet is not None
            else pd.DataFrame(columns=remedies.STATEMENT_COLUMNS[1:])
        )
        mine = adjusted[adjusted["payee"] == payee][[*KEY, *EXTRA_STATEMENT_COLUMNS, "currency"]]
        merged = body.astype({c: object for c in KEY}).merge(
            mine.rename(columns={"currency": "_currency"}), on=KEY, how="outer"
        )
        merged["period"] = period
        # the adjustments hold every cell of either ledger: a line only they have is a cell no longer paid
        amounts = pd.Series([a if isinstance(a, Decimal) else ZERO for a in merged["amount"]], dtype=object)
        merged = merged.assign(amount=amounts.to_numpy())
        merged["currency"] = merged["currency"].where(merged["currency"].notna(), merged["_currency"])
        merged = merged.sort_values(list(vocabulary.STATEMENT_ORDER), kind="stable")
        merged = merged.assign(line=[str(i) for i in range(1, len(merged) + 1)])
        columns = remedies.STATEMENT_COLUMNS + EXTRA_STATEMENT_COLUMNS
        total = {c: "" for c in columns} | {
            "line": "total",
            "period": period,
            "payee": payee,
            "occurrences": sheet[sheet["line"] == "total"]["occurrences"].iloc[0] if sheet is not None else "0",
            "amount_uncapped": sheet[sheet["line"] == "total"]["amount_uncapped"].iloc[0]
            if sheet is not None
            else ZERO,
            "amount": sum(merged["amount"], ZERO),
            "currency": next(iter(merged["currency"].dropna()), ""),
            "paid": sum(merged["paid"], ZERO),
            "restated": sum(merged["restated"], ZERO),
            "adjustment": sum(merged["adjustment"], ZERO),
            "paid_run_id": str(adjusted["paid_run_id"].iloc[0]),
            "restated_run_id": str(adjusted["restated_run_id"].iloc[0]),
        }
        out[payee] = pd.concat([merged[columns], pd.DataFrame([total])], ignore_index=True)
    return out
