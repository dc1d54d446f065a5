"""Turn a result's ``evidence`` (name → JSON object) into what the page shows.

Shapes understood:

* ``{"type": "series", "title", "x_label", "y_label", "series": {name: [[x, y], ...]},
  "hlines": [{"y", "label"}], "vlines": [{"x", "label"}]}`` → an inline SVG line chart;
* ``{"type": "table", "title", "columns": [...], "rows": [[...], ...]}`` → an HTML table;
* anything else → pretty-printed JSON. A ``series`` or ``table`` that cannot be read also falls
  back to JSON, with the reason shown, so evidence is never silently dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from markupsafe import Markup

from harness.report.charts import (
    DASHES,
    PALETTE,
    Chart,
    RefLine,
    Series,
    downsample,
    render_line_chart,
)

__all__ = ["Cell", "EvidenceView", "LegendEntry", "build_evidence"]

MAX_TABLE_ROWS = 500
MAX_JSON_CHARS = 20_000


class _Unreadable(Exception):  # noqa: N818 - internal signal, never leaves this module
    """The evidence claims a shape but does not have it; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class LegendEntry:
    name: str
    colour: str
    dash: str


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    numeric: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceView:
    name: str
    kind: Literal["chart", "table", "json"]
    title: str
    svg: Markup | None = None
    legend: tuple[LegendEntry, ...] = ()
    has_refs: bool = False
    notes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    numeric_columns: tuple[bool, ...] = ()  # right-aligned: every non-empty cell is a number
    rows: tuple[tuple[Cell, ...], ...] = ()
    text: str = ""


def build_evidence(evidence: Mapping[str, Any]) -> list[EvidenceView]:
    """One view per evidence entry, in the order the check attached them."""
    views: list[EvidenceView] = []
    for name, obj in evidence.items():
        kind = obj.get("type") if isinstance(obj, Mapping) else None
        try:
            if kind == "series":
                views.append(_series_view(str(name), obj))
                continue
            if kind == "table":
                views.append(_table_view(str(name), obj))
                continue
        except _Unreadable as exc:
            views.append(_json_view(str(name), obj, note=f"could not draw this {kind}: {exc}"))
            continue
        views.append(_json_view(str(name), obj))
    return views


def to_float(value: object) -> float | None:
    """A finite float from a number or a decimal string; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str | Decimal):
        try:
            number = float(Decimal(str(value).strip()))
        except (InvalidOperation, ValueError):
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _title(name: str, obj: Mapping[str, Any]) -> str:
    title = obj.get("title")
    return str(title) if title else name


def _point(raw: object) -> tuple[object, object]:
    if isinstance(raw, Mapping):
        return raw.get("x"), raw.get("y")
    if isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == 2:
        return raw[0], raw[1]
    msg = f"a point must be [x, y] or {{x, y}}, got {raw!r:.60}"
    raise _Unreadable(msg)


def _ref_lines(raw: object, key: str, field_name: str) -> list[RefLine]:
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        msg = f"{field_name} must be a list of {{{key}, label}}"
        raise _Unreadable(msg)
    lines: list[RefLine] = []
    for item in raw:
        value = to_float(item.get(key)) if isinstance(item, Mapping) else None
        if value is None:
            msg = f"{field_name} entry {item!r:.60} has no numeric {key!r}"
            raise _Unreadable(msg)
        lines.append(RefLine(value=value, label=str(item.get("label", ""))))
    return lines


def _series_view(name: str, obj: Mapping[str, Any]) -> EvidenceView:
    raw_series = obj.get("series", {})
    if not isinstance(raw_series, Mapping):
        msg = "'series' must map each series name to a list of [x, y] points"
        raise _Unreadable(msg)
    series: list[Series] = []
    notes: list[str] = []
    dropped = 0
    for i, (series_name, raw_points) in enumerate(raw_series.items()):
        if not isinstance(raw_points, Sequence) or isinstance(raw_points, str):
            msg = f"series {series_name!r} must be a list of [x, y] points"
            raise _Unreadable(msg)
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
                colour=PALETTE[i % len(PALETTE)],
                dash=DASHES[(i // len(PALETTE)) % len(DASHES)],
            )
        )
    if dropped:
        notes.append(f"{dropped} point(s) without a finite numeric x and y were left out")
    chart = Chart(
        title=_title(name, obj),
        x_label=str(obj.get("x_label", "")),
        y_label=str(obj.get("y_label", "")),
        series=tuple(series),
        hlines=tuple(_ref_lines(obj.get("hlines"), "y", "hlines")),
        vlines=tuple(_ref_lines(obj.get("vlines"), "x", "vlines")),
    )
    return EvidenceView(
        name=name,
        kind="chart",
        title=chart.title,
        svg=render_line_chart(chart),
        legend=tuple(LegendEntry(s.name, s.colour, s.dash) for s in series),
        has_refs=bool(chart.hlines or chart.vlines),
        notes=tuple(notes),
    )


def _cell(value: object) -> Cell:
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
        raise _Unreadable(msg)
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        msg = "'rows' must be a list of rows"
        raise _Unreadable(msg)
    width = max([len(columns), *(len(r) for r in rows if isinstance(r, Sequence))])
    cells: list[tuple[Cell, ...]] = []
    for row in rows[:MAX_TABLE_ROWS]:
        if not isinstance(row, Sequence) or isinstance(row, str):
            msg = f"a row must be a list of cells, got {row!r:.60}"
            raise _Unreadable(msg)
        padded = [*row, *([None] * (width - len(row)))]
        cells.append(tuple(_cell(v) for v in padded))
    notes: tuple[str, ...] = ()
    if len(rows) > MAX_TABLE_ROWS:
        notes = (f"first {MAX_TABLE_ROWS} of {len(rows)} rows shown",)
    numeric = tuple(
        any(row[i].numeric for row in cells)
        and all(row[i].numeric or row[i].text == "—" for row in cells)
        for i in range(width)
    )
    return EvidenceView(
        name=name,
        kind="table",
        title=_title(name, obj),
        columns=tuple(str(c) for c in columns) + ("",) * (width - len(columns)),
        numeric_columns=numeric,
        rows=tuple(cells),
        notes=notes,
    )


def _json_view(name: str, obj: object, *, note: str = "") -> EvidenceView:
    text = json.dumps(obj, indent=2, default=str, ensure_ascii=False)
    notes = [note] if note else []
    if len(text) > MAX_JSON_CHARS:
        notes.append(f"first {MAX_JSON_CHARS} of {len(text)} characters shown")
        text = text[:MAX_JSON_CHARS] + "\n…"
    title = _title(name, obj) if isinstance(obj, Mapping) else name
    return EvidenceView(name=name, kind="json", title=title, text=text, notes=tuple(notes))
