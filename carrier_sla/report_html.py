"""HTML of the filing report: inline CSS and hand-drawn SVG charts, no script, no external resource."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from carrier_sla import __version__

if TYPE_CHECKING:
    from carrier_sla.report import Report

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #446; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 12.5px; }
th, td { border: 1px solid #ccd; padding: 2px 6px; text-align: right; }
th { background: #eef; } td.t, th.t { text-align: left; }
tr.miss td { background: #fde8e8; } .provisional { background: #fff4d6; border: 1px solid #e0b84d; padding: .6em; }
.muted { color: #666; } .charts { display: flex; flex-wrap: wrap; gap: 1em; }
.wide { overflow-x: auto; } figure { margin: 0; } figcaption { font-size: 12px; color: #444; }
"""


def esc(value: object) -> str:
    import html

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value))


def number(value: object, digits: int = 2) -> str:
    """A figure for people: thousands separators, fixed decimals, blank for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int,)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    try:
        return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return esc(value)


def table(frame: pd.DataFrame, text_columns: set[str], status_column: str | None = None) -> str:
    head = "".join(f'<th class="{"t" if c in text_columns else ""}">{esc(c)}</th>' for c in frame.columns)
    rows = []
    for record in frame.to_dict("records"):
        cls = ' class="miss"' if status_column and record.get(status_column) == "miss" else ""
        cells = "".join(
            f'<td class="t">{esc(record[c])}</td>'
            if c in text_columns
            else f"<td>{number(record[c], 4 if c == 'p_value' else 2)}</td>"
            for c in frame.columns
        )
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<div class=wide><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def bar_chart(labels: list[str], values: list[float], title: str, width: int = 520) -> str:
    """Horizontal bars, one per label."""
    height = 24 * len(labels) + 30
    top = max(values) if values and max(values) > 0 else 1.0
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 20 + 24 * i
        w = (width - 160) * value / top
        bars.append(
            f'<text x="80" y="{y + 15}" text-anchor="end">{esc(label)}</text>'
            f'<rect x="90" y="{y + 3}" width="{w:.1f}" height="16" fill="#c0392b"/>'
            f'<text x="{95 + w:.1f}" y="{y + 15}">{number(value, 0)}</text>'
        )
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="12" '
        f'role="img" aria-label="{esc(title)}">{"".join(bars)}</svg><figcaption>{esc(title)}</figcaption></figure>'
    )


def line_chart(months: list[str], series: dict[str, list[float]], title: str, unit: str) -> str:
    """Two lines (all-CLEC, retail) over months; gaps where a month has no value."""
    width, height, left, bottom = 360, 180, 46, 30
    values = [v for vs in series.values() for v in vs if not math.isnan(v)]
    if not values:
        return ""
    lo, hi = min([*values, 0.0]), max(values)
    hi = hi if hi > lo else lo + 1

    def x(i: int) -> float:
        return left + (width - left - 10) * (i / max(len(months) - 1, 1))

    def y(v: float) -> float:
        return 10 + (height - bottom - 10) * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#888"/>',
        f'<text x="4" y="{y(hi) + 4:.1f}">{number(hi, 1)}</text><text x="4" y="{y(lo) + 4:.1f}">{number(lo, 1)}</text>',
    ]
    for i, month in enumerate(months):
        if i == 0 or i == len(months) - 1 or len(months) <= 6:
            anchor = "end" if i == len(months) - 1 and i > 0 else "start" if i == 0 else "middle"
            parts.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="{anchor}">{esc(month)}</text>')
    colours = {"all CLECs": "#c0392b", "retail": "#2c3e80"}
    for name, vs in series.items():
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if not math.isnan(v))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colours[name]}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colours[name]}"/>'
            for i, v in enumerate(vs)
            if not math.isnan(v)
        ]
    legend = " ".join(f'<tspan fill="{colours[n]}">&#9632; {esc(n)}</tspan>' for n in series)
    parts.append(f'<text x="{left}" y="{height - 1}">{legend}</text>')
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11" '
        f'role="img" aria-label="{esc(title)}">{"".join(parts)}</svg><figcaption>{esc(title)} ({esc(unit)})'
        f"</figcaption></figure>"
    )


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
    out.append("<h2>Summary</h2><h3>CLEC results by state</h3>")
    out.append(table(r.summary, {"state"}))
    out.append(f'<h3>Payments by payee</h3><p>Total paid: <b id="total-paid">{r.total_paid:,.2f}</b></p>')
    payments = r.payments.assign(
        amount_uncapped=r.payments["amount_uncapped"].map(lambda d: f"{d:,.2f}"),
        amount=r.payments["amount"].map(lambda d: f"{d:,.2f}"),
    )
    out.append(table(payments, {"payee", "tier", "amount_uncapped", "amount"}))
    counts = r.misses.groupby("measure_id").size() if len(r.misses) else pd.Series(dtype=int)
    measure_ids = list(dict.fromkeys(r.measures["measure_id"]))
    out.append("<h2>Misses by measure</h2><div class=charts>")
    out.append(bar_chart(measure_ids, [float(counts.get(m, 0)) for m in measure_ids], "CLEC cells missed, by measure"))
    out.append("</div><h2>CLEC and retail over the last 12 months</h2><div class=charts>")
    months = sorted(set(r.trend["month"]))
    for measure_id in measure_ids:
        t = r.trend[r.trend["measure_id"] == measure_id].set_index("month").reindex(months)
        unit = str(t["unit"].dropna().iloc[0]) if t["unit"].notna().any() else ""
        out.append(
            line_chart(
                months,
                {"all CLECs": list(t["clec_value"].astype(float)), "retail": list(t["retail_value"].astype(float))},
                f"{measure_id} {r.titles.get(measure_id, '')}",
                unit,
            )
        )
    out.append("</div><h2>Results by measure</h2>")
    text = {"measure_id", "submeasure", "state", "product", "standard", "method", "status", "carrier_id"}
    for measure_id in measure_ids:
        rows = r.measures[r.measures["measure_id"] == measure_id].drop(columns=["measure_id"])
        out.append(f'<h3 id="measure-{esc(measure_id)}">{esc(measure_id)} {esc(r.titles.get(measure_id, ""))}</h3>')
        out.append("<p>All CLECs together against the retail analog (or the benchmark):</p>")
        out.append(table(rows, text, "status"))
        missed = r.misses[r.misses["measure_id"] == measure_id].drop(columns=["measure_id"])
        if len(missed):
            out.append(f"<p>CLEC cells that missed ({len(missed)}), with the numbers behind each verdict:</p>")
            out.append(table(missed, text, "status"))
    if r.excused is not None and len(r.excused):
        out.append('<h2 id="excusals">Excused by the commission</h2>')
        out.append(
            "<p>These cells keep their verdict and figures; the commission excused them (root cause), so they pay "
            "nothing and their escalation count stays as it was.</p>"
        )
        out.append(table(r.excused, set(r.excused.columns), "status"))
    if r.adjustments is not None and len(r.adjustments):
        adjustments = r.adjustments.assign(
            **{c: r.adjustments[c].map(lambda d: f"{d:,.2f}") for c in ("paid", "restated", "adjustment")}
        )
        out.append('<h2 id="restatement">Restatement</h2>')
        out.append(
            "<p>This month was published before and is restated: per payee what was paid (the earlier run), what "
            "the restated results pay, and the adjustment (restated minus paid).</p>"
        )
        out.append(table(adjustments, set(adjustments.columns) - {"lines"}))
    out.append("<h2>Notes</h2>")
    out.append(
        "<p>Exclusions are the plan's rules, counted over every record evaluated (all carriers); rejected "
        "records failed the input contract and were reported, not used.</p>"
    )
    out.append(table(r.notes, {"kind", "measure_id", "reason"}))
    out.append("</body></html>")
    return "\n".join(out)


def _now() -> str:
    from carrier_sla.report import generated_at

    return generated_at()
