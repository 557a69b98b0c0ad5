"""Small server-rendered SVG charts: no JavaScript, no CDN, readable on a phone.

Every label passes through `xml.sax.saxutils.escape`; the SVG is inlined in the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 40
PALETTE = ("#2f6f9f", "#e07b39", "#4c9f70", "#b8477a", "#8a6bbf", "#c9a227", "#5a8f99", "#a05a2c",
           "#6b8e23", "#d0605e", "#3f7fbf", "#998877", "#7f7fbf", "#999999")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return float(step * 4 if value > step * 2 else step * 2 if value > step else step)
    return float(value)


def _frame(title: str, body: list[str], y_max: float, unit: str) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    grid = []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        value = y_max * i / 4
        label = f"{value:.0f}" if y_max >= 4 else f"{value:.1f}"
        grid.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                    f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{escape(label)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(title, {chr(34): "&quot;"})}" class="chart">'
            f'<title>{escape(title)}</title>{"".join(grid)}{"".join(body)}'
            f'<text x="{LEFT}" y="{TOP - 4}" class="axis">{escape(unit)}</text></svg>')


def stacked_bars(title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], unit: str = "") -> str:
    """One bar per x label, stacked by series (e.g. requests per category per week)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(x_labels))]
    y_max = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(x_labels))
    bar = slot * 0.6
    body = []
    for i, label in enumerate(x_labels):
        x = LEFT + i * slot + (slot - bar) / 2
        base = TOP + plot_h
        for index, (name, values) in enumerate(series):
            h = plot_h * values[i] / y_max
            if h <= 0:
                continue
            base -= h
            body.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(name)}: {values[i]:g}</title></rect>')
        body.append(f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="axis">'
                    f'{escape(label)}</text>')
    return _frame(title, body, y_max, unit)


def line(title: str, x_labels: Sequence[str], values: Sequence[float | None], unit: str = "",
         y_max: float | None = None) -> str:
    """A line with dots; None values leave a gap (no data that week)."""
    top = y_max if y_max is not None else _nice_max(max((v for v in values if v is not None), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(x_labels))
    points, body, segment = [], [], []
    for i, value in enumerate(values):
        x = LEFT + i * slot + slot / 2
        body.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="axis">'
                    f'{escape(x_labels[i])}</text>')
        if value is None:
            if len(segment) > 1:
                points.append(segment)
            segment = []
            continue
        y = TOP + plot_h - plot_h * min(value, top) / top
        segment.append((x, y))
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[0]}"><title>{value:g}</title></circle>')
    if len(segment) > 1:
        points.append(segment)
    for seg in points:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in seg)
        body.insert(0, f'<polyline points="{coords}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    return _frame(title, body, top, unit)


def legend(series: Sequence[str]) -> list[tuple[str, str]]:
    """(colour, name) pairs in the order the stacked bars use."""
    return [(PALETTE[i % len(PALETTE)], name) for i, name in enumerate(series)]
