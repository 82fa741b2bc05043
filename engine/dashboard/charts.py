"""Charts drawn by the app as inline SVG: horizontal bars, diverging bars and lines (no script, no CDN).

Each function returns markup for one ``<svg role="img">`` with a ``<title>`` and a ``<desc>``; the numbers are
also printed in the chart (a person reads them at a glance) and the page puts them in a ``<table>`` beside it.
Series differ by shape and dash as well as colour, and every colour has at least 3:1 contrast on white (WCAG
1.4.11). The drawing scales with its container (``viewBox``; CSS sets the width).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 420
FONT = 13
LABEL_WIDTH = 112
# Series styles: colour class, dash pattern, marker shape.
STYLES = (("series-a", "", "circle"), ("series-b", "6 4", "square"), ("series-c", "2 3", "diamond"))


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as printed (e.g. "1,204" or "83 %")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no answers in that bucket (a gap, not a zero)
    shown: Sequence[str]


def _svg(chart_id: str, title: str, desc: str, height: int, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-labelledby="{escape(chart_id)}-t '
        f'{escape(chart_id)}-d" viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="{FONT}">'
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title><desc id="{escape(chart_id)}-d">{escape(desc)}</desc>'
        f"{body}</svg>"
    )


def _clip(label: str, limit: int = 15) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bars(chart_id: str, title: str, desc: str, rows: Sequence[Bar], maximum: float | None = None) -> Markup:
    """Horizontal bars, one per row, the value printed at the end of each bar."""
    top = maximum if maximum is not None else max((r.value for r in rows), default=0)
    top = top or 1
    row_h, pad = 30, 8
    span = WIDTH - LABEL_WIDTH - 60
    parts = []
    for i, row in enumerate(rows):
        y = pad + i * row_h
        w = max(0.0, min(1.0, row.value / top)) * span
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 18}" text-anchor="end" class="label">{escape(_clip(row.label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" class="bar series-a"/>'
            f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + 18}" class="value">{escape(row.shown)}</text>'
        )
    parts.append(
        f'<line x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH}" y1="{pad}" y2="{pad + len(rows) * row_h}" class="axis"/>'
    )
    return _svg(chart_id, title, desc, pad * 2 + max(1, len(rows)) * row_h, "".join(parts))


def diverging(
    chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, int, int]], left: str, right: str
) -> Markup:
    """Two-sided bars per row: ``left`` counts (negative) to the left of the centre, ``right`` to the right."""
    top = max((max(n, p) for _, n, p in rows), default=0) or 1
    row_h, head = 28, 26
    centre = LABEL_WIDTH + (WIDTH - LABEL_WIDTH) / 2
    half = (WIDTH - LABEL_WIDTH) / 2 - 26
    parts = [
        f'<text x="{centre - 6:.1f}" y="16" text-anchor="end" class="label strong">{escape(left)}</text>',
        f'<text x="{centre + 6:.1f}" y="16" class="label strong">{escape(right)}</text>',
    ]
    for i, (label, negative, positive) in enumerate(rows):
        y = head + i * row_h
        wn, wp = negative / top * half, positive / top * half
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end" class="label">{escape(_clip(label))}</text>'
            f'<rect x="{centre - wn:.1f}" y="{y + 4}" width="{wn:.1f}" height="{row_h - 10}" class="bar series-neg"/>'
            f'<rect x="{centre:.1f}" y="{y + 4}" width="{wp:.1f}" height="{row_h - 10}" class="bar series-a"/>'
            f'<text x="{centre - wn - 4:.1f}" y="{y + 17}" text-anchor="end" class="value">{negative}</text>'
            f'<text x="{centre + wp + 4:.1f}" y="{y + 17}" class="value">{positive}</text>'
        )
    parts.append(
        f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{head}" y2="{head + len(rows) * row_h}" class="axis"/>'
    )
    return _svg(chart_id, title, desc, head + max(1, len(rows)) * row_h + 6, "".join(parts))


def _marker(shape: str, x: float, y: float, css: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" class="marker {css}"/>'
    if shape == "diamond":
        return f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}L{x - 5:.1f} {y:.1f}Z" class="marker {css}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" class="marker {css}"/>'


def lines(
    chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], maximum: float = 100,
    unit: str = "%",
) -> Markup:  # fmt: skip
    """A line per series over the buckets in ``labels``; a bucket without answers leaves a gap."""
    left, right, top, bottom = 40, 14, 34, 40
    height = 250
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    count = max(1, len(labels))
    step = plot_w / max(1, count - 1) if count > 1 else 0

    def x_at(i: int) -> float:
        return left + (i * step if count > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h - max(0.0, min(1.0, v / maximum)) * plot_h

    parts = []
    for tick in range(0, 5):
        level = maximum * tick / 4
        y = y_at(level)
        parts.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{level:g}{escape(unit)}</text>')  # fmt: skip
    every = max(1, -(-count // 5))  # at most about 5 bucket labels on the axis, never crowding the last one
    for i, label in enumerate(labels):
        if i % every == 0 or (i == count - 1 and i % every >= every / 2):
            parts.append(f'<text x="{x_at(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" class="tick">'
                         f"{escape(label)}</text>")  # fmt: skip
    legend_x = left
    for s_index, s in enumerate(series):
        css, dash, shape = STYLES[s_index % len(STYLES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((x_at(i), y_at(v)))
        for run in runs:
            if len(run) > 1:
                d = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in run)
                parts.append(f'<path d="{d}" class="line {css}"{dash_attr}/>')
        labelled = sum(v is not None for v in s.values) <= 8  # few points: print each one's value
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(_marker(shape, x_at(i), y_at(v), css))
                if labelled:
                    dy = -9 if s_index % 2 == 0 else 17
                    parts.append(f'<text x="{x_at(i):.1f}" y="{y_at(v) + dy:.1f}" text-anchor="middle" '
                                 f'class="value small">{escape(s.shown[i])}</text>')  # fmt: skip
        parts.append(
            f'<line x1="{legend_x}" x2="{legend_x + 26}" y1="12" y2="12" class="line {css}"{dash_attr}/>'
            + _marker(shape, legend_x + 13, 12, css)
            + f'<text x="{legend_x + 32}" y="16" class="label">{escape(s.name)}</text>'
        )
        legend_x += 44 + 8 * len(s.name)
    if not any(v is not None for s in series for v in s.values):
        parts.append(f'<text x="{WIDTH / 2}" y="{top + plot_h / 2}" text-anchor="middle" class="label">—</text>')
    return _svg(chart_id, title, desc, height, "".join(parts))
