"""Inline SVG line charts, drawn server-side so that the report opens offline.

Charts are presentation: values arrive as decimal strings or numbers and are turned into floats
here, only to place them on the page. The numbers a verdict rests on stay in the tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = [
    "PALETTE",
    "TONES",
    "Band",
    "Chart",
    "EventMark",
    "Marker",
    "RefLine",
    "Series",
    "downsample",
    "inner_ticks",
    "nice_ticks",
    "render_line_chart",
    "tick_text",
    "tone_of",
]

#: Okabe-Ito, a palette that colour-blind readers can tell apart; yellow last (weak on white).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
#: After the palette runs out, series are told apart by dash pattern too.
DASHES = ("", "6 3", "2 3", "8 3 2 3")
#: Colours with a meaning, for events, markers and graph nodes (from the palette where it has one).
TONES = {
    "bad": "#D55E00",
    "warn": "#E69F00",
    "good": "#009E73",
    "info": "#0072B2",
    "accent": "#CC79A7",
    "neutral": "#8c959f",
}
#: Words in an event's kind that say what it means (in this order: the worst wins). A word
#: matches when it equals one of these or, for the longer stems, starts with it.
_TONE_WORDS = (
    (
        "bad",
        (
            "418",
            "ban",
            "banned",
            "fail",
            "failed",
            "failure",
            "reject",
            "refus",
            "error",
            "unavailable",
            "liquidat",
            "miss",
            "missed",
            "missing",
        ),
    ),
    (
        "warn",
        (
            "429",
            "limit",
            "throttl",
            "warn",
            "warning",
            "alert",
            "borderline",
            "risk",
            "stale",
            "late",
        ),
    ),
    ("good", ("ok", "pass", "passed", "accept", "applied", "reconciled")),
)
_PREFIX_MIN = 5  # shorter stems must match a whole word ("ban" is not "band")

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 20, 14, 46
MAX_POINTS = 1500  # per series; beyond this, min/max per bucket keeps spikes visible
MARKER_LIMIT = 30  # series this short also get a dot per point
MARKER_NUMBER_LIMIT = 40  # more markers than this go unnumbered on the plot (listed below it)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]
    colour: str
    dash: str = ""


@dataclass(frozen=True, slots=True)
class RefLine:
    value: float
    label: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A labelled point on the plot (e.g. a liquidation step on the mark line), numbered."""

    x: float
    y: float
    label: str
    colour: str
    number: int


@dataclass(frozen=True, slots=True)
class EventMark:
    """Something that happened at ``x`` (e.g. a 429): a tick at the top of the plot."""

    x: float
    label: str
    colour: str


@dataclass(frozen=True, slots=True)
class Band:
    """A range of values (e.g. a liquidation band): shaded, its edges drawn as lines."""

    low: float
    high: float
    label: str
    colour: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    title: str
    x_label: str = ""
    y_label: str = ""
    series: tuple[Series, ...] = ()
    hlines: tuple[RefLine, ...] = ()
    vlines: tuple[RefLine, ...] = ()
    markers: tuple[Marker, ...] = ()
    events: tuple[EventMark, ...] = ()
    bands: tuple[Band, ...] = ()


def tone_of(kind: str, tone: str | None = None) -> str | None:
    """The tone named by ``tone``, else the one ``kind``'s words suggest, else ``None``.

    ``"rate-limited"`` and ``"429"`` read as *warn*, ``"banned"``, ``"418"``, ``"503"`` and
    ``"rejected"`` as *bad*, ``"ok"`` and ``"accepted"`` as *good*.
    """
    if tone in TONES:
        return tone
    words = "".join(c if c.isalnum() else " " for c in kind.lower()).split()
    if any(len(w) == 3 and w.isdigit() and w.startswith("5") for w in words):
        return "bad"  # a 5xx status
    for name, stems in _TONE_WORDS:
        for w in words:
            if any(w == s or (len(s) >= _PREFIX_MIN and w.startswith(s)) for s in stems):
                return name
    return None


