"""HTML of the filing report: inline CSS and hand-drawn SVG charts, no script, no external resource.

On screen the page is at most 1200 px wide. Printed (A4 or Letter, landscape) every table fits the
page width with all its columns: smaller type, headers that wrap, codes that break anywhere, no
scrolling box; long tables continue on the next page with their header row repeated, and a row,
a chart or a heading with its table's start is never cut in two. The verdict (status, statistic,
critical value, p-value) comes right after the cell's name, before the numbers behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from carrier_sla import __version__
from carrier_sla.readers import report_restated
from carrier_sla.readers.report_charts import bar_chart, line_chart
from carrier_sla.readers.report_words import (
    COLUMN_MEANINGS,
    KIND_WORDS,
    METHOD_MEANINGS,
    METHOD_WORDS,
    STATUS_MEANINGS,
    STATUS_WORDS,
    count,
    critical,
    esc,
    missing,
    money,
    number,
    p_value,
    statistic,
    unit_words,
    words,
)

if TYPE_CHECKING:
    from carrier_sla.readers.report import Report

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1440px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #446; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 12px; font-variant-numeric: tabular-nums; }
table { width: 100%; } table.narrow { width: auto; font-size: 12.5px; }
th, td { border: 1px solid #ccd; padding: 2px 4px; text-align: right; vertical-align: top; }
th.remedy { min-width: 5.5em; }
th { background: #eef; font-weight: 600; } th.group { text-align: center; } td.t, th.t { text-align: left; }
td { white-space: nowrap; } td.t { white-space: normal; }
tr.miss td { background: #fde8e8; } .provisional { background: #fff4d6; border: 1px solid #e0b84d; padding: .6em; }
.cur { color: #555; font-size: .9em; } .muted { color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.wide { overflow-x: auto; } figure { margin: 0; } figcaption { font-size: 12px; color: #444; max-width: 300px; }
figure.bars figcaption { max-width: none; } svg { max-width: 100%; height: auto; }
dl.glossary { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.glossary dt { font-weight: 600; } dl.glossary dd { margin: 0; }
@page { size: landscape; margin: 10mm; }
@media print {
  body { font-size: 9pt; margin: 0; max-width: none; padding: 0; }
  h1 { font-size: 15pt; margin-top: 0; } h2 { font-size: 12pt; margin-top: 1.2em; } h3 { font-size: 10pt; }
  h2, h3, p.lead { break-after: avoid; page-break-after: avoid; }
  .wide { overflow: visible; }
  table { width: 100%; font-size: 7pt; margin: .2em 0 .6em; }
  table.narrow { width: auto; font-size: 8pt; }
  th, td { padding: 1px 3px; } th.group { text-align: center; }
  td.t { overflow-wrap: break-word; }
  thead { display: table-header-group; }
  tr, figure, .provisional, dl.glossary > * { break-inside: avoid; page-break-inside: avoid; }
  tr.miss td, th, .provisional { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .charts { gap: .6em; } figcaption { font-size: 8pt; }
}
"""


@dataclass(frozen=True)
class Column:
    """A column of an HTML table: the frame's column, its header in words, how a row shows it."""

    key: str
    header: str
    show: Callable[[dict[str, Any]], str]
    text: bool = False  # left-aligned words, not a figure
    group: str = ""  # a header over neighbouring columns ("CLEC" over numerator, denominator, result)


def _plain(key: str, how: Callable[[object], str] = esc) -> Callable[[dict[str, Any]], str]:
    return lambda row: how(row.get(key))


