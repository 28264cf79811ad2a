"""The organiser's outline-agreement chart: each reviewer's mean Jaccard index with the model's first outline and
with the reference, side by side on a fixed 0–1 axis, each bar with its value and the number of cases under it.

Drawn as SVG here rather than by a plotting widget, so that nothing stacks the two bars or rescales the axis: a 0.98
bar always stands nearly to the top.
"""

from __future__ import annotations

from html import escape

from .. import text

BAR, PAIR_GAP, GROUP_GAP = 40, 6, 48  # px
PLOT_H, TOP, BOTTOM, LEFT = 200, 24, 64, 44
COLOURS = {"model": "#2563eb", "reference": "#d97706"}
# Which of a reviewer's figures (webapp.review.agreement) each bar shows, and how many cases it is over.
BARS = {
    "model": ("outline_jaccard_with_model", "reviewed"),
    "reference": ("outline_jaccard_against_reference", "outlines_with_reference"),
}


def agreement_chart(reviewers: list[dict]) -> str:
    """The chart of the agreement report's ``reviewers`` as an SVG element (HTML)."""
    group = 2 * BAR + PAIR_GAP + GROUP_GAP
    width = max(LEFT + max(1, len(reviewers)) * group + 8, LEFT + 240)  # room for the legend's words
    height = TOP + PLOT_H + BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 36}" role="img">']
    parts.append(
        f'<title>{escape(text.AGREEMENT_CHART)}</title><text x="{LEFT}" y="14">{escape(text.AGREEMENT_CHART)}</text>'
    )
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(f'<line x1="{LEFT}" x2="{width - 8}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" font-size="11">{tick:g}</text>')
    for i, reviewer in enumerate(reviewers):
        x = LEFT + i * group + GROUP_GAP // 2
        for j, (against, (key, count)) in enumerate(BARS.items()):
            parts += _bar(x + j * (BAR + PAIR_GAP), against, reviewer["reviewer"], reviewer[key], reviewer[count])
        name = escape(reviewer["reviewer"])
        parts.append(f'<text x="{x + BAR + PAIR_GAP // 2}" y="{TOP + PLOT_H + 36}" text-anchor="middle">{name}</text>')
    for j, (against, colour) in enumerate(COLOURS.items()):  # the legend, one line each
        ly = height + j * 18
        parts.append(f'<rect x="{LEFT}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{LEFT + 18}" y="{ly}" font-size="12">{escape(text.AGAINST[against])}</text>')
    return "".join(parts) + "</svg>"


def _y(value: float) -> float:
    return TOP + PLOT_H * (1 - value)


def _bar(x: int, against: str, reviewer: str, value: float | None, n: int) -> list[str]:
    """One bar (none for no value) with its value above it and its number of cases under the axis."""
    cx, base = x + BAR // 2, TOP + PLOT_H
    out = [f'<text x="{cx}" y="{base + 16}" text-anchor="middle" font-size="11">n = {n}</text>']
    if value is None:
        return [*out, f'<text x="{cx}" y="{base - 4}" text-anchor="middle" font-size="11">–</text>']
    height = PLOT_H * min(max(value, 0.0), 1.0)
    return [
        *out,
        f'<rect x="{x}" y="{base - height:.1f}" width="{BAR}" height="{height:.1f}" fill="{COLOURS[against]}" '
        f'data-reviewer="{escape(reviewer)}" data-against="{against}" data-value="{value}" data-n="{n}"/>',
        f'<text x="{cx}" y="{base - height - 4:.1f}" text-anchor="middle" font-size="11">{value:.2f}</text>',
    ]