def downsample(
    points: Sequence[tuple[float, float]], limit: int = MAX_POINTS
) -> list[tuple[float, float]]:
    """Keep the lowest and highest point of each bucket, in order, so a one-tick wick survives."""
    if len(points) <= limit:
        return list(points)
    buckets = max(1, limit // 2)
    size = len(points) / buckets
    kept: list[tuple[float, float]] = []
    for b in range(buckets):
        chunk = points[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        lo = min(range(len(chunk)), key=lambda i: chunk[i][1])
        hi = max(range(len(chunk)), key=lambda i: chunk[i][1])
        kept.extend(chunk[i] for i in sorted({lo, hi}))
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _widen(lo: float, hi: float) -> tuple[float, float]:
    """A degenerate range (one point, a constant series) gets room around its value."""
    if hi > lo:
        return lo, hi
    pad = abs(lo) * 0.05 or 1.0
    return lo - pad, hi + pad


def _nice_step(span: float, count: int, *, integer: bool = False) -> float:
    """A round step near ``span / count``; ``integer``: a whole number (counts, cycles)."""
    raw = span / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if integer and (step < 1 or not step.is_integer()):
            continue
        if raw <= step:
            return step
    return max(10 * magnitude, 1.0) if integer else 10 * magnitude


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    """A rounded range containing ``[lo, hi]`` and its tick values (1, 2, 2.5 or 5 × 10^k apart)."""
    lo, hi = _widen(lo, hi)
    step = _nice_step(hi - lo, count)
    start = math.floor(lo / step) * step
    stop = math.ceil(hi / step) * step
    ticks = [start + i * step for i in range(round((stop - start) / step) + 1)]
    return start, stop, ticks


def inner_ticks(lo: float, hi: float, count: int = 6, *, integer: bool = False) -> list[float]:
    """Ticks inside ``[lo, hi]`` without widening it (x axes stay tight to the data);
    ``integer``: whole-number ticks only (an axis of counts)."""
    step = _nice_step(hi - lo, count, integer=integer)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(value)
        value = first + len(ticks) * step
    return ticks


def tick_text(value: float, step: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e9 or step < 1e-6:
        return f"{value:.4g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    scaled = step * 10**decimals
    if abs(scaled - round(scaled)) > 1e-6:  # steps like 2.5 need one more place
        decimals += 1
    return f"{value:,.{decimals}f}"


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def render_line_chart(chart: Chart) -> Markup:
    """The chart as an ``<svg>`` element (no XML namespace needed inside HTML)."""
    xs = [x for s in chart.series for x, _ in s.points] + [v.value for v in chart.vlines]
    xs += [m.x for m in chart.markers] + [e.x for e in chart.events]
    ys = [y for s in chart.series for _, y in s.points] + [h.value for h in chart.hlines]
    ys += [m.y for m in chart.markers] + [v for b in chart.bands for v in (b.low, b.high)]
    if xs and not ys:  # events alone: a time axis without values
        ys = [0.0]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'preserveAspectRatio="xMidYMid meet"><title>{escape(chart.title)}</title>'
    ]
    if not xs or not ys:
        parts.append(
            f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>'
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" class="empty" '
            'text-anchor="middle">no data points</text></svg>'
        )
        return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above

    x_lo, x_hi = _widen(min(xs), max(xs))
    y_lo, y_hi, y_ticks = nice_ticks(min(ys), max(ys))
    whole = all(float(x).is_integer() for x in xs) and max(xs) - min(xs) >= 2
    x_ticks = inner_ticks(x_lo, x_hi, integer=whole)

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>')
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in y_ticks:
        ty = _n(py(t))
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ty}" y2="{ty}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{ty}" class="tick" text-anchor="end" '
            f'dominant-baseline="middle">{escape(tick_text(t, y_step))}</text>'
        )
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else (x_hi - x_lo)
    for t in x_ticks:
        tx = _n(px(t))
        parts.append(
            f'<line x1="{tx}" x2="{tx}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" class="axis"/>'
            f'<text x="{tx}" y="{TOP + plot_h + 17}" class="tick" text-anchor="middle">'
            f"{escape(tick_text(t, x_step))}</text>"
        )
    if chart.x_label:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" class="axis-label" '
            f'text-anchor="middle">{escape(chart.x_label)}</text>'
        )
    if chart.y_label:
        cy = TOP + plot_h / 2
        parts.append(
            f'<text x="14" y="{cy}" class="axis-label" text-anchor="middle" '
            f'transform="rotate(-90 14 {cy})">{escape(chart.y_label)}</text>'
        )

    for b in chart.bands:
        top, bottom = py(max(b.low, b.high)), py(min(b.low, b.high))
        colour = escape(b.colour)
        label_y = top - 4 if top - 4 > TOP + 10 else bottom + 13
        parts.append(
            f'<g class="band"><title>{escape(b.label)}: {escape(_g(b.low))} to '
            f"{escape(_g(b.high))}</title>"
            f'<rect x="{LEFT}" y="{_n(top)}" width="{plot_w}" height="{_n(max(bottom - top, 1))}" '
            f'fill="{colour}" fill-opacity=".12"/>'
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_n(top)}" y2="{_n(top)}" '
            f'stroke="{colour}" class="band-edge"/>'
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_n(bottom)}" y2="{_n(bottom)}" '
            f'stroke="{colour}" class="band-edge"/>'
            f'<text x="{LEFT + 6}" y="{_n(label_y)}" class="band-label" fill="{colour}">'
            f"{escape(b.label)}</text></g>"
        )
    placed: dict[str, list[float]] = {"end": [], "start": []}
    for h in chart.hlines:
        line_y = py(h.value)
        hx, anchor, label_y = _hline_label_spot(line_y, placed, plot_w)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_n(line_y)}" y2="{_n(line_y)}" '
            f'class="ref"/><text x="{_n(hx)}" y="{_n(label_y)}" class="ref-label" '
            f'text-anchor="{anchor}">{escape(h.label)}</text>'
        )
    for i, v in enumerate(chart.vlines):
        x = px(v.value)
        right_half = x > LEFT + plot_w * 0.75
        lx, anchor = (x - 4, "end") if right_half else (x + 4, "start")
        parts.append(
            f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{TOP}" y2="{TOP + plot_h}" class="ref"/>'
            f'<text x="{_n(lx)}" y="{TOP + 12 + (i % 3) * 13}" class="ref-label" '
            f'text-anchor="{anchor}">{escape(v.label)}</text>'
        )

    for s in reversed(chart.series):  # the first series (the one judged) is drawn on top
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        if len(s.points) > 1:
            path = " ".join(
                f"{'M' if j == 0 else 'L'}{_n(px(x))},{_n(py(y))}"
                for j, (x, y) in enumerate(s.points)
            )
            parts.append(
                f'<path d="{path}" class="line" stroke="{escape(s.colour)}"{dash}>'
                f"<title>{escape(s.name)}</title></path>"
            )
        if len(s.points) <= MARKER_LIMIT:
            for x, y in s.points:
                parts.append(
                    f'<circle cx="{_n(px(x))}" cy="{_n(py(y))}" r="3" fill="{escape(s.colour)}">'
                    f"<title>{escape(s.name)}: ({escape(_g(x))}, {escape(_g(y))})</title></circle>"
                )
    for e in chart.events:
        ex = _n(px(e.x))
        colour = escape(e.colour)
        parts.append(
            f'<g class="event"><title>{escape(e.label)} (at {escape(_g(e.x))})</title>'
            f'<line x1="{ex}" x2="{ex}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{colour}" '
            f'class="event-line"/><path d="M{ex},{TOP + 9} l-5,-9 h10 z" fill="{colour}"/></g>'
        )
    numbered = len(chart.markers) <= MARKER_NUMBER_LIMIT
    for m in chart.markers:
        x, y = px(m.x), py(m.y)
        parts.append(
            f'<g class="marker"><title>{m.number}. {escape(m.label)} '
            f"({escape(_g(m.x))}, {escape(_g(m.y))})</title>"
            f'<path d="M{_n(x)},{_n(y - 6)} l6,6 l-6,6 l-6,-6 z" fill="{escape(m.colour)}"/>'
        )
        if numbered:
            parts.append(
                f'<text x="{_n(x)}" y="{_n(y - 9)}" class="marker-label" '
                f'text-anchor="middle">{m.number}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _hline_label_spot(
    line_y: float, placed: dict[str, list[float]], plot_w: float
) -> tuple[float, str, float]:
    """Where a horizontal line's label goes: above it at the right, else at the left, else below.

    ``placed`` holds the label baselines already used on each side, so close lines do not print
    their labels on top of each other.
    """
    above = line_y - 4 if line_y - 4 > TOP + 10 else line_y + 13  # no room above: go below
    candidates = [
        ("end", above),
        ("start", above),
        ("end", line_y + 13 if above < line_y else line_y - 4),
    ]
    for anchor, label_y in candidates:
        if all(abs(label_y - other) >= 12 for other in placed[anchor]):
            break
    else:
        anchor, label_y = candidates[0]
    placed[anchor].append(label_y)
    x = LEFT + plot_w - 4 if anchor == "end" else LEFT + 4
    return x, anchor, label_y


def _g(value: float) -> str:
    return f"{value:.10g}"