def table(
    frame: pd.DataFrame, columns: list[Column], css: str = "", keep_empty: bool = False, shade: bool = True
) -> str:
    """One table; a column every row leaves blank is left out (unless keep_empty), the header row repeats
    on every printed page, and a missed cell's row is shaded (unless every row missed: shade False)."""
    rows: list[dict[str, Any]] = [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]
    shown = {c.key: [c.show(r) for r in rows] for c in columns}
    columns = [c for c in columns if keep_empty or not rows or any(shown[c.key])]
    body = []
    for i, row in enumerate(rows):
        cls = ' class="miss"' if shade and row.get("status") == "miss" else ""
        cells = "".join(f"<td{' class=t' if c.text else ''}>{shown[c.key][i]}</td>" for c in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    attr = f' class="{css}"' if css else ""
    return f"<div class=wide><table{attr}><thead>{_head(columns)}</thead><tbody>{''.join(body)}</tbody></table></div>"


def _head(columns: list[Column]) -> str:
    """One header row, or two where columns are grouped (the group spans its columns)."""

    def th(c: Column, extra: str = "") -> str:
        css = " ".join(filter(None, ["t" if c.text else "", c.group.lower()]))
        return f'<th class="{css}" scope="col"{extra}>{esc(c.header)}</th>'

    if not any(c.group for c in columns):
        return f"<tr>{''.join(th(c) for c in columns)}</tr>"
    top, i = [], 0
    while i < len(columns):
        c = columns[i]
        if not c.group:
            top.append(th(c, ' rowspan="2"'))
            i += 1
            continue
        span = 1
        while i + span < len(columns) and columns[i + span].group == c.group:
            span += 1
        top.append(f'<th class="group" scope="colgroup" colspan="{span}">{esc(c.group)}</th>')
        i += span
    return f"<tr>{''.join(top)}</tr><tr>{''.join(th(c) for c in columns if c.group)}</tr>"


def _standard(row: dict[str, Any]) -> str:
    if row.get("standard") != "benchmark":
        return esc(row.get("standard"))
    sign = "&le;" if row.get("direction") == "lower_better" else "&ge;"
    return f"benchmark {sign} {number(row.get('benchmark'))}"


def result_columns(carrier: bool) -> list[Column]:
    """The columns of a measure's results (carrier: the CLEC cells that missed, else the all-CLEC cells):
    the cell, its verdict and test, the numbers behind it, the standard, and the remedy."""
    first = (
        [Column("carrier_id", "Carrier", _plain("carrier_id"), True)]
        if carrier
        else [Column("status", "Status", lambda r: esc(STATUS_WORDS.get(r["status"], r["status"])), True)]
    )
    return [
        *first,
        Column("state", "State", _plain("state"), True),
        Column("product", "Product", _plain("product"), True),
        Column("submeasure", "Submeasure", lambda r: "" if r["submeasure"] == "all" else esc(r["submeasure"]), True),
        Column("statistic", "Statistic", _plain("statistic", statistic), group="Test"),
        Column("critical_value", "Critical value", _plain("critical_value", critical), group="Test"),
        Column("p_value", "p-value", _plain("p_value", p_value), group="Test"),
        Column("alpha", "Alpha", _plain("alpha", critical), group="Test"),
        Column("method", "Method", _plain("method", _method), True, group="Test"),
        Column("clec_numerator", "Numerator", _plain("clec_numerator", count), group="CLEC"),
        Column("clec_n", "Denominator", _plain("clec_n", count), group="CLEC"),
        Column("clec_value", "Result", _plain("clec_value", number), group="CLEC"),
        Column("retail_numerator", "Numerator", _plain("retail_numerator", count), group="Retail"),
        Column("retail_n", "Denominator", _plain("retail_n", count), group="Retail"),
        Column("retail_value", "Result", _plain("retail_value", number), group="Retail"),
        Column("standard", "Standard", _standard, True),
        Column("threshold", "Threshold that would have passed", _plain("threshold", number), group="Remedy"),
        Column("amount", "Paid", lambda r: money(r.get("amount"), str(r.get("currency") or "")), group="Remedy"),
        Column("excusal_reference", "Excused by", _plain("excusal_reference"), True, group="Remedy"),
    ]


def _method(method: object) -> str:
    return "" if missing(method) else esc(METHOD_WORDS.get(str(method), words(method)))


def _status_header(status: str) -> str:
    return STATUS_WORDS.get(status, words(status))


def page(r: Report) -> str:
    scope = f" &middot; state {esc(r.state)}" if r.state else ""
    out = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Performance report {esc(r.period)}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>Wholesale performance report, {esc(r.period)}{scope}</h1>",
        f'<p class="muted">Plan {esc(r.plan)} &middot; run {esc(r.run_id)} &middot; carrier_sla {esc(__version__)} '
        f"&middot; generated {esc(_now())}</p>",
    ]
    if r.provisional:
        out.append(
            f'<p class="provisional" id="provisional"><b>Provisional:</b> month to date as of '
            f"{esc(r.provisional_as_of)}; the final run of the month replaces these results.</p>"
        )
    out.append("<h2>Summary</h2><h3>CLEC cells by state and status</h3>")
    summary_columns = [Column("state", "State", _plain("state"), True)] + [
        Column(c, _status_header(c), _plain(c, count)) for c in r.summary.columns if c != "state"
    ]
    out.append(table(r.summary, summary_columns, "narrow", keep_empty=True))
    currency = f'<span class="cur">{esc(r.currency)}</span>&nbsp;' if r.currency else ""
    out.append(f'<h3>Payments by payee</h3><p>Total paid: <b>{currency}<span id="total-paid">{r.total_paid:,.2f}</span>'
               "</b></p>")  # fmt: skip
    out.append(table(r.payments, _payment_columns(), "narrow", keep_empty=True))
    out += _charts(r)
    out.append("<h2>Results by measure</h2>")
    for measure_id in _measure_ids(r):
        rows = r.measures[r.measures["measure_id"] == measure_id]
        unit = unit_words(next(iter(rows["unit"].dropna()), ""))
        in_unit = f"; results and thresholds in {esc(unit)}" if unit else ""
        out.append(f'<h3 id="measure-{esc(measure_id)}">{esc(_name(r, measure_id))}</h3>')
        out.append(f'<p class="lead">All CLECs together against the retail analog (or the benchmark){in_unit}:</p>')
        out.append(table(rows, result_columns(carrier=False)))
        missed = r.misses[r.misses["measure_id"] == measure_id]
        if len(missed):
            out.append(
                f'<p class="lead">CLEC cells that missed ({len(missed)}), with the numbers behind each verdict, '
                "the result that would have passed and the remedy paid:</p>"
            )
            out.append(table(missed, result_columns(carrier=True), shade=False))
    out += restated_sections(r)
    out.append("<h2>Notes</h2>")
    out.append(
        "<p>Exclusions are the plan's rules, counted over every record evaluated (all carriers); rejected "
        "records failed the input contract and were reported, not used.</p>"
    )
    notes = [
        Column("kind", "Kind", lambda row: esc(KIND_WORDS.get(row["kind"], row["kind"])), True),
        Column(
            "measure_id", "Measure", lambda row: esc(_name(r, row["measure_id"])) if row["measure_id"] else "", True
        ),
        Column("reason", "Reason", _plain("reason"), True),
        Column("records", "Records", _plain("records", count)),
    ]
    out.append(table(r.notes, notes, "narrow", keep_empty=True))
    out.append(glossary(r))
    out.append("</body></html>")
    return "\n".join(out)


