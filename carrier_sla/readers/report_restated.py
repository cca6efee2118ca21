"""The filing report's excusals and restatement: the cells the commission excused, and for a restated
month the adjustments per payee (carrier_sla.inputs.excusals, carrier_sla.engine.trueup). Tables here, their HTML
sections in the report's own style (report_html)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.dataset as ds

from carrier_sla.readers.report_words import count, esc, money
from carrier_sla.store import layout as store

if TYPE_CHECKING:
    from carrier_sla.readers.report import Report

EXCUSAL_COLUMNS = ["measure_id", "submeasure", "state", "product", "scope", "carrier_id", "status",
                   "excusal_reference", "excusal_reason"]  # fmt: skip
ADJUSTMENT_COLUMNS = ["payee", "lines", "paid", "restated", "adjustment", "currency", "paid_run_id", "restated_run_id",
                      "note"]  # fmt: skip


def excused(results: pd.DataFrame) -> pd.DataFrame:
    """The result rows the commission excused (status and figures as computed), in results order."""
    if "excusal_reference" not in results:  # results of runs before excusals
        return pd.DataFrame(columns=EXCUSAL_COLUMNS)
    return results[results["excusal_reference"].notna()][EXCUSAL_COLUMNS].reset_index(drop=True)


def adjustments(out: Path, period: str, state: str | None) -> pd.DataFrame:
    """A restated month's adjustments per payee: paid, restated, adjustment, with both run ids (no rows
    unless the month was published final over final)."""
    folder = Path(out) / store.CURRENT / "adjustments" / f"period={period}"
    if not folder.is_dir():
        return pd.DataFrame(columns=ADJUSTMENT_COLUMNS)
    lines = ds.dataset(folder, format="parquet").to_table().to_pandas()
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
        out += f"; restated: adjustments {net:+,.2f} against run {r.adjustments['paid_run_id'].iloc[0]}"
    return out


def html(r: Report) -> list[str]:
    """The report's sections on excused cells and on a restatement (none when there is neither)."""
    from carrier_sla.readers.report_html import Column, table

    out = []
    if r.excused is not None and len(r.excused):
        out.append('<h2 id="excusals">Excused by the commission</h2>')
        out.append(
            '<p class="lead">These cells keep their verdict and figures; the commission excused them (root '
            "cause), so they pay nothing and their count of consecutive missed months stays as it was.</p>"
        )

        def shown(key: str) -> Callable[[dict[str, Any]], str]:
            return lambda row: esc(row.get(key))

        columns = [Column(key, key.replace("_", " ").capitalize(), shown(key), True) for key in EXCUSAL_COLUMNS]
        out.append(table(r.excused, columns, shade=False))
    if r.adjustments is not None and len(r.adjustments):

        def cash(key: str) -> Callable[[dict[str, Any]], str]:
            return lambda row: money(row[key], str(row.get("currency") or ""))

        out.append('<h2 id="restatement">Restatement</h2>')
        out.append(
            '<p class="lead">This month was published before and is restated: per payee what was paid (the '
            "earlier run), what the restated results pay, and the adjustment (restated minus paid).</p>"
        )
        columns = [
            Column("payee", "Payee", lambda row: esc(row["payee"]), True),
            Column("lines", "Lines", lambda row: count(row["lines"])),
            Column("paid", "Paid", cash("paid")),
            Column("restated", "Restated", cash("restated")),
            Column("adjustment", "Adjustment", cash("adjustment")),
            Column("paid_run_id", "Paid by run", lambda row: esc(row["paid_run_id"]), True),
            Column("restated_run_id", "Restated by run", lambda row: esc(row["restated_run_id"]), True),
            Column("note", "Note", lambda row: esc(row["note"]), True),
        ]
        out.append(table(r.adjustments, columns, "narrow"))
    return out
