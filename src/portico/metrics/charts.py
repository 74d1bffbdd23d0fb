"""Bar charts drawn as inline SVG on the server: no chart library, no script, readable by screen
readers (a <title> and <desc>, and a <title> per bar) and always shown beside a table of numbers."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 26, 10


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude: int = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def shared_top(*series: list[float], limit: float | None = None) -> float:
    """One axis for charts read side by side, so equal values stand equally tall in each: the nice
    maximum of them all (at most `limit`: a share never passes 100%)."""
    top = _nice_max(max((max(values, default=0) for values in series), default=0))
    return min(top, limit) if limit else top


def _total(total: float, unit: str) -> str:
    # A sum of shares means nothing: only counts say how many in all.
    return "" if unit == "%" else f"{total:g} in all, "


def bar_chart(
    chart_id: str,
    title: str,
    labels: list[str],
    values: list[float],
    *,
    color: str = "#1f5fbf",
    every_label: bool = False,
    top: float | None = None,
    unit: str = "",
) -> Markup:
    """`top`: the axis's highest value, for charts read side by side on one scale (else the values'
    own); `unit` follows every number: on the axis, in the bars' titles and in the description."""
    top = top or shared_top(values)
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(values), 1)
    bar_w = max(1.0, slot * 0.72)
    total = sum(values)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{len(values)} bars, {_total(total, unit)}highest {max(values, default=0):g}{unit}, '
        f"scale 0 to {top:g}{unit}.</desc>",
    ]
    for fraction in (0, 0.5, 1):
        y = PAD_TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dee4" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#57606a">{top * fraction:g}{unit}</text>'
        )
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * (value / top)
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        y = PAD_TOP + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0):.1f}" fill="{color}" rx="1">'
            f"<title>{escape(label)}: {value:g}{unit}</title></rect>"
        )
    # A few labels along the bottom: the first, the middle and the last.
    shown = range(len(labels)) if every_label else sorted({0, len(labels) // 2, len(labels) - 1})
    for i in shown:
        if 0 <= i < len(labels):
            x = PAD_LEFT + i * slot + slot / 2
            anchor = "middle" if every_label else "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="11" fill="#57606a">{escape(labels[i])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
