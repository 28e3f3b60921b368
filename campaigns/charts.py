"""Inline SVG charts rendered on the server (no JavaScript library): throughput over time and
outcomes by state. Values are numbers we computed; every text is escaped."""

from __future__ import annotations

import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 480, 140, 28
COLOURS = {
    "queued": "#adb5bd",
    "submitted": "#6ea8fe",
    "delivered": "#3d8bfd",
    "confirmed": "#198754",
    "failed": "#dc3545",
    "skipped": "#ffc107",
    "cancelled": "#6c757d",
    "pending": "#dee2e6",
}


def _rates(samples: list[dict]) -> list[tuple[float, float, float]]:
    """(seconds since first sample, packets submitted/s, outcomes/s) between samples."""
    points = []
    start = None
    previous = None
    for sample in samples:
        try:
            t = datetime.datetime.fromisoformat(sample["t"])
        except (KeyError, TypeError, ValueError):
            continue
        start = start or t
        if previous is not None:
            dt = (t - previous[0]).total_seconds()
            if dt > 0:
                points.append(
                    (
                        (t - start).total_seconds(),
                        max(0.0, (sample.get("sent", 0) - previous[1]) / dt),
                        max(0.0, (sample.get("done", 0) - previous[2]) / dt),
                    )
                )
        previous = (t, sample.get("sent", 0), sample.get("done", 0))
    return points


def throughput_chart(samples: list[dict]) -> SafeString:
    points = _rates(samples)
    if not points:
        return mark_safe(  # noqa: S308 - numbers we computed, texts escaped
            f'<svg class="chart" width="{WIDTH}" height="{HEIGHT}" role="img" '
            'aria-label="throughput"><text x="10" y="20" font-size="12">'
            "No throughput yet</text></svg>"
        )
    t_max = max(p[0] for p in points) or 1.0
    y_max = max(max(p[1], p[2]) for p in points) or 1.0

    def line(index: int) -> str:
        return " ".join(
            f"{PAD + (p[0] / t_max) * (WIDTH - PAD - 5):.1f},"
            f"{HEIGHT - PAD - (p[index] / y_max) * (HEIGHT - PAD - 10):.1f}"
            for p in points
        )

    return mark_safe(  # noqa: S308 - numbers we computed, texts escaped
        f'<svg class="chart" id="throughput-chart" width="{WIDTH}" height="{HEIGHT}" role="img" '
        'aria-label="throughput over time">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<line x1="{PAD}" y1="5" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="2" y="14" font-size="10">{y_max:.0f}/s</text>'
        f'<text x="{WIDTH - 60}" y="{HEIGHT - 8}" font-size="10">{t_max:.0f} s</text>'
        f'<polyline fill="none" stroke="{COLOURS["submitted"]}" stroke-width="2" '
        f'points="{line(1)}"><title>submitted per second</title></polyline>'
        f'<polyline fill="none" stroke="{COLOURS["confirmed"]}" stroke-width="2" '
        f'points="{line(2)}"><title>outcomes per second</title></polyline>'
        f'<text x="{PAD + 5}" y="{HEIGHT - 8}" font-size="10" fill="{COLOURS["submitted"]}">'
        "submitted/s</text>"
        f'<text x="{PAD + 80}" y="{HEIGHT - 8}" font-size="10" fill="{COLOURS["confirmed"]}">'
        "outcomes/s</text></svg>"
    )


def outcome_bars(counters: dict) -> SafeString:
    items = [(k, int(v)) for k, v in counters.items() if isinstance(v, int) and v > 0]
    if not items:
        return mark_safe(  # noqa: S308 - numbers we computed, texts escaped
            f'<svg class="chart" width="{WIDTH}" height="40" role="img" aria-label="outcomes">'
            '<text x="10" y="20" font-size="12">No targets yet</text></svg>'
        )
    top = max(v for _k, v in items)
    bar = 18
    height = bar * len(items) + 10
    rows = []
    for n, (state, value) in enumerate(items):
        width = max(1.0, value / top * (WIDTH - 200))
        y = 5 + n * bar
        rows.append(
            f'<text x="0" y="{y + 13}" font-size="11">{escape(state)}</text>'
            f'<rect x="80" y="{y + 2}" width="{width:.1f}" height="{bar - 5}" '
            f'fill="{COLOURS.get(state, "#999")}"><title>{escape(state)}: {value}</title></rect>'
            f'<text x="{85 + width:.1f}" y="{y + 13}" font-size="11">{value}</text>'
        )
    return mark_safe(  # noqa: S308 - numbers we computed, texts escaped
        f'<svg class="chart" id="outcome-chart" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="outcomes">{"".join(rows)}</svg>'
    )
