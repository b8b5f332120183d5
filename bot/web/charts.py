"""Server-rendered SVG charts for the dashboard.

The markup uses presentation attributes and the CSS classes in static/app.css only, because
the Content-Security-Policy forbids inline styles. Each chart has a <title> and <desc>; the
page also shows the same figures in a table.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

SERIES_CLASSES = 10

_WIDTH = 640
_HEIGHT = 260
_LEFT = 40
_RIGHT = 10
_TOP = 10
_BOTTOM = 40


def column_chart(chart_id: str, title: str, description: str, labels: Sequence[str],
                 series: Sequence[tuple[str, Sequence[int | float]]], *, unit: str = "") -> Markup:
    """Return a column chart with one column per label, its series stacked, as inline SVG."""
    totals = [sum(values[index] for _name, values in series) for index in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM
    slot = plot_width / max(1, len(labels))
    bar_width = slot * 0.7

    parts = [_open(chart_id, title, description)]
    parts += _y_axis(top, plot_height, unit)
    for index, label in enumerate(labels):
        x = _LEFT + index * slot + (slot - bar_width) / 2
        base = _TOP + plot_height
        for number, (name, values) in enumerate(series):
            value = values[index]
            if value <= 0:
                continue
            height = plot_height * value / top
            base -= height
            parts.append(f'<rect class="app-chart__series-{number % SERIES_CLASSES}" x="{x:.1f}" y="{base:.1f}" '
                         f'width="{bar_width:.1f}" height="{height:.1f}">'
                         f'<title>{escape(label)}, {escape(name)}: {_format(value, unit)}</title></rect>')
        parts.append(f'<text class="app-chart__label" x="{x + bar_width / 2:.1f}" y="{_HEIGHT - _BOTTOM + 16}" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line class="app-chart__axis" x1="{_LEFT}" y1="{_TOP + plot_height}" '
                 f'x2="{_WIDTH - _RIGHT}" y2="{_TOP + plot_height}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(chart_id: str, title: str, description: str, items: Sequence[tuple[str, int | float]], *,
              unit: str = "") -> Markup:
    """Return a horizontal bar chart, one bar per (label, value), with the value printed beside it."""
    label_width = 200
    row = 28
    height = _TOP + row * max(1, len(items)) + 10
    top = _nice_max(max((value for _label, value in items), default=0))
    plot_width = _WIDTH - label_width - 70

    parts = [_open(chart_id, title, description, height=height)]
    for index, (label, value) in enumerate(items):
        y = _TOP + index * row
        width = plot_width * value / top if top else 0
        parts.append(f'<text class="app-chart__label" x="{label_width - 8}" y="{y + 17}" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="app-chart__series-{index % SERIES_CLASSES}" x="{label_width}" y="{y + 4}" '
                     f'width="{width:.1f}" height="{row - 8}"/>')
        parts.append(f'<text class="app-chart__value" x="{label_width + width + 6:.1f}" y="{y + 17}">'
                     f'{_format(value, unit)}</text>')
    parts.append(f'<line class="app-chart__axis" x1="{label_width}" y1="{_TOP}" x2="{label_width}" '
                 f'y2="{height - 10}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(chart_id: str, title: str, description: str, *, height: int = _HEIGHT) -> str:
    chart_id = escape(chart_id)
    return (f'<svg class="app-chart" id="{chart_id}" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" '
            f'height="{height}" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{chart_id}-title">{escape(title)}</title>'
            f'<desc id="{chart_id}-desc">{escape(description)}</desc>')


def _y_axis(top: float, plot_height: float, unit: str) -> list[str]:
    parts = []
    for step in range(5):
        value = top * step / 4
        y = _TOP + plot_height - plot_height * step / 4
        parts.append(f'<line class="app-chart__grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="app-chart__label" x="{_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_format(value, unit)}</text>')
    return parts


def _nice_max(value: float) -> float:
    """Return a round axis maximum at or above `value` (4 for an empty chart)."""
    if value <= 0:
        return 4
    for candidate in (4, 8, 12, 20, 40, 60, 80, 100):
        if value <= candidate:
            return candidate
    magnitude = 10 ** (len(str(int(value))) - 1)
    return -(-value // magnitude) * magnitude


def _format(value: float, unit: str) -> str:
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{text}{unit}"
