"""Charts drawn on the server as SVG: pure functions from figures to an SVG string, no JavaScript.

Accessible by construction: each chart is role="img" with a <title> and a <desc> (named by
aria-labelledby), every bar and point carries its value as text, a target line is dashed and labelled,
and nothing relies on colour alone. Every piece of text is escaped.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from html import escape

Number = float | int

WIDTH = 640
HEIGHT = 240
# Room for the axis labels: left, right, top, bottom.
PAD_L, PAD_R, PAD_T, PAD_B = 48, 16, 16, 48
PAD_R_TARGET = 84  # a line chart with a target: room for "Target 95%" to the right of the plot


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _id(value: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    return slug or "chart"


def _fmt(v: Number) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def nice_max(value: float) -> float:
    """A round axis maximum at or above value (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def axis_max(value: float, whole: bool = False) -> float:
    """The top of a four-step axis at or above value, each step a round number (a whole number when
    the values are counts)."""
    step = nice_max(value / 4) if value > 0 else 0.25
    if whole:
        step = max(1, math.ceil(step))
    return 4 * step


def _label_every(n: int, room: float, per_label: float = 34.0) -> int:
    """Show every kth category label so that they do not overlap."""
    return max(1, math.ceil(n * per_label / room)) if n else 1


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    cid = _id(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{cid}-title {cid}-desc">',
        f'<title id="{cid}-title">{_e(title)}</title>',
        f'<desc id="{cid}-desc">{_e(desc)}</desc>',
    ]


def _y_axis(parts: list[str], top: float, bottom: float, y_max: float, fmt: Callable[[Number], str],
            right: float) -> None:
    plot_h = bottom - top
    for i in range(5):
        v = y_max * i / 4
        y = bottom - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{PAD_L}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" />')
        parts.append(f'<text class="tick" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt(v))}</text>')


def bar_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], values: Sequence[Number], *,
              y_label: str = "", value_format: Callable[[Number], str] = _fmt, width: int = WIDTH,
              height: int = HEIGHT) -> str:
    """Vertical bars, one per label, each with its value written above it (when there is room)."""
    if len(labels) != len(values):
        raise ValueError("one value per label")
    parts = _open(chart_id, title, desc, width, height)
    top, bottom = PAD_T, height - PAD_B
    plot_w, plot_h = width - PAD_L - PAD_R, bottom - top
    y_max = axis_max(max((float(v) for v in values), default=0),
                     whole=all(float(v).is_integer() for v in values))
    _y_axis(parts, top, bottom, y_max, lambda v: _fmt(v), width - PAD_R)
    n = len(values)
    if n == 0:
        parts.append(f'<text class="empty" x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">'
                     'No data for this period</text>')
    slot = plot_w / max(n, 1)
    bar_w = max(1.0, slot * 0.7)
    every = _label_every(n, plot_w)
    show_values = slot >= 14
    for i, (label, v) in enumerate(zip(labels, values)):
        x = PAD_L + i * slot + (slot - bar_w) / 2
        h = plot_h * float(v) / y_max
        y = bottom - h
        parts.append(f'<g class="bar"><title>{_e(label)}: {_e(value_format(v))}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" /></g>')
        if show_values:
            parts.append(f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" '
                         f'text-anchor="middle">{_e(value_format(v))}</text>')
        if i % every == 0:
            parts.append(f'<text class="label" x="{x + bar_w / 2:.1f}" y="{bottom + 16}" '
                         f'text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<line class="axis" x1="{PAD_L}" y1="{bottom}" x2="{width - PAD_R}" y2="{bottom}" />')
    if y_label:
        parts.append(f'<text class="axis-label" x="{PAD_L}" y="{height - 8}">{_e(y_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], values: Sequence[Number | None], *,
               y_max: float = 100.0, target: float | None = None, unit: str = "%", y_label: str = "",
               width: int = WIDTH, height: int = HEIGHT) -> str:
    """A line through the values (None: no data, a gap in the line, marked "no data"), each point a
    marker with its value written beside it, and an optional dashed, labelled target line."""
    if len(labels) != len(values):
        raise ValueError("one value per label")
    parts = _open(chart_id, title, desc, width, height)
    top, bottom = PAD_T, height - PAD_B
    right = width - (PAD_R_TARGET if target is not None else PAD_R)  # the target's label sits beyond the plot
    plot_w, plot_h = right - PAD_L, bottom - top
    _y_axis(parts, top, bottom, y_max, lambda v: f"{_fmt(v)}{unit}", right)
    n = len(values)
    slot = plot_w / max(n, 1)

    def y_of(v: float) -> float:
        return bottom - plot_h * min(max(v, 0.0), y_max) / y_max

    if target is not None:
        ty = y_of(target)
        parts.append(f'<line class="target" x1="{PAD_L}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" '
                     'stroke-dasharray="6 4" />')
        parts.append(f'<text class="target-label" x="{right + 4}" y="{ty + 4:.1f}" text-anchor="start">'
                     f'Target {_e(_fmt(target))}{_e(unit)}</text>')
    segments: list[list[str]] = [[]]
    marks: list[str] = []  # drawn over the line
    every = _label_every(n, plot_w)
    show_values = slot >= 30
    for i, (label, v) in enumerate(zip(labels, values)):
        x = PAD_L + i * slot + slot / 2
        if i % every == 0:
            parts.append(f'<text class="label" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_e(label)}</text>')
        if v is None:
            if segments[-1]:
                segments.append([])
            if show_values:
                parts.append(f'<text class="value none" x="{x:.1f}" y="{bottom - 4}" '
                             'text-anchor="middle">no data</text>')
            continue
        y = y_of(float(v))
        segments[-1].append(f"{x:.1f},{y:.1f}")
        marks.append(f'<g class="point"><title>{_e(label)}: {_e(_fmt(v))}{_e(unit)}</title>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" /></g>')
        if show_values:
            marks.append(f'<text class="value" x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">'
                         f'{_e(_fmt(v))}{_e(unit)}</text>')
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline class="line" fill="none" points="{" ".join(seg)}" />')
    parts += marks
    parts.append(f'<line class="axis" x1="{PAD_L}" y1="{bottom}" x2="{right}" y2="{bottom}" />')
    if y_label:
        parts.append(f'<text class="axis-label" x="{PAD_L}" y="{height - 8}">{_e(y_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


__all__ = ["bar_chart", "line_chart", "nice_max", "axis_max"]
