"""The exposure graph of a population and the cascade graph of a prediction (``networkx``).

perp-mechanics.md §14; DESIGN.md guide point 9: cascades are connected exposure. Nodes of the
**exposure graph** (:func:`exposure_graph`): accounts, collateral pools (an account's cross
wallet, shared by all its cross positions; one pool per isolated position) and symbols. Edges:
``collateral`` (account – pool), ``position`` (pool – symbol, with the signed quantity and entry)
and ``correlation`` (symbol – symbol, with the shock's beta). A cross pool with positions in two
symbols ties them together: a loss on one lowers the equity behind the other (§14 "Shared
collateral"); :func:`shared_collateral` lists those pools. The **cascade graph**
(:func:`cascade_graph`) of a :class:`~harness.oracle.cascade.CascadePrediction` links each
account liquidated by forced flow to the accounts whose flow moved the price that crossed it; its
longest paths are the generations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from harness.cascade import AccountExposure
from harness.model import MarginMode
from harness.oracle.cascade import CascadePrediction

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["cascade_graph", "exposure_graph", "graph_summary", "shared_collateral"]

_CROSS = ""  # the pool key's symbol part for an account's cross wallet


def exposure_graph(
    population: Iterable[AccountExposure],
    correlations: Mapping[tuple[str, str], Decimal] | None = None,
) -> nx.Graph:
    """Accounts, collateral pools and symbols with their collateral, position and correlation
    edges (module docstring). Node keys: ``("account", id)``, ``("pool", id, symbol or "")``,
    ``("symbol", symbol)``; every node has a ``kind`` attribute, every edge a ``kind``."""
    import networkx as nx  # here, not at the top: ~0.1 s that only the cascade checks need

    graph = nx.Graph()
    for (a, b), beta in (correlations or {}).items():
        graph.add_node(("symbol", a), kind="symbol")
        graph.add_node(("symbol", b), kind="symbol")
        graph.add_edge(("symbol", a), ("symbol", b), kind="correlation", beta=str(beta))
    for acct in population:
        if not acct.positions:
            continue
        account = ("account", acct.account_id)
        graph.add_node(account, kind="account", exempt=acct.exempt, label=acct.label)
        for pos in acct.positions:
            isolated = pos.margin_mode is MarginMode.ISOLATED
            pool = ("pool", acct.account_id, pos.symbol if isolated else _CROSS)
            if pool not in graph:
                wallet = pos.isolated_wallet if isolated else acct.cross_wallet_balance
                graph.add_node(pool, kind="pool", isolated=isolated, wallet=str(wallet))
                graph.add_edge(account, pool, kind="collateral")
            graph.add_node(("symbol", pos.symbol), kind="symbol")
            graph.add_edge(
                pool,
                ("symbol", pos.symbol),
                kind="position",
                quantity=str(pos.quantity),
                entry=str(pos.entry_price),
            )
    return graph


def shared_collateral(graph: nx.Graph) -> dict[tuple[str, str], list[str]]:
    """Cross pools holding more than one symbol: ``(account id, "") -> [symbols]``."""
    out: dict[tuple[str, str], list[str]] = {}
    for node, data in graph.nodes(data=True):
        if data.get("kind") != "pool" or data.get("isolated"):
            continue
        symbols = sorted(n[1] for n in graph.neighbors(node) if n[0] == "symbol")
        if len(symbols) > 1:
            out[(node[1], node[2])] = symbols
    return out


def cascade_graph(prediction: CascadePrediction) -> nx.DiGraph:
    """Who liquidated whom: an edge ``A -> B`` when A's forced flow, in the round before B first
    crossed, moved a symbol B holds (the prediction's generations are its longest paths)."""
    import networkx as nx

    graph = nx.DiGraph()
    for account, gen in prediction.generation.items():
        graph.add_node(account, generation=gen)
    for rnd in prediction.rounds:
        for step in rnd.steps:
            for cause in step.causes:
                graph.add_edge(cause, step.account_id)
    return graph


def graph_summary(graph: nx.Graph) -> dict[str, int]:
    """Node and edge counts by ``kind`` (``"nodes: account"``, ``"edges: position"``, ...)."""
    out: dict[str, int] = {}
    for _, data in graph.nodes(data=True):
        key = f"nodes: {data.get('kind', '?')}"
        out[key] = out.get(key, 0) + 1
    for _, _, data in graph.edges(data=True):
        key = f"edges: {data.get('kind', '?')}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
