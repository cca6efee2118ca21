"""The report's charts as inline SVG, drawn by hand (no script, no external resource).

The trend charts scale their vertical axis to the data and the benchmark (a 95.2 and a 95.7 are
half the plot apart, not a hair): the axis runs between round ticks just outside the values and
is labelled at every tick, so that it is plain where it does not start at 0.
"""

from __future__ import annotations

import math

from carrier_sla.readers.report_words import esc, number

COLOURS = {"all CLECs": "#c0392b", "retail": "#2c3e80", "benchmark": "#1e8449", "this CLEC": "#d68910"}


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at least `raw`."""
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-12))


def axis(values: list[float], ticks: int = 4, floor: float | None = None, ceiling: float | None = None) -> list[float]:
    """Round tick values from just below the smallest to just above the largest value (about `ticks`
    intervals, a little room around the data so that no point sits on the frame), kept within
    [floor, ceiling] when given (0 for counts and times, 100 for percentages)."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 if hi - lo > 1e-12 else abs(hi) * 0.01 or 1.0
    lo, hi = lo - pad, hi + pad
    lo, hi = max(lo, floor) if floor is not None else lo, min(hi, ceiling) if ceiling is not None else hi
    step = nice_step((hi - lo) / ticks)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def decimals(step: float) -> int:
    """Decimals that tell ticks `step` apart (0.25 -> 2, 0.5 -> 1, 5 -> 0)."""
    for d in range(0, 6):
        if abs(round(step, d) - step) < 1e-9:
            return d
    return 6


def bar_chart(labels: list[str], values: list[float], title: str, width: int = 760) -> str:
    """Horizontal bars, one per label; labels may be long (measure id and name)."""
    label_width = min(max((len(label) for label in labels), default=0) * 7 + 12, width // 2 + 80)
    height = 24 * len(labels) + 10
    top = max(values) if values and max(values) > 0 else 1.0
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 5 + 24 * i
        w = (width - label_width - 60) * value / top
        bars.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{esc(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{w:.1f}" height="16" fill="#c0392b"/>'
            f'<text x="{label_width + 5 + w:.1f}" y="{y + 15}">{number(value, 0)}</text>'
        )
    return (
        f'<figure class="bars"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="12" role="img" aria-label="{esc(title)}">{"".join(bars)}</svg>'
        f"<figcaption>{esc(title)}</figcaption></figure>"
    )


def line_chart(
    months: list[str], series: dict[str, list[float]], title: str, unit: str, benchmark: float | None = None
) -> str:
    """Lines over months (all-CLEC, retail; gaps where a month has no value) on an axis scaled to the
    data, and the benchmark as a dashed line when the cells are judged against one."""
    width, height, left, right, top, bottom = 300, 190, 44, 8, 8, 42
    values = [v for vs in series.values() for v in vs if not math.isnan(v)]
    if not values:
        return ""
    values += [benchmark] if benchmark is not None else []
    ticks = axis(
        values,
        floor=0.0 if min(values) >= 0 else None,
        ceiling=100.0 if unit == "%" and max(values) <= 100 else None,
    )
    lo, hi = ticks[0], ticks[-1]
    digits = decimals(ticks[1] - ticks[0]) if len(ticks) > 1 else 1

    def x(i: int) -> float:
        return left + (width - left - right) * (i / max(len(months) - 1, 1)) if len(months) > 1 else (width + left) / 2

    def y(v: float) -> float:
        return top + (height - bottom - top) * (1 - (v - lo) / (hi - lo))

    parts = []
    for t in ticks:
        parts.append(
            f'<line x1="{left}" y1="{y(t):.1f}" x2="{width - right}" y2="{y(t):.1f}" stroke="#e3e3ea"/>'
            f'<text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{number(t, digits)}</text>'
        )
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>')
    every = 1 if len(months) <= 6 else 3
    for i, month in enumerate(months):
        if i % every == 0 or i == len(months) - 1:
            anchor = "end" if i == len(months) - 1 and i > 0 else "start" if i == 0 and len(months) > 1 else "middle"
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 14}" text-anchor="{anchor}">{esc(month)}</text>')
    names = list(series)
    if benchmark is not None:
        parts.append(
            f'<line class="benchmark" x1="{left}" y1="{y(benchmark):.1f}" x2="{width - right}" y2="{y(benchmark):.1f}" '
            f'stroke="{COLOURS["benchmark"]}" stroke-width="1.5" stroke-dasharray="6 3"/>'
        )
        names.append("benchmark")
    for name, vs in series.items():
        points = [(x(i), y(v)) for i, v in enumerate(vs) if not math.isnan(v)]
        if not points:
            names.remove(name)
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[name]}" stroke-width="2"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{COLOURS[name]}"/>' for px, py in points]
    legend = " ".join(
        f'<tspan fill="{COLOURS[n]}">{"&#8212;" if n == "benchmark" else "&#9632;"} {esc(n)}'
        f"{f' {benchmark:g}' if n == 'benchmark' else ''}</tspan>"
        for n in names
    )
    parts.append(f'<text x="{left}" y="{height - 6}">{legend}</text>')
    return (
        f'<figure class="trend"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="11" role="img" aria-label="{esc(title)}">{"".join(parts)}</svg>'
        f"<figcaption>{esc(title)} ({esc(unit)})</figcaption></figure>"
    )
