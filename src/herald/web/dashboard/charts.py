"""Charts as inline SVG rendered on the server: no chart library, nothing to download, readable without JS.

Colours come from CSS classes (the page's Content-Security-Policy allows no inline styles), and every chart
carries a text alternative; the pages add the numbers as a table as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup


@dataclass(frozen=True)
class Series:
    """One stacked band: a CSS class suffix, its label, one value per bucket."""

    key: str
    label: str
    values: Sequence[int]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 4), for a round axis."""
    if value <= 4:
        return 4
    magnitude = int(10 ** int(math.log10(value)))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= value)


def stacked_bars(
    buckets: Sequence[datetime], series: Sequence[Series], *, title: str, chart_id: str
) -> Markup:
    """Bars per hour, stacked by status; each bar's tooltip gives its numbers."""
    width, height, left, bottom, top = 720.0, 200.0, 40.0, 22.0, 8.0
    plot_w, plot_h = width - left - 4, height - bottom - top
    totals = [sum(s.values[i] for s in series) for i in range(len(buckets))]
    peak = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(buckets), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts: list[Markup] = []
    for tick in range(5):  # gridlines and y labels at 0, 25, 50, 75, 100 % of the axis
        y = _num(top + plot_h - plot_h * tick / 4)
        parts.append(
            Markup('<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>').format(
                _num(left), _num(width - 4), y, y
            )
        )
        parts.append(
            Markup('<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>').format(
                _num(left - 6), _num(float(y) + 4), _num(peak * tick / 4)
            )
        )
    for i, bucket in enumerate(buckets):
        x = left + i * slot + (slot - bar_w) / 2
        y_top = top + plot_h
        label = bucket.strftime("%H:00")
        detail = ", ".join(f"{s.label} {s.values[i]}" for s in series if s.values[i])
        parts.append(Markup("<g><title>{} UTC: {}</title>").format(label, detail or "no messages"))
        for s in series:
            h = plot_h * s.values[i] / peak
            if h <= 0:
                continue
            y_top -= h
            parts.append(
                Markup('<rect class="bar s-{}" x="{}" y="{}" width="{}" height="{}"/>').format(
                    s.key, _num(x), _num(y_top), _num(bar_w), _num(h)
                )
            )
        parts.append(Markup("</g>"))
        if i % 3 == 0:
            parts.append(
                Markup('<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>').format(
                    _num(x + bar_w / 2), _num(height - 6), label
                )
            )
    summary = "; ".join(f"{s.label}: {sum(s.values)}" for s in series)
    desc = f"{sum(totals)} messages in {len(buckets)} hours. {summary}."
    return Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-t {id}-d">'
        '<title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>{body}</svg>'
    ).format(w=_num(width), h=_num(height), id=chart_id, title=title, desc=desc, body=Markup("").join(parts))


def sparkline(values: Sequence[float], *, threshold: float | None, title: str) -> Markup:
    """Recent values as a line, with the threshold dashed; an empty frame when there is nothing yet."""
    width, height, pad = 160.0, 40.0, 4.0
    frame = Markup('<svg class="spark" viewBox="0 0 {} {}" role="img"><title>{}</title>{}</svg>')
    if not values:
        mid = _num(height / 2)
        line = Markup('<line class="spark-empty" x1="{}" x2="{}" y1="{}" y2="{}"/>').format(
            _num(pad), _num(width - pad), mid, mid
        )
        return frame.format(_num(width), _num(height), f"{title}: no values yet", line)
    marks = [*values, *([threshold] if threshold is not None else [])]
    low, high = min(marks), max(marks)
    span = (high - low) or 1.0

    def y_of(value: float) -> str:
        return _num(height - pad - (value - low) / span * (height - 2 * pad))

    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [(_num(pad + i * step), y_of(v)) for i, v in enumerate(values)]
    parts: list[Markup] = []
    if threshold is not None:
        ty = y_of(threshold)
        parts.append(
            Markup('<line class="spark-threshold" x1="{}" x2="{}" y1="{}" y2="{}"/>').format(
                _num(pad), _num(width - pad), ty, ty
            )
        )
    path = " ".join(f"{x},{y}" for x, y in points)
    parts.append(Markup('<polyline class="spark-line" points="{}"/>').format(path))
    parts.append(Markup('<circle class="spark-dot" cx="{}" cy="{}" r="2.5"/>').format(*points[-1]))
    words = f"{title}: recent values " + ", ".join(_num(v) for v in values[-10:])
    if threshold is not None:
        words += f"; threshold {_num(threshold)}"
    return frame.format(_num(width), _num(height), words, Markup("").join(parts))
