"""Inline SVG drawings of small graphs (exposure graphs, cascade graphs) with a layered layout.

Nodes sit in columns — their layer: a kind such as accounts → collateral → symbols, or a cascade
generation — and within a column they are ordered by a few barycentre sweeps so that edges cross
less. Everything is computed here, deterministically, from the evidence alone: the same
evidence always gives the same picture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Edge", "Graph", "Node", "assign_layers", "order_layers", "render_graph"]

WIDTH = 720
TOP, BOTTOM, SIDE = 30, 12, 8
ROW_H = 24
NODE_H = 18
CHAR_W = 6.3  # average width of an 11 px system-ui character
SWEEPS = 4
MAX_EDGE_LABELS = 40


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    layer: int
    colour: str
    detail: str = ""
    emphasis: bool = False  # drawn with a heavy outline (e.g. a mismatch with the prediction)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    colour: str
    dash: str = ""
    label: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...] = ()
    directed: bool = False
    layer_names: tuple[str, ...] = ()


def assign_layers(
    ids: Sequence[str], edges: Sequence[tuple[str, str]], *, directed: bool
) -> dict[str, int]:
    """Layers for nodes that came without one: the longest path from a source when ``directed``
    (a cycle's back edges are ignored), else the distance from the first node of each connected
    part (breadth first, in input order)."""
    known = set(ids)
    succ: dict[str, list[str]] = defaultdict(list)
    adj: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        if a in known and b in known and a != b:
            succ[a].append(b)
            adj[a].append(b)
            adj[b].append(a)
    layer: dict[str, int] = {}
    if directed:
        pred: dict[str, list[str]] = defaultdict(list)
        for a in ids:
            for b in succ[a]:
                pred[b].append(a)
        on_path: set[str] = set()

        def longest(node: str) -> int:
            if node not in layer:
                on_path.add(node)
                layer[node] = max(
                    (longest(p) + 1 for p in pred[node] if p not in on_path), default=0
                )
                on_path.discard(node)
            return layer[node]

        for node in ids:
            longest(node)
        return layer
    for start in ids:
        if start in layer:
            continue
        layer[start] = 0
        frontier = [start]
        while frontier:
            nxt = []
            for node in frontier:
                for b in adj[node]:
                    if b not in layer:
                        layer[b] = layer[node] + 1
                        nxt.append(b)
            frontier = nxt
    return layer


def order_layers(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[list[Node]]:
    """Columns of nodes, each ordered by barycentre sweeps (left to right, then back)."""
    columns: dict[int, list[Node]] = defaultdict(list)
    for n in nodes:
        columns[n.layer].append(n)
    keys = sorted(columns)
    cols = [columns[k] for k in keys]
    neighbours: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        neighbours[e.source].append(e.target)
        neighbours[e.target].append(e.source)
    tallest = max((len(c) for c in cols), default=0)

    def positions() -> dict[str, float]:
        pos: dict[str, float] = {}
        for col in cols:
            offset = (tallest - len(col)) / 2
            for i, n in enumerate(col):
                pos[n.id] = offset + i
        return pos

    for sweep in range(SWEEPS):
        indices = range(1, len(cols)) if sweep % 2 == 0 else range(len(cols) - 2, -1, -1)
        for ci in indices:
            pos = positions()
            ref = cols[ci - 1] if sweep % 2 == 0 else cols[ci + 1]
            ref_ids = {n.id for n in ref}

            def key(
                item: tuple[int, Node],
                pos: dict[str, float] = pos,
                ref_ids: set[str] = ref_ids,
            ) -> tuple[float, int]:
                i, node = item
                near = [pos[m] for m in neighbours[node.id] if m in ref_ids]
                return (sum(near) / len(near) if near else pos[node.id], i)

            cols[ci] = [n for _, n in sorted(enumerate(cols[ci]), key=key)]
    return cols


def _short(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def render_graph(graph: Graph) -> Markup:
    """The graph as an ``<svg>`` element: columns of labelled nodes, curved edges between them."""
    cols = order_layers(graph.nodes, graph.edges)
    tallest = max((len(c) for c in cols), default=1)
    height = TOP + tallest * ROW_H + BOTTOM
    parts = [
        f'<svg class="chart graph" viewBox="0 0 {WIDTH} {height}" role="img">'
        f"<title>{escape(graph.title)}</title>"
    ]
    if not cols:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{height / 2}" class="empty" text-anchor="middle">'
            "no nodes</text></svg>"
        )
        return Markup("".join(parts))  # noqa: S704 - constant text
    col_w = (WIDTH - 2 * SIDE) / len(cols)
    box_w = min(col_w - 18, 220.0)
    chars = max(int((box_w - 12) / CHAR_W), 3)
    where: dict[str, tuple[float, float, float]] = {}  # id -> (centre x, centre y, half width)
    for ci, col in enumerate(cols):
        cx = SIDE + col_w * (ci + 0.5)
        offset = (tallest - len(col)) / 2
        for i, node in enumerate(col):
            text = _short(node.label, chars)
            half = min(box_w, len(text) * CHAR_W + 14) / 2
            where[node.id] = (cx, TOP + (offset + i + 0.5) * ROW_H, half)
    layer_of_col = sorted({n.layer for n in graph.nodes})
    for ci, layer in enumerate(layer_of_col):
        name = graph.layer_names[layer] if 0 <= layer < len(graph.layer_names) else ""
        if name:
            parts.append(
                f'<text x="{_n(SIDE + col_w * (ci + 0.5))}" y="16" class="col-label" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    label_edges = len(graph.edges) <= MAX_EDGE_LABELS
    for e in graph.edges:
        if e.source not in where or e.target not in where:
            continue
        parts.append(_edge(e, where, directed=graph.directed, labelled=label_edges))
    for node in graph.nodes:
        cx, cy, half = where[node.id]
        tip = node.label + (f"\n{node.detail}" if node.detail else "")
        heavy = ' stroke-width="3"' if node.emphasis else ""
        parts.append(
            f'<g class="node"><title>{escape(tip)}</title>'
            f'<rect x="{_n(cx - half)}" y="{_n(cy - NODE_H / 2)}" width="{_n(2 * half)}" '
            f'height="{NODE_H}" rx="{NODE_H / 2}" fill="{escape(node.colour)}" fill-opacity=".2" '
            f'stroke="{escape(node.colour)}"{heavy}/>'
            f'<text x="{_n(cx)}" y="{_n(cy)}" class="node-label" text-anchor="middle" '
            f'dominant-baseline="central">{escape(_short(node.label, chars))}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _edge(
    e: Edge,
    where: Mapping[str, tuple[float, float, float]],
    *,
    directed: bool,
    labelled: bool,
) -> str:
    (ax, ay, ah), (bx, by, bh) = where[e.source], where[e.target]
    if abs(ax - bx) < 1:  # same column: an arc on the right-hand side
        x0, x1 = ax + ah, bx + bh
        bulge = max(x0, x1) + 18 + abs(ay - by) * 0.15
        path = f"M{_n(x0)},{_n(ay)} C{_n(bulge)},{_n(ay)} {_n(bulge)},{_n(by)} {_n(x1)},{_n(by)}"
        end_dir = -1.0
        mid = (bulge - 4, (ay + by) / 2)
    else:
        sign = 1.0 if bx > ax else -1.0
        x0, x1 = ax + sign * ah, bx - sign * bh
        c = (x1 - x0) / 2
        path = f"M{_n(x0)},{_n(ay)} C{_n(x0 + c)},{_n(ay)} {_n(x1 - c)},{_n(by)} {_n(x1)},{_n(by)}"
        end_dir = sign
        mid = ((x0 + x1) / 2, (ay + by) / 2)
    dash = f' stroke-dasharray="{escape(e.dash)}"' if e.dash else ""
    colour = escape(e.colour)
    tip = f"{e.source} → {e.target}" + (f": {e.detail or e.label}" if e.detail or e.label else "")
    out = [
        f'<g class="edge"><title>{escape(tip)}</title>'
        f'<path d="{path}" class="edge-line" stroke="{colour}"{dash}/>'
    ]
    if directed:
        # The curve ends horizontally, so the arrowhead points along x.
        tipx, tipy = (x1, by)
        back = tipx - end_dir * 7
        out.append(
            f'<path d="M{_n(tipx)},{_n(tipy)} L{_n(back)},{_n(tipy - 3.5)} '
            f'L{_n(back)},{_n(tipy + 3.5)} z" fill="{colour}"/>'
        )
    if e.label and labelled:
        out.append(
            f'<text x="{_n(mid[0])}" y="{_n(mid[1] - 3)}" class="edge-label" '
            f'text-anchor="middle">{escape(e.label)}</text>'
        )
    out.append("</g>")
    return "".join(out)
