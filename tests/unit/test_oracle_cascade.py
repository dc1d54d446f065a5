"""The exposure graph, the predicted cascade and the latency cost, on hand-worked numbers
(harness/oracle/cascade.py, exposure.py, latency.py; perp-mechanics.md §14)."""

from __future__ import annotations

from decimal import Decimal

import networkx as nx
import pytest

from harness.cascade import AccountExposure
from harness.model import (
    BookSnapshot,
    Bracket,
    Instrument,
    LiquidationPolicy,
    LiquidationVariant,
    MarginMode,
    MarkSnapshot,
    Position,
    PricePath,
)
from harness.oracle.cascade import MarketInput, Shock, move_for_mark, predict_cascade
from harness.oracle.exposure import (
    cascade_graph,
    exposure_graph,
    graph_summary,
    shared_collateral,
)
from harness.oracle.latency import expected_latency_cost

D = Decimal
SYM, OTHER = "AAAUSDT", "BBBUSDT"
ONE_TIER = (
    Bracket(
        bracket=1,
        initial_leverage=100,
        notional_floor=D(0),
        notional_cap=D(10**9),
        maint_margin_ratio=D("0.01"),
        cum=D(0),
    ),
)


def instrument(symbol: str = SYM) -> Instrument:
    """One tier (1 % maintenance), whole positions closed, no liquidation fee."""
    return Instrument(
        symbol=symbol,
        base_asset=symbol[:3],
        quote_asset="USDT",
        margin_asset="USDT",
        tick_size=D("0.01"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D(10**6),
        market_max_qty=D(10**6),
        min_price=D("0.01"),
        max_price=D(10**6),
        min_notional=D(1),
        brackets=ONE_TIER,
        liquidation_fee_rate=D(0),
        liquidation=LiquidationPolicy(variant=LiquidationVariant.FULL),
    )


def position(
    qty: str, wallet: str, *, symbol: str = SYM, entry: str = "100", isolated: bool = True
) -> Position:
    return Position(
        symbol=symbol,
        quantity=D(qty),
        entry_price=D(entry),
        mark_price=D(entry),
        unrealized_pnl=D(0),
        liquidation_price=None,
        margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
        isolated_wallet=D(wallet) if isolated else D(0),
        leverage=10,
        notional=D(qty) * D(entry),
        maint_margin=D(0),
        initial_margin=D(0),
    )


def account(account_id: str, *positions: Position, cross: str = "0") -> AccountExposure:
    isolated = sum((p.isolated_wallet for p in positions), D(0))
    return AccountExposure(
        account_id=account_id,
        label=account_id,
        wallet_balance=D(cross) + isolated,
        cross_wallet_balance=D(cross),
        positions=positions,
    )


def market(
    bids: tuple[tuple[str, str], ...],
    asks: tuple[tuple[str, str], ...] = (("101.1", "10"),),
    *,
    symbol: str = SYM,
    index: str = "100",
    last: str = "101",
) -> MarketInput:
    """Funding rate 0, so P1 is the index."""
    return MarketInput(
        instrument=instrument(symbol),
        book=BookSnapshot(
            symbol=symbol,
            bids=tuple((D(p), D(q)) for p, q in bids),
            asks=tuple((D(p), D(q)) for p, q in asks),
            time_ms=0,
        ),
        mark=MarkSnapshot(
            symbol=symbol,
            mark_price=D(index),
            index_price=D(index),
            last_price=D(last),
            last_funding_rate=D(0),
            interest_rate=D(0),
            next_funding_time_ms=3_600_000,
            time_ms=0,
        ),
    )


# Book bids 100.9 x 1, 100 x 1, 99 x 10 and asks 101.1: mid 101, basis +1 over the index 100.
STAIRS = market((("100.9", "1"), ("100", "1"), ("99", "10")))
# Four isolated longs of 1 at 100 with 9.5, 10.05, 10.5 and 11 USDT of margin. With 1 %
# maintenance a long is liquidated at mark m when W + (m - 100) <= 0.01 m, i.e. m <= (100-W)/0.99:
# A at 91.414, B at 90.859, C at 90.404, D at 89.899.
CROWD = [
    account("A", position("1", "9.5")),
    account("B", position("1", "10.05")),
    account("C", position("1", "10.5")),
    account("D", position("1", "11")),
]


def test_a_forced_flow_cascade_on_hand_worked_numbers() -> None:
    """Shock -10 % with one basis sample: I' = 90, P1 = 90 (funding 0), the book moves to bids
    90.81 x 1, 90 x 1, 89.1 x 10 and its one new basis sample is 0.9, so P2 = 90.9; last stays
    101, so the mark is median(90, 90.9, 101) = 90.9.
    Round 1 at 90.9: A (91.414) crosses; its 1 sells at 90.81, last = 90.81, mark 90.81.
    Round 2 at 90.81: B (90.859) crosses; its 1 sells at 90, mark = median(90, 90.9, 90) = 90.
    Round 3 at 90: C (90.404) crosses; it sells at 89.1, below its bankruptcy price 89.5: the
    fund's shortfall is 0.4. The mark stays at P1 = 90 (the band's floor): D (89.899) survives.
    Three generations, each liquidated by the previous one's flow."""
    prediction = predict_cascade(
        CROWD,
        {SYM: STAIRS},
        Shock(moves={SYM: D("-0.1")}),
        basis_samples=1,
        tolerance_bps=D(0),
    )
    assert prediction.shocked_marks == {SYM: D("90.9")}
    assert [r.marks[SYM] for r in prediction.rounds] == [D("90.9"), D("90.81"), D(90)]
    assert [[s.account_id for s in r.steps] for r in prediction.rounds] == [["A"], ["B"], ["C"]]
    assert [r.last[SYM] for r in prediction.rounds] == [D("90.81"), D(90), D("89.1")]
    assert prediction.liquidated == ("A", "B", "C")
    assert prediction.generation == {"A": 1, "B": 2, "C": 3}
    assert prediction.depth == 3
    assert prediction.forced_volume == {SYM: D(3)}
    assert prediction.shortfall == {SYM: D("0.4")}
    assert prediction.final_marks == {SYM: D(90)}
    graph = cascade_graph(prediction)
    assert set(graph.edges) == {("A", "B"), ("B", "C")}
    assert nx.dag_longest_path_length(graph) + 1 == prediction.depth


def test_more_bids_absorb_the_flow_and_stop_the_cascade_at_the_first_round() -> None:
    """With 5 at 100.9 (90.81 after the shock) A's close leaves the last at 90.81 and B's too:
    nobody but A and B; C needs the mark at 90.40."""
    deep = market((("100.9", "5"), ("100", "1"), ("99", "10")))
    prediction = predict_cascade(
        CROWD, {SYM: deep}, Shock(moves={SYM: D("-0.1")}), basis_samples=1, tolerance_bps=D(0)
    )
    assert prediction.liquidated == ("A", "B")
    assert prediction.depth == 2


def test_accounts_within_the_tolerance_of_their_line_are_borderline() -> None:
    """The -10 % shock again, with a 10 bp tolerance. Index 0.1 % higher (90.09): P2 = 90.9909,
    A crosses and sells at 90.81 · 1.001 = 90.9008, which stays above B's 90.859: only A. Index
    0.1 % lower (89.91): A, then B at 90.7192, then C at 89.91 (D's 89.899 stays out of reach).
    B and C depend on 5 bp of B's margin: borderline; A is certain."""
    prediction = predict_cascade(
        CROWD,
        {SYM: STAIRS},
        Shock(moves={SYM: D("-0.1")}),
        basis_samples=1,
        tolerance_bps=D(10),
    )
    assert prediction.liquidated == ("A", "B", "C")
    assert prediction.borderline == frozenset({"B", "C"})
    assert prediction.certain == frozenset({"A"})


def test_shared_cross_collateral_liquidates_what_one_leg_alone_would_not() -> None:
    """A cross wallet of 15 behind longs of 1 at 100 in two symbols; both fall 8 % with no
    basis (mid = index): equity 15 - 8 - 8 = -1 <= maintenance 0.92 + 0.92. Alone, either leg's
    8 leaves 7 > 0.92. The graph ties both symbols through the one pool."""
    flat = (("99.99", "100"),)
    markets = {
        SYM: market(flat, (("100.01", "100"),), last="100"),
        OTHER: market(flat, (("100.01", "100"),), symbol=OTHER, last="100"),
    }
    pair = account(
        "pair",
        position("1", "0", isolated=False),
        position("1", "0", symbol=OTHER, isolated=False),
        cross="15",
    )
    one = account("one", position("1", "0", isolated=False), cross="15")
    shock = Shock.correlated(SYM, D("-0.08"), {OTHER: D(1)})
    prediction = predict_cascade([pair, one], markets, shock, tolerance_bps=D(0))
    assert prediction.liquidated == ("pair",)
    graph = exposure_graph([pair, one], {(SYM, OTHER): D(1)})
    assert shared_collateral(graph) == {("pair", ""): [SYM, OTHER]}
    assert graph_summary(graph) == {
        "edges: collateral": 2,
        "edges: correlation": 1,
        "edges: position": 3,
        "nodes: account": 2,
        "nodes: pool": 2,
        "nodes: symbol": 2,
    }


def test_isolated_positions_get_a_pool_each() -> None:
    acct = account("iso", position("1", "10"), position("2", "5", symbol=OTHER))
    graph = exposure_graph([acct])
    pools = [n for n, d in graph.nodes(data=True) if d["kind"] == "pool"]
    assert sorted(pools) == [("pool", "iso", SYM), ("pool", "iso", OTHER)]
    assert shared_collateral(graph) == {}


def test_move_for_mark_inverts_the_mark_model() -> None:
    """P2 = I' + 0.9 + 0.1·I'/100 after one sample: a mark of 90.9 needs I' = 90 (-10 %)."""
    move = move_for_mark(STAIRS, D("90.9"), basis_samples=1)
    assert abs(move - D("-0.1")) < D("1e-30")


def test_a_shock_refuses_a_fall_of_100_percent() -> None:
    with pytest.raises(ValueError, match="must be > -1"):
        Shock(moves={SYM: D(-1)})


def test_latency_cost_on_hand_worked_numbers() -> None:
    """A long of 1 at 100 with 5 of margin: liquidated at 95/0.99 = 95.96, bankrupt at 95. The
    index falls 1 a second; updates every second: the first mark at or under 95.96 is 95 at 5 s.
    The book's half spread is 1 bp (99.99 / 100.01). Latency 0: the step runs at 5 s at 95, the
    fund takes the long at 95 and sells at 95 · 0.9999 = 94.9905: shortfall 0.0095. Latency 2 s:
    at 7 s the mark is 93, the sale 92.9907, shortfall 2.0093."""
    flat = market((("99.99", "10"),), (("100.01", "10"),), last="100")
    path = PricePath(points=((0, D(100)), (12_000, D(88))), linear=True)
    crowd = [account("A", position("1", "5"))]
    costs = {
        latency: expected_latency_cost(crowd, flat, path, start_ms=0, latency_ms=latency)
        for latency in (0, 2_000)
    }
    assert [(s.crossed_ms, s.executed_ms, s.mark) for s in costs[0].steps] == [
        (5_000, 5_000, D(95))
    ]
    assert costs[0].shortfall == D("0.0095")
    assert [(s.executed_ms, s.mark) for s in costs[2_000].steps] == [(7_000, D(93))]
    assert costs[2_000].shortfall == D("2.0093")


def test_latency_between_updates_executes_on_the_last_published_mark() -> None:
    """1.5 s after the 5 s update the last mark published is the 6 s one: 94."""
    flat = market((("99.99", "10"),), (("100.01", "10"),), last="100")
    path = PricePath(points=((0, D(100)), (12_000, D(88))), linear=True)
    cost = expected_latency_cost(
        [account("A", position("1", "5"))], flat, path, start_ms=0, latency_ms=1_500
    )
    assert [(s.executed_ms, s.mark) for s in cost.steps] == [(6_500, D(94))]
