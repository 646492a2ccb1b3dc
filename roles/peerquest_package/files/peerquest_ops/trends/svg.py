"""Small charts as inline SVG (no script, no external file): a sparkline and horizontal bars."""

from html import escape

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def sparkline(series, width=320, height=60, title=""):
    """series: [(name, [(t, value or None), ...]), ...] on one time axis; an <svg> with one line each."""
    points = [(t, v) for _name, values in series for t, v in values if v is not None]
    label = escape(title, quote=True)
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{label}"><text x="4" y="{height // 2}" font-size="11" fill="#888">no data</text></svg>'
        )
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    low, high = min(v for _, v in points), max(v for _, v in points)
    if high == low:
        low, high = low - 1, high + 1
    pad = 4

    def x(t):
        return pad + (width - 2 * pad) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(v):
        return pad + (height - 2 * pad) * (1 - (v - low) / (high - low))

    lines = []
    for index, (name, values) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        # A gap (no value) breaks the line.
        runs, run = [], []
        for t, v in values:
            if v is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(f"{x(t):.1f},{y(v):.1f}")
        if run:
            runs.append(run)
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                lines.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" fill="{colour}"/>')
            else:
                lines.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(run)}">'
                    f"<title>{escape(name)}</title></polyline>"
                )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{label}">'
        f'<rect width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>'
        + "".join(lines)
        + f'<text x="{width - pad}" y="11" font-size="9" fill="#666" text-anchor="end">max {_fmt(high)}</text>'
        + f'<text x="{width - pad}" y="{height - 3}" font-size="9" fill="#666" text-anchor="end">min {_fmt(low)}</text>'
        + "</svg>"
    )


def bars(items, width=420, bar_height=16, title=""):
    """items: [(label, value), ...]; an <svg> of horizontal bars, longest first as given."""
    label_width = 170
    height = max(1, len(items)) * (bar_height + 4) + 4
    label = escape(title, quote=True)
    top = max((v for _, v in items if v is not None), default=0) or 1
    rows = []
    for index, (name, value) in enumerate(items):
        y = 4 + index * (bar_height + 4)
        length = (width - label_width - 60) * ((value or 0) / top)
        rows.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 4}" font-size="11" text-anchor="end">'
            f"{escape(str(name))[:40]}</text>"
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1):.1f}" height="{bar_height}" fill="{COLOURS[0]}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + bar_height - 4}" font-size="11">{_fmt(value)}</text>'
        )
    if not items:
        rows.append('<text x="4" y="14" font-size="11" fill="#888">none</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{label}">'
        + "".join(rows)
        + "</svg>"
    )
