"""Turn a result's ``evidence`` (name → JSON object) into what the page shows.

Shapes understood (numbers may be JSON numbers or decimal strings):

* ``{"type": "series", "title", "x_label", "y_label", "series": {name: [[x, y], ...]},
  "hlines": [{"y", "label"}], "vlines": [{"x", "label"}],
  "markers": [{"x", "y", "label", "tone"?}], "events": [{"x", "label", "kind"?, "tone"?}]}``
  → an inline SVG line chart. *Markers* are numbered points on the plot (a liquidation step on
  the mark line) listed under the chart; *events* are moments without a value (a 429, a 418),
  ticks along the top coloured by ``kind``.
* ``{"type": "timeline", "title", "x_label", "lanes": [...]?, "events": [{"x", "lane", "label",
  "kind"?, "tone"?}], "spans": [{"x0", "x1", "lane", "label", "kind"?}]}`` → one lane per actor.
* ``{"type": "graph", "title", "directed", "layers": [names]?, "nodes": [{"id", "label"?,
  "layer"?, "tone"?, "kind"?, "detail"?, "emphasis"?}], "edges": [{"source", "target", "kind"?,
  "label"?, "detail"?}], "tones": {tone: meaning}?}`` → a layered drawing; ``layer`` is an
  index or a name in ``layers`` (missing: the longest path for a directed graph).
* ``{"type": "table", "title", "columns": [...], "rows": [[...], ...],
  "status_columns": [names]?, "timeline": {"x", "lane", "label", "kind"?}?}`` → an HTML table;
  cells of a status column read ``pass``/``fail``/``-`` (or true/false/null) and are coloured;
  a ``timeline`` hint (column names) also draws the rows as a timeline above the table.
* anything else → pretty-printed JSON. A shape that cannot be read also falls back to JSON,
  with the reason shown, so evidence is never silently dropped.

``tone`` is one of ``bad``, ``warn``, ``good``, ``info``, ``accent``, ``neutral``; without it an
event's ``kind`` suggests one (``charts.tone_of``), else kinds get palette colours in order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from harness.report.charts import (
    DASHES,
    PALETTE,
    Band,
    Chart,
    EventMark,
    Marker,
    RefLine,
    Series,
    downsample,
    render_line_chart,
)
from harness.report.diagrams import graph_view, table_timeline, timeline_view
from harness.report.views import (
    Cell,
    Colours,
    EvidenceView,
    LegendEntry,
    Unreadable,
    list_of,
    mapping,
    number,
    title_of,
    to_float,
    toned,
)

__all__ = ["Cell", "EvidenceView", "LegendEntry", "build_evidence", "to_float"]

MAX_TABLE_ROWS = 500
MAX_JSON_CHARS = 20_000
MAX_LISTED_MARKERS = 60
PASS_WORDS = frozenset({"pass", "passed", "ok", "true", "yes"})
FAIL_WORDS = frozenset({"fail", "failed", "false", "no"})
NOT_RUN_WORDS = frozenset({"-", "—", "", "none", "null", "n/a", "not evaluated", "skipped"})


def build_evidence(evidence: Mapping[str, Any]) -> list[EvidenceView]:
    """One view per evidence entry, in the order the check attached them."""
    builders = {
        "series": _series_view,
        "table": _table_view,
        "timeline": timeline_view,
        "graph": graph_view,
    }
    views: list[EvidenceView] = []
    for name, obj in evidence.items():
        kind = obj.get("type") if isinstance(obj, Mapping) else None
        builder = builders.get(kind) if isinstance(kind, str) else None
        if builder is None:
            views.append(_json_view(str(name), obj))
            continue
        try:
            views.append(builder(str(name), obj))
        except Unreadable as exc:
            views.append(_json_view(str(name), obj, note=f"could not draw this {kind}: {exc}"))
    return views


def _point(raw: object) -> tuple[object, object]:
    if isinstance(raw, Mapping):
        return raw.get("x"), raw.get("y")
    if isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == 2:
        return raw[0], raw[1]
    msg = f"a point must be [x, y] or {{x, y}}, got {raw!r:.60}"
    raise Unreadable(msg)


def _ref_lines(raw: object, key: str, field_name: str) -> list[RefLine]:
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        msg = f"{field_name} must be a list of {{{key}, label}}"
        raise Unreadable(msg)
    lines: list[RefLine] = []
    for item in raw:
        value = to_float(item.get(key)) if isinstance(item, Mapping) else None
        if value is None:
            msg = f"{field_name} entry {item!r:.60} has no numeric {key!r}"
            raise Unreadable(msg)
        lines.append(RefLine(value=value, label=str(item.get("label", ""))))
    return lines


def _marker_kind(item: Mapping[str, Any]) -> str:
    return str(item.get("kind") or item.get("label", "marker"))


def _event_kind(item: Mapping[str, Any]) -> str:
    return str(item.get("kind") or item.get("label", "event"))


def _band_kind(item: Mapping[str, Any]) -> str:
    return f"band: {item.get('kind') or item.get('label', '')}"


def _series_view(name: str, obj: Mapping[str, Any]) -> EvidenceView:
    raw_series = obj.get("series", {})
    if not isinstance(raw_series, Mapping):
        msg = "'series' must map each series name to a list of [x, y] points"
        raise Unreadable(msg)
    raw_markers = [mapping(m, "marker") for m in list_of(obj, "markers")]
    raw_events = [mapping(e, "event") for e in list_of(obj, "events")]
    raw_bands = [mapping(b, "band") for b in list_of(obj, "bands")]
    meant = toned(raw_markers, _marker_kind) | toned(raw_events, _event_kind)
    meant |= toned(raw_bands, _band_kind)
    palette = [c for c in PALETTE if c not in meant] or list(PALETTE)
    series: list[Series] = []
    notes: list[str] = []
    dropped = 0
    for i, (series_name, raw_points) in enumerate(raw_series.items()):
        if not isinstance(raw_points, Sequence) or isinstance(raw_points, str):
            msg = f"series {series_name!r} must be a list of [x, y] points"
            raise Unreadable(msg)
        points: list[tuple[float, float]] = []
        for raw in raw_points:
            x, y = _point(raw)
            fx, fy = to_float(x), to_float(y)
            if fx is None or fy is None:
                dropped += 1
                continue
            points.append((fx, fy))
        kept = downsample(points)
        if len(kept) < len(points):
            notes.append(
                f"{series_name}: {len(points)} points drawn as {len(kept)} "
                "(lowest and highest of each bucket kept)"
            )
        if not points:
            notes.append(f"{series_name}: no points")
        series.append(
            Series(
                name=str(series_name),
                points=tuple(kept),
                colour=palette[i % len(palette)],
                dash=DASHES[(i // len(palette)) % len(DASHES)],
            )
        )
    if dropped:
        notes.append(f"{dropped} point(s) without a finite numeric x and y were left out")
    colours = Colours(avoid=meant | {s.colour for s in series})
    markers: list[Marker] = []
    for i, item in enumerate(raw_markers, start=1):
        markers.append(
            Marker(
                x=number(item, "x", "marker"),
                y=number(item, "y", "marker"),
                label=str(item.get("label", "")),
                colour=colours(_marker_kind(item), item.get("tone")),
                number=i,
            )
        )
    events: list[EventMark] = []
    kinds: dict[str, tuple[str, int]] = {}
    for item in raw_events:
        kind = _event_kind(item)
        colour = colours(kind, item.get("tone"))
        events.append(
            EventMark(
                x=number(item, "x", "event"), label=str(item.get("label", kind)), colour=colour
            )
        )
        kinds[kind] = (colour, kinds.get(kind, (colour, 0))[1] + 1)
    bands: list[Band] = []
    for item in raw_bands:
        bands.append(
            Band(
                low=number(item, "y0", "band"),
                high=number(item, "y1", "band"),
                label=str(item.get("label", "")),
                colour=colours(_band_kind(item), item.get("tone")),
            )
        )
    x_label, y_label = str(obj.get("x_label", "")), str(obj.get("y_label", ""))
    chart = Chart(
        title=title_of(name, obj),
        x_label=x_label,
        y_label=y_label,
        bands=tuple(bands),
        series=tuple(series),
        hlines=tuple(_ref_lines(obj.get("hlines"), "y", "hlines")),
        vlines=tuple(_ref_lines(obj.get("vlines"), "x", "vlines")),
        markers=tuple(markers),
        events=tuple(events),
    )
    legend = [LegendEntry(s.name, s.colour, s.dash) for s in series]
    legend += [LegendEntry(f"{k} ({n})", c, shape="tick") for k, (c, n) in kinds.items()]
    if markers:
        legend.append(
            LegendEntry("numbered markers: listed below", markers[0].colour, shape="diamond")
        )
    legend += [LegendEntry(b.label, b.colour, shape="box") for b in bands]
    x_name, y_name = x_label or "x", y_label or "y"
    items = tuple(
        (str(m.number), f"{m.label} — {x_name} {m.x:.10g}, {y_name} {m.y:.10g}")
        for m in markers[:MAX_LISTED_MARKERS]
    )
    if len(markers) > MAX_LISTED_MARKERS:
        notes.append(f"first {MAX_LISTED_MARKERS} of {len(markers)} markers listed")
    return EvidenceView(
        name=name,
        kind="chart",
        title=chart.title,
        svg=render_line_chart(chart),
        legend=tuple(legend),
        has_refs=bool(chart.hlines or chart.vlines),
        items=items,
        notes=tuple(notes),
    )


def _cell(value: object, *, status_column: bool = False) -> Cell:
    if status_column:
        word = str(value).strip().lower() if value is not None else "none"
        if isinstance(value, bool):
            word = "pass" if value else "fail"
        if word in PASS_WORDS:
            return Cell("pass", numeric=False, status="pass")
        if word in FAIL_WORDS:
            return Cell("fail", numeric=False, status="fail")
        if word in NOT_RUN_WORDS:
            return Cell("—", numeric=False, status="none")
    if value is None:
        return Cell("—", numeric=False)
    if isinstance(value, str):
        return Cell(value, numeric=to_float(value) is not None)
    if isinstance(value, bool):
        return Cell(str(value).lower(), numeric=False)
    if isinstance(value, int | float | Decimal):
        return Cell(str(value), numeric=True)
    return Cell(json.dumps(value, default=str, ensure_ascii=False), numeric=False)


def _table_view(name: str, obj: Mapping[str, Any]) -> EvidenceView:
    columns, rows = obj.get("columns", []), obj.get("rows", [])
    if not isinstance(columns, Sequence) or isinstance(columns, str):
        msg = "'columns' must be a list of column names"
        raise Unreadable(msg)
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        msg = "'rows' must be a list of rows"
        raise Unreadable(msg)
    width = max([len(columns), *(len(r) for r in rows if isinstance(r, Sequence))])
    status_names = {str(c) for c in list_of(obj, "status_columns")}
    status_at = [i < len(columns) and str(columns[i]) in status_names for i in range(width)]
    cells: list[tuple[Cell, ...]] = []
    for row in rows[:MAX_TABLE_ROWS]:
        if not isinstance(row, Sequence) or isinstance(row, str):
            msg = f"a row must be a list of cells, got {row!r:.60}"
            raise Unreadable(msg)
        padded = [*row, *([None] * (width - len(row)))]
        cells.append(tuple(_cell(v, status_column=status_at[i]) for i, v in enumerate(padded)))
    notes: list[str] = []
    if len(rows) > MAX_TABLE_ROWS:
        notes.append(f"first {MAX_TABLE_ROWS} of {len(rows)} rows shown")
    numeric = tuple(
        any(row[i].numeric for row in cells)
        and all(row[i].numeric or row[i].text == "—" for row in cells)
        for i in range(width)
    )
    svg: Markup | None = None
    legend: tuple[LegendEntry, ...] = ()
    hint = obj.get("timeline")
    if hint is not None:
        try:
            drawn = table_timeline(
                name, obj, [str(c) for c in columns], rows, mapping(hint, "timeline hint")
            )
        except Unreadable as exc:
            notes.append(f"could not draw this table's timeline: {exc}")
        else:
            svg, legend = drawn.svg, drawn.legend
            notes.extend(drawn.notes)
    return EvidenceView(
        name=name,
        kind="table",
        title=title_of(name, obj),
        svg=svg,
        legend=legend,
        columns=tuple(str(c) for c in columns) + ("",) * (width - len(columns)),
        numeric_columns=numeric,
        rows=tuple(cells),
        notes=tuple(notes),
    )


def _json_view(name: str, obj: object, *, note: str = "") -> EvidenceView:
    text = json.dumps(obj, indent=2, default=str, ensure_ascii=False)
    notes = [note] if note else []
    if len(text) > MAX_JSON_CHARS:
        notes.append(f"first {MAX_JSON_CHARS} of {len(text)} characters shown")
        text = text[:MAX_JSON_CHARS] + "\n…"
    title = title_of(name, obj) if isinstance(obj, Mapping) else name
    return EvidenceView(name=name, kind="json", title=title, text=text, notes=tuple(notes))
