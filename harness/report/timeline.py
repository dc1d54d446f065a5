"""Inline SVG timelines: one lane per actor (a detector, a symbol, a parameter), events as dots.

Events closer than a few pixels in one lane and of one colour are drawn as one dot with their
count, so a burst stays readable; the labels of every event in a dot are in its tooltip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from harness.report.charts import inner_ticks, tick_text

__all__ = ["Span", "Timeline", "TimelineEvent", "render_timeline"]

WIDTH = 720
LABEL_W, RIGHT, TOP, LANE_H, AXIS_H = 150, 24, 8, 34, 40
MERGE_PX = 5.0  # events closer than this in one lane (and one colour) share a dot
MAX_LABEL_CHARS = 24
MAX_TOOLTIP_LINES = 12
CHAR_W = 6.0  # average width of a 10.5 px system-ui character


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    x: float
    lane: str
    label: str
    colour: str


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time in a lane (a phase, a window, a ban)."""

    x0: float
    x1: float
    lane: str
    label: str
    colour: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    title: str
    lanes: tuple[str, ...]
    events: tuple[TimelineEvent, ...] = ()
    spans: tuple[Span, ...] = ()
    x_label: str = ""


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def render_timeline(timeline: Timeline) -> Markup:
    """The timeline as an ``<svg>`` element; an empty one says so instead of drawing nothing."""
    lanes = timeline.lanes or ("",)
    height = TOP + LANE_H * len(lanes) + AXIS_H
    plot_w = WIDTH - LABEL_W - RIGHT
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {WIDTH} {height}" role="img">'
        f"<title>{escape(timeline.title)}</title>"
    ]
    xs = [e.x for e in timeline.events] + [v for s in timeline.spans for v in (s.x0, s.x1)]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if hi <= lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    margin = (hi - lo) * 0.03  # dots at either end stay whole
    view_lo, view_hi = lo - margin, hi + margin

    def px(x: float) -> float:
        return LABEL_W + (x - view_lo) / (view_hi - view_lo) * plot_w

    def lane_y(lane: str) -> float:
        return TOP + LANE_H * lanes.index(lane) + LANE_H / 2

    bottom = TOP + LANE_H * len(lanes)
    parts.append(
        f'<rect x="{LABEL_W}" y="{TOP}" width="{plot_w}" height="{bottom - TOP}" class="plot"/>'
    )
    ticks = inner_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else hi - lo
    for t in ticks:
        x = _n(px(t))
        parts.append(
            f'<line x1="{x}" x2="{x}" y1="{TOP}" y2="{bottom}" class="grid"/>'
            f'<text x="{x}" y="{bottom + 16}" class="tick" text-anchor="middle">'
            f"{escape(tick_text(t, step))}</text>"
        )
    if timeline.x_label:
        parts.append(
            f'<text x="{LABEL_W + plot_w / 2}" y="{height - 6}" class="axis-label" '
            f'text-anchor="middle">{escape(timeline.x_label)}</text>'
        )
    for i, lane in enumerate(lanes):
        y = lane_y(lane)
        if i:
            parts.append(
                f'<line x1="{LABEL_W}" x2="{LABEL_W + plot_w}" y1="{_n(y - LANE_H / 2)}" '
                f'y2="{_n(y - LANE_H / 2)}" class="lane-sep"/>'
            )
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{_n(y)}" class="lane-label" text-anchor="end" '
            f'dominant-baseline="middle"><title>{escape(lane)}</title>'
            f"{escape(_short(lane, MAX_LABEL_CHARS))}</text>"
        )
    for s in timeline.spans:
        if s.lane not in lanes:
            continue
        x0, x1 = px(min(s.x0, s.x1)), px(max(s.x0, s.x1))
        y = lane_y(s.lane)
        parts.append(
            f'<g class="span"><title>{escape(s.label)}</title>'
            f'<rect x="{_n(x0)}" y="{_n(y - 9)}" width="{_n(max(x1 - x0, 2))}" height="18" '
            f'rx="3" fill="{escape(s.colour)}" fill-opacity=".16" stroke="{escape(s.colour)}"/>'
        )
        if (x1 - x0) > len(s.label) * CHAR_W + 8:  # the label fits inside
            parts.append(
                f'<text x="{_n((x0 + x1) / 2)}" y="{_n(y)}" class="span-label" '
                f'text-anchor="middle" dominant-baseline="central">{escape(s.label)}</text>'
            )
        parts.append("</g>")
    for lane in lanes:
        y = lane_y(lane)
        groups = _groups([e for e in timeline.events if e.lane == lane], px)
        for group, dy in zip(groups, _offsets(groups), strict=True):
            parts.append(_group_svg(group, y + dy))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


@dataclass(frozen=True, slots=True)
class _Group:
    """Events of one colour in one lane, each within ``MERGE_PX`` of the previous one."""

    x0: float
    x1: float
    colour: str
    members: tuple[TimelineEvent, ...]


def _groups(events: list[TimelineEvent], px: Callable[[float], float]) -> list[_Group]:
    """A lane's events chained by colour and nearness (a burst becomes one capsule)."""
    open_groups: dict[str, _Group] = {}
    out: list[_Group] = []
    for e in sorted(events, key=lambda e: e.x):
        x = px(e.x)
        last = open_groups.get(e.colour)
        if last is not None and x - last.x1 < MERGE_PX:
            grown = _Group(last.x0, x, e.colour, (*last.members, e))
            out[out.index(last)] = grown
            open_groups[e.colour] = grown
        else:
            group = _Group(x, x, e.colour, (e,))
            out.append(group)
            open_groups[e.colour] = group
    return out


def _offsets(groups: list[_Group]) -> list[float]:
    """Vertical offsets so that groups of different colours at one spot sit above each other."""
    offsets: list[float] = []
    for i, g in enumerate(groups):
        near = sum(
            1 for h in groups[:i] if h.x0 - 2 * MERGE_PX < g.x1 and g.x0 < h.x1 + 2 * MERGE_PX
        )
        offsets.append((0.0, -10.0, 10.0)[near % 3])
    return offsets


def _group_svg(group: _Group, y: float) -> str:
    lines = [f"{escape(m.label)} (at {escape(f'{m.x:.10g}')})" for m in group.members]
    if len(lines) > MAX_TOOLTIP_LINES:
        extra = len(lines) - MAX_TOOLTIP_LINES
        lines = [*lines[:MAX_TOOLTIP_LINES], f"… and {extra} more"]
    count = len(group.members)
    radius = 5 if count == 1 else 8
    colour = escape(group.colour)
    out = [f'<g class="tl-event"><title>{"&#10;".join(lines)}</title>']
    if group.x1 - group.x0 < 1:
        out.append(
            f'<circle cx="{_n(group.x0)}" cy="{_n(y)}" r="{radius}" fill="{colour}" '
            'stroke="#fff" stroke-width="1.5"/>'
        )
    else:  # a burst: a capsule over its stretch of time
        out.append(
            f'<rect x="{_n(group.x0 - radius)}" y="{_n(y - radius)}" '
            f'width="{_n(group.x1 - group.x0 + 2 * radius)}" height="{2 * radius}" '
            f'rx="{radius}" fill="{colour}" stroke="#fff" stroke-width="1.5"/>'
        )
    if count > 1:
        out.append(
            f'<text x="{_n((group.x0 + group.x1) / 2)}" y="{_n(y)}" class="tl-count" '
            f'text-anchor="middle" dominant-baseline="central">{count}</text>'
        )
    out.append("</g>")
    return "".join(out)