def _payment_columns() -> list[Column]:
    def cash(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda row: money(row[key], str(row.get("currency") or ""))

    return [
        Column("payee", "Payee", _plain("payee"), True),
        Column("tier", "Tier", lambda row: esc(words(row["tier"])), True),
        Column("lines", "Payment lines", _plain("lines", count)),
        Column("amount_uncapped", "Before caps", cash("amount_uncapped")),
        Column("amount", "Paid", cash("amount")),
    ]


def _charts(r: Report) -> list[str]:
    counts = r.misses.groupby("measure_id").size() if len(r.misses) else pd.Series(dtype=int)
    ids = _measure_ids(r)
    out = ["<h2>Misses by measure</h2><div class=charts>"]
    out.append(bar_chart([_name(r, m) for m in ids], [float(counts.get(m, 0)) for m in ids], "CLEC cells missed"))
    out.append(
        "</div><h2>CLEC and retail over the last 12 months</h2>"
        '<p class="lead">Pooled over the states and products, one chart per measure and standard. Each vertical '
        "axis spans its own data (it need not start at 0); a dashed line is the benchmark.</p><div class=charts>"
    )
    months = sorted(set(r.trend["month"]))
    groups = r.trend[["measure_id", "standard", "benchmark"]].drop_duplicates()
    order = {m: i for i, m in enumerate(ids)}
    groups = groups.assign(o=groups["measure_id"].map(order).fillna(len(order))).sort_values(["o", "standard"])
    for measure_id, standard, benchmark in groups[["measure_id", "standard", "benchmark"]].itertuples(index=False):
        target = None if missing(benchmark) else float(benchmark)
        t = r.trend[
            (r.trend["measure_id"] == measure_id)
            & (r.trend["standard"] == standard)
            & (r.trend["benchmark"].isna() if target is None else r.trend["benchmark"] == benchmark)
        ]
        t = t.set_index("month").reindex(months)
        unit = unit_words(t["unit"].dropna().iloc[0]) if t["unit"].notna().any() else ""
        where = r.scopes.get((measure_id, standard, target), "")
        title = f"{_name(r, measure_id)}: {standard}{', ' + where if where else ''}"
        series = {"all CLECs": list(t["clec_value"].astype(float))}
        if target is None:
            series["retail"] = list(t["retail_value"].astype(float))
        out.append(line_chart(months, series, title, unit, benchmark=target))
    out.append("</div>")
    return out


def glossary(r: Report) -> str:
    """What the statuses, methods and test columns mean."""
    methods = set(r.measures["method"].dropna()) | set(r.misses["method"].dropna())

    def entries(names: dict[str, str], meanings: dict[str, str], used: set[str] | None = None) -> str:
        return "".join(
            f"<dt>{esc(names.get(k, k))}</dt><dd>{esc(text)}</dd>"
            for k, text in meanings.items()
            if used is None or k in used
        )

    return (
        '<h2 id="glossary">Glossary</h2><h3>Statuses</h3><dl class="glossary">'
        + entries(STATUS_WORDS, STATUS_MEANINGS)
        + '</dl><h3>Methods</h3><dl class="glossary">'
        + entries(METHOD_WORDS, METHOD_MEANINGS, methods)
        + '</dl><h3>Columns</h3><dl class="glossary">'
        + entries({}, COLUMN_MEANINGS)
        + "</dl>"
    )


def _measure_ids(r: Report) -> list[str]:
    return list(dict.fromkeys(r.measures["measure_id"]))


def _name(r: Report, measure_id: str) -> str:
    """A measure as people name it: its id and its title in the plan."""
    title = r.titles.get(measure_id, "")
    return f"{measure_id} {title}" if title else str(measure_id)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def restated_sections(r: Report) -> list[str]:
    """The report's sections on excused cells and on a restatement (none when there is neither)."""
    out = []
    if r.excused is not None and len(r.excused):
        out.append('<h2 id="excusals">Excused by the commission</h2>')
        out.append(
            '<p class="lead">These cells keep their verdict and figures; the commission excused them (root '
            "cause), so they pay nothing and their count of consecutive missed months stays as it was.</p>"
        )

        def shown(key: str) -> Callable[[dict[str, Any]], str]:
            return lambda row: esc(row.get(key))

        keys = report_restated.EXCUSAL_COLUMNS
        columns = [Column(key, key.replace("_", " ").capitalize(), shown(key), True) for key in keys]
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
