"""The filing report's excusals and restatement: the cells the commission excused, and for a restated
month the adjustments per payee (carrier_sla.inputs.excusals, carrier_sla.engine.trueup). Tables here; their HTML
sections are report_html.restated_sections."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pandas as pd

from carrier_sla import vocabulary

if TYPE_CHECKING:
    from carrier_sla.readers.report import Report
    from carrier_sla.store.view import StoreView

EXCUSAL_COLUMNS = ["measure_id", "submeasure", "state", "product", "scope", "carrier_id", "status",
                   "excusal_reference", "excusal_reason"]  # fmt: skip
ADJUSTMENT_COLUMNS = ["payee", "lines", "paid", "restated", "adjustment", "currency", "paid_run_id", "restated_run_id",
                      "note"]  # fmt: skip


def excused(results: pd.DataFrame) -> pd.DataFrame:
    """The result rows the commission excused (status and figures as computed), in results order."""
    if "excusal_reference" not in results:  # results of runs before excusals
        return pd.DataFrame(columns=EXCUSAL_COLUMNS)
    return results[results["excusal_reference"].notna()][EXCUSAL_COLUMNS].reset_index(drop=True)


def adjustments(view: StoreView, period: str, state: str | None) -> pd.DataFrame:
    """A restated month's adjustments per payee: paid, restated, adjustment, with both run ids (no rows
    unless the month was published final over final)."""
    if not view.has("adjustments", period):
        return pd.DataFrame(columns=ADJUSTMENT_COLUMNS)
    lines = view.adjustments(period)
    if state is not None:
        lines = lines[lines["state"] == state]
    if lines.empty:
        return pd.DataFrame(columns=ADJUSTMENT_COLUMNS)
    zero = Decimal("0.00")
    by = lines.groupby("payee", sort=True)
    return pd.DataFrame(
        {
            "payee": list(by.groups),
            "lines": by.size().to_list(),
            "paid": [sum(g["paid"], zero) for _, g in by],
            "restated": [sum(g["restated"], zero) for _, g in by],
            "adjustment": [sum(g["adjustment"], zero) for _, g in by],
            "currency": by["currency"].first().to_list(),
            "paid_run_id": by["paid_run_id"].first().to_list(),
            "restated_run_id": by["restated_run_id"].first().to_list(),
            "note": by["note"].first().to_list(),
        }
    )[ADJUSTMENT_COLUMNS]


def summary(r: Report) -> str:
    """The words the report command adds to its line: excused cells, a restatement's net adjustment."""
    out = f", {len(r.excused)} cell(s) excused" if r.excused is not None and len(r.excused) else ""
    if r.adjustments is not None and len(r.adjustments):
        net = sum(r.adjustments["adjustment"], Decimal("0.00"))
        money = vocabulary.money(net, r.currency or None, sign=True)
        out += f"; restated: adjustments {money} against run {r.adjustments['paid_run_id'].iloc[0]}"
    return out
