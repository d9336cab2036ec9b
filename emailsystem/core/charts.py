"""Server-side SVG bar charts for admin pages: no JavaScript, no CDN, no dependency.

Each bar is a `<rect class="bar">` carrying its value in `data-value` and a `<title>` tooltip,
so a browser shows the numbers on hover and a test can read them back.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 960
HEIGHT = 220
MARGIN_LEFT = 48
MARGIN_BOTTOM = 28
MARGIN_TOP = 12
# Colour per series, in order; a status added later takes the next one.
PALETTE = ("#417690", "#2e7d32", "#c62828", "#f9a825", "#6a1b9a", "#00838f", "#8d6e63", "#546e7a")
# One distinct colour per delivery status (emails.models.DeliveryStatus): the outcomes chart
# can show all thirteen at once, more than PALETTE's spare colours.
STATUS_COLOURS = {
    "queued": "#9e9e9e",
    "sent": "#417690",
    "failed": "#c62828",
    "suppressed": "#5d4037",
    "processed": "#90caf9",
    "deferred": "#f9a825",
    "delivered": "#2e7d32",
    "opened": "#66bb6a",
    "clicked": "#00838f",
    "bounced": "#ef6c00",
    "dropped": "#ad1457",
    "unsubscribed": "#6a1b9a",
    "spam_reported": "#212121",
}


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | float]
    colour: str


def series_for(named: Mapping[str, Sequence[int | float]]) -> list[Series]:
    """Series with the house colours for known statuses and palette colours for the rest."""
    spare = iter(colour for colour in PALETTE if colour not in STATUS_COLOURS.values())
    return [Series(name, values, STATUS_COLOURS.get(name) or next(spare, "#000000")) for name, values in named.items()]


def _nice_max(value: float) -> float:
    """The axis top: the first of 1, 2, 5 x 10^n at or above `value` (at least 1)."""
    step = 1.0
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def stacked_bars(*, title: str, labels: Sequence[str], series: Sequence[Series], tick_every: int = 1) -> SafeString:
    """A stacked bar chart: one bar per label, one coloured segment per series, with a legend.

    `tick_every` prints every n-th label under the axis (168 hourly bars cannot all be named).
    """
    count = max(len(labels), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_width = WIDTH - MARGIN_LEFT - 8
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_width / count
    bar_width = max(slot * 0.8, 1.0)
    baseline = MARGIN_TOP + plot_height

    parts = [
        format_html(
            '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>',
            MARGIN_LEFT,
            baseline,
            WIDTH - 8,
            baseline,
        ),
        format_html('<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>', MARGIN_LEFT - 4, baseline, 0),
        format_html(
            '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>',
            MARGIN_LEFT - 4,
            MARGIN_TOP + 10,
            f"{top:g}",
        ),
    ]
    for i, label in enumerate(labels):
        x = MARGIN_LEFT + i * slot + (slot - bar_width) / 2
        y = float(baseline)
        for item in series:
            value = item.values[i]
            if not value:
                continue
            height = value / top * plot_height
            y -= height
            parts.append(
                format_html(
                    '<rect class="bar" data-series="{}" data-value="{}" x="{}" y="{}" width="{}" '
                    'height="{}" fill="{}"><title>{}: {} {}</title></rect>',
                    item.name,
                    value,
                    f"{x:.1f}",
                    f"{y:.1f}",
                    f"{bar_width:.1f}",
                    f"{max(height, 0.5):.1f}",
                    item.colour,
                    label,
                    value,
                    item.name,
                )
            )
        if i % tick_every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>',
                    f"{x + bar_width / 2:.1f}",
                    baseline + 16,
                    label,
                )
            )
    legend = _legend(series)
    body = mark_safe("".join(str(part) for part in parts))  # noqa: S308 (every part is built by format_html)
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption>'
        '<svg role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" preserveAspectRatio="xMinYMin meet">'
        "{}</svg>{}</figure>",
        title,
        title,
        WIDTH,
        HEIGHT,
        body,
        legend,
    )


def _legend(series: Sequence[Series]) -> SafeString:
    items = "".join(
        str(
            format_html(
                '<span class="legend-item"><span style="display:inline-block;width:10px;height:10px;'
                'background:{};margin:0 4px 0 12px"></span>{} ({})</span>',
                item.colour,
                item.name,
                sum(item.values),
            )
        )
        for item in series
    )
    return mark_safe(f'<div class="legend">{items}</div>' if items else "")  # noqa: S308 (escaped by format_html)
