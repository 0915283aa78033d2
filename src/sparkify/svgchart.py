"""Small inline SVG charts: bars (vertical or horizontal) and lines.

The report must open with no network and print cleanly, so charts are plain
SVG markup written here rather than a JavaScript library from a CDN. Every
chart carries a <title> (read by screen readers, and by the tests) and
scales with its container through its viewBox.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif"
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#d9dee4"
BLUE = "#2f6db5"
ORANGE = "#d9711c"
CHAR_WIDTH = 7.2
"""Generous width of one 12px character (DejaVu Sans is wide), to size label columns without a font engine."""

Formatter = Callable[[float], str]


def thousands(value: float) -> str:
    """12345 -> '12,345' (and 2.5 -> '2.5')."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 that cover `maximum` (steps of 1, 2 or 5 times a power of ten)."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if step < 1 and float(maximum).is_integer():
        step = 1
    top = math.ceil(maximum / step) * step
    return [i * step for i in range(int(round(top / step)) + 1)]


def _svg(title: str, width: int, height: int, body: list[str], description: str = "") -> str:
    desc = f"<desc>{escape(description)}</desc>" if description else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart" font-family="{escape(FONT, quote=True)}" font-size="12" fill="{INK}">'
        f"<title>{escape(title)}</title>{desc}" + "".join(body) + "</svg>"
    )


def _empty(title: str, width: int, message: str) -> str:
    return _svg(title, width, 80, [
        f'<text x="{width / 2}" y="44" text-anchor="middle" fill="{MUTED}">{escape(message)}</text>'
    ])


def _truncate(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    description: str = "",
    color: str = BLUE,
    colors: Sequence[str] | None = None,
    fmt: Formatter = thousands,
    width: int = 440,
    height: int = 230,
    value_labels: bool | None = None,
    empty: str = "no data",
) -> str:
    """Vertical bars on a zero-based axis; values printed above the bars when there are few."""
    if not values:
        return _empty(title, width, empty)
    left, right, top, bottom = 52, 12, 18, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(values))
    scale = plot_h / ticks[-1]
    slot = plot_w / len(values)
    bar_w = slot * 0.72
    show_values = len(values) <= 12 if value_labels is None else value_labels
    body = _y_axis(ticks, left, top, plot_w, plot_h, fmt)
    label_every = max(1, math.ceil(len(labels) * 34 / plot_w))
    for i, (label, value) in enumerate(zip(labels, values)):
        x = left + i * slot + (slot - bar_w) / 2
        h = value * scale
        fill = colors[i % len(colors)] if colors else color
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{fill}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
        if show_values:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" '
                f'font-size="11">{escape(fmt(value))}</text>'
            )
        if i % label_every == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'fill="{MUTED}">{escape(label)}</text>'
            )
    return _svg(title, width, height, body, description)


def hbar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    description: str = "",
    color: str = BLUE,
    colors: Sequence[str] | None = None,
    fmt: Formatter = thousands,
    width: int = 440,
    max_label: int = 30,
    empty: str = "no data",
) -> str:
    """Horizontal bars, for ranked lists whose labels are long (songs, places, browsers)."""
    if not values:
        return _empty(title, width, empty)
    shown = [_truncate(label, max_label) for label in labels]
    left = 16 + CHAR_WIDTH * max(len(label) for label in shown)
    value_room = 12 + CHAR_WIDTH * max(len(fmt(v)) for v in values)
    row, top, bottom = 26, 8, 8
    height = int(top + row * len(values) + bottom)
    plot_w = width - left - value_room - 8
    scale = plot_w / max(max(values), 1)
    body = [f'<line x1="{left:.1f}" y1="{top}" x2="{left:.1f}" y2="{height - bottom}" stroke="{GRID}"/>']
    for i, (label, full, value) in enumerate(zip(shown, labels, values)):
        y = top + i * row
        w = value * scale
        fill = colors[i % len(colors)] if colors else color
        body.append(
            f'<text x="{left - 8:.1f}" y="{y + row / 2 + 4:.1f}" text-anchor="end">{escape(label)}'
            f"<title>{escape(full)}</title></text>"
        )
        body.append(
            f'<rect x="{left:.1f}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row - 8}" fill="{fill}">'
            f"<title>{escape(full)}: {escape(fmt(value))}</title></rect>"
        )
        body.append(
            f'<text x="{left + w + 6:.1f}" y="{y + row / 2 + 4:.1f}" font-size="11">{escape(fmt(value))}</text>'
        )
    return _svg(title, width, height, body, description)


def line_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    description: str = "",
    color: str = BLUE,
    fmt: Formatter = thousands,
    width: int = 440,
    height: int = 230,
    empty: str = "no data",
) -> str:
    """One series over time on a zero-based axis, with a dot per point."""
    if not values:
        return _empty(title, width, empty)
    left, right, top, bottom = 52, 16, 18, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(values))
    scale = plot_h / ticks[-1]
    step = plot_w / max(len(values) - 1, 1)
    points = [(left + i * step, top + plot_h - v * scale) for i, v in enumerate(values)]
    body = _y_axis(ticks, left, top, plot_w, plot_h, fmt)
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    label_every = max(1, math.ceil(len(labels) * 44 / plot_w))
    for i, ((x, y), label, value) in enumerate(zip(points, labels, values)):
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{color}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></circle>"
        )
        if i % label_every == 0:
            body.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
            )
    return _svg(title, width, height, body, description)


def _y_axis(ticks: list[float], left: float, top: float, plot_w: float, plot_h: float, fmt: Formatter) -> list[str]:
    """Horizontal grid lines with their values, the zero line darker."""
    out = []
    for tick in ticks:
        y = top + plot_h - tick / ticks[-1] * plot_h
        stroke = MUTED if tick == 0 else GRID
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{stroke}"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}" font-size="11">'
            f'{escape(fmt(tick))}</text>'
        )
    return out
