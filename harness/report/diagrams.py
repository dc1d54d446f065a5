"""Evidence drawn as diagrams: timelines (lanes of events) and graphs (layered nodes and edges).

Also the timeline a table may ask for (its ``timeline`` hint names the columns to draw).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.charts import TONES
from harness.report.graph import Edge, Graph, Node, assign_layers, render_graph
from harness.report.timeline import Span, Timeline, TimelineEvent, render_timeline
from harness.report.views import (
    STRUCTURE,
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

__all__ = ["graph_view", "table_timeline", "timeline_view"]

MAX_LANES = 24
MAX_NODES = 150
# Edge kinds with a conventional look: collateral is structure, correlation is a dashed tie.
EDGE_DASHES = {"correlation": "5 3", "collateral": ""}


def lane_kind(item: Mapping[str, Any]) -> str:
    """What colours a timeline event: its kind, else its lane."""
    return str(item.get("kind") or item.get("lane", ""))


def timeline_view(name: str, obj: Mapping[str, Any]) -> EvidenceView:
    raw_events = [mapping(e, "event") for e in list_of(obj, "events")]
    raw_spans = [mapping(s, "span") for s in list_of(obj, "spans")]
    colours = Colours(avoid=toned(raw_events, lane_kind))
    events: list[TimelineEvent] = []
    lanes: list[str] = [str(lane) for lane in list_of(obj, "lanes")]
    kinds: dict[str, tuple[str, int]] = {}
    for item in raw_events:
        lane = str(item.get("lane", ""))
        kind = lane_kind(item)
        colour = colours(kind, item.get("tone"))
        kinds[kind] = (colour, kinds.get(kind, (colour, 0))[1] + 1)
        events.append(
            TimelineEvent(
                x=number(item, "x", "event"),
                lane=lane,
                label=str(item.get("label", kind)),
                colour=colour,
            )
        )
        if lane not in lanes:
            lanes.append(lane)
    spans: list[Span] = []
    for item in raw_spans:
        lane = str(item.get("lane", ""))
        kind = str(item.get("kind") or item.get("label", "span"))
        spans.append(
            Span(
                x0=number(item, "x0", "span"),
                x1=number(item, "x1", "span"),
                lane=lane,
                label=str(item.get("label", kind)),
                colour=colours(kind, item.get("tone") or "neutral"),
            )
        )
        if lane not in lanes:
            lanes.append(lane)
    return timeline_result(
        name, title_of(name, obj), str(obj.get("x_label", "")), lanes, events, spans, kinds
    )


def timeline_result(
    name: str,
    title: str,
    x_label: str,
    lanes: list[str],
    events: list[TimelineEvent],
    spans: list[Span],
    kinds: Mapping[str, tuple[str, int]],
) -> EvidenceView:
    notes: list[str] = []
    if len(lanes) > MAX_LANES:
        notes.append(f"first {MAX_LANES} of {len(lanes)} lanes drawn")
        lanes = lanes[:MAX_LANES]
    if not events and not spans:
        notes.append("no events")
    timeline = Timeline(
        title=title,
        lanes=tuple(lanes),
        events=tuple(e for e in events if e.lane in lanes),
        spans=tuple(s for s in spans if s.lane in lanes),
        x_label=x_label,
    )
    legend = tuple(LegendEntry(f"{k} ({n})", c, shape="dot") for k, (c, n) in kinds.items())
    return EvidenceView(
        name=name,
        kind="timeline",
        title=title,
        svg=render_timeline(timeline),
        legend=legend,
        notes=tuple(notes),
    )


def graph_view(name: str, obj: Mapping[str, Any]) -> EvidenceView:
    raw_nodes = [mapping(n, "node") for n in list_of(obj, "nodes")]
    raw_edges = [mapping(e, "edge") for e in list_of(obj, "edges")]
    directed = bool(obj.get("directed", False))
    layer_names = [str(x) for x in list_of(obj, "layers")]
    notes: list[str] = []
    ids: list[str] = []
    for n in raw_nodes:
        if "id" not in n:
            msg = f"node {dict(n)!r:.60} has no 'id'"
            raise Unreadable(msg)
        if str(n["id"]) not in ids:
            ids.append(str(n["id"]))
    by_id = {str(n["id"]): n for n in raw_nodes}
    pairs = []
    for e in raw_edges:
        if "source" not in e or "target" not in e:
            msg = f"edge {dict(e)!r:.60} needs 'source' and 'target'"
            raise Unreadable(msg)
        pairs.append((str(e["source"]), str(e["target"])))
    # Endpoints nobody declared still get a node, so an edge is never dropped silently.
    for a, b in pairs:
        for end in (a, b):
            if end not in by_id:
                ids.append(end)
                by_id[end] = {"id": end}
    if len(ids) > MAX_NODES:
        notes.append(f"first {MAX_NODES} of {len(ids)} nodes drawn")
        ids = ids[:MAX_NODES]
    kept = set(ids)
    pairs = [(a, b) for a, b in pairs if a in kept and b in kept]
    auto = assign_layers(ids, pairs, directed=directed)
    raw_tones = obj.get("tones")
    tones: Mapping[str, Any] = raw_tones if isinstance(raw_tones, Mapping) else {}
    colours = Colours(palette=STRUCTURE, guess=False)
    nodes: list[Node] = []
    used_tones: dict[str, str] = {}
    for node_id in ids:
        n = by_id[node_id]
        raw_layer = n.get("layer")
        if isinstance(raw_layer, str) and raw_layer in layer_names:
            layer = layer_names.index(raw_layer)
        elif isinstance(raw_layer, int) and not isinstance(raw_layer, bool):
            layer = raw_layer
        else:
            layer = auto[node_id]
        tone = n.get("tone")
        kind = str(n.get("kind", ""))
        colour = colours(kind or "node", tone)
        key = str(tone) if tone in TONES else (kind or "node")
        used_tones.setdefault(key, colour)
        nodes.append(
            Node(
                id=node_id,
                label=str(n.get("label", node_id)),
                layer=layer,
                colour=colour,
                detail=str(n.get("detail", "")),
                emphasis=bool(n.get("emphasis", False)),
            )
        )
    edge_colours = Colours(palette=STRUCTURE, avoid=STRUCTURE[:1], guess=False)
    edges: list[Edge] = []
    edge_kinds: dict[str, tuple[str, str]] = {}
    for e in raw_edges:
        a, b = str(e["source"]), str(e["target"])
        if a not in kept or b not in kept:
            continue
        kind = str(e.get("kind", ""))
        colour = "#8c959f" if not kind else edge_colours(kind, e.get("tone"))
        dash = EDGE_DASHES.get(kind, "")
        if kind:
            edge_kinds.setdefault(kind, (colour, dash))
        edges.append(
            Edge(
                source=a,
                target=b,
                colour=colour,
                dash=dash,
                label=str(e.get("label", "")),
                detail=str(e.get("detail", "")),
            )
        )
    legend = [LegendEntry(str(tones.get(k, k)), c, shape="box") for k, c in used_tones.items()]
    legend += [LegendEntry(k, c, d) for k, (c, d) in edge_kinds.items()]
    if any(n.emphasis for n in nodes) and "emphasis" in tones:
        legend.append(LegendEntry(str(tones["emphasis"]), "#1f2328", shape="box"))
    graph = Graph(
        title=title_of(name, obj),
        nodes=tuple(nodes),
        edges=tuple(edges),
        directed=directed,
        layer_names=tuple(layer_names),
    )
    return EvidenceView(
        name=name,
        kind="graph",
        title=graph.title,
        svg=render_graph(graph),
        legend=tuple(legend),
        notes=tuple(notes),
    )


def table_timeline(
    name: str,
    obj: Mapping[str, Any],
    columns: list[str],
    rows: Sequence[Any],
    hint: Mapping[str, Any],
) -> EvidenceView:
    """The rows of a table drawn as a timeline, columns named by the ``timeline`` hint."""

    x_at = _column(hint, "x", columns)
    if x_at is None:
        msg = "the timeline hint needs an 'x' column"
        raise Unreadable(msg)
    lane_at, kind_at = _column(hint, "lane", columns), _column(hint, "kind", columns)
    raw_labels = hint.get("label", [])
    label_cols = [raw_labels] if isinstance(raw_labels, str) else list(raw_labels)
    label_at = [columns.index(str(c)) for c in label_cols if str(c) in columns]
    colours = Colours()
    events: list[TimelineEvent] = []
    kinds: dict[str, tuple[str, int]] = {}
    lanes: list[str] = []
    for row in rows:
        if not isinstance(row, Sequence) or isinstance(row, str) or len(row) <= x_at:
            continue
        x = to_float(row[x_at])
        if x is None:
            continue
        lane = str(row[lane_at]) if lane_at is not None and lane_at < len(row) else ""
        kind = str(row[kind_at]) if kind_at is not None and kind_at < len(row) else lane
        label = " · ".join(
            str(row[i]) for i in label_at if i < len(row) and row[i] not in ("", None)
        )
        colour = colours(kind or "event", hint.get("tone"))
        kinds[kind or "event"] = (colour, kinds.get(kind or "event", (colour, 0))[1] + 1)
        events.append(TimelineEvent(x=x, lane=lane, label=label or kind or "event", colour=colour))
        if lane not in lanes:
            lanes.append(lane)
    x_label = str(hint.get("x_label", columns[x_at]))
    return timeline_result(name, title_of(name, obj), x_label, lanes, events, [], kinds)


def _column(hint: Mapping[str, Any], key: str, columns: list[str]) -> int | None:
    """The index of the column the hint names for ``key`` (``None``: the hint names none)."""
    name = hint.get(key)
    if name is None:
        return None
    if str(name) not in columns:
        msg = f"{key} column {name!r} is not one of the table's columns"
        raise Unreadable(msg)
    return columns.index(str(name))
