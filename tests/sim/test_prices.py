"""Index, basis and mark price (adapters/sim/engine/prices.py) against the independent oracle.

Source: perp-mechanics.md §1 (index, 5 % outlier rule), §2 (V1 mark = median(P1, P2, last)).
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from adapters.sim import scenarios
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.prices import PriceState
from adapters.sim.engine.scenario import apply_scenario
from harness.model import PricePath, Side
from harness.oracle import index_price, mark_price, moving_average_basis
from tests.sim.simkit import BTC, ETH, make_engine, market

D = Decimal
PX = D("0.00000001")


def _px(value: Decimal) -> Decimal:
    return value.quantize(PX, rounding=ROUND_HALF_EVEN)


def _with_feeds(prices: list[str], weights: list[str] | None = None) -> tuple[PriceState, int]:
    engine = make_engine()
    state = engine.prices[BTC]
    now = engine.clock.now_ms()
    for i, feed in enumerate(state.feeds):
        feed.price = D(prices[i])
        feed.weight = D(weights[i]) if weights else D(1)
        feed.updated_ms = now
    return state, now


@pytest.mark.parametrize(
    ("prices", "weights", "expected"),
    [
        pytest.param(["100", "101", "102"], ["1", "2", "1"], "101", id="weighted-mean"),
        pytest.param(["100", "101", "130"], None, "100.5", id="one-outlier-dropped"),
        pytest.param(["100", "100", "105"], None, "101.66666667", id="exactly-5pct-kept"),
        pytest.param(["100", "100", "105.00000001"], None, "100", id="just-over-5pct-dropped"),
        pytest.param(["80", "100", "130"], ["5", "1", "5"], "100", id="two-outliers-median"),
    ],
)
def test_index_follows_the_weighted_mean_and_outlier_rule(
    prices: list[str], weights: list[str] | None, expected: str
) -> None:
    state, now = _with_feeds(prices, weights)
    index = state.compute_index(now)
    assert index == D(expected)
    ws = None if weights is None else [D(w) for w in weights]
    oracle = index_price([D(p) for p in prices], ws)
    assert index == _px(oracle)


def test_a_stalled_feed_is_dropped_once_older_than_stale_feed_ms() -> None:
    engine = make_engine(quiet=True)
    state = engine.prices[BTC]
    start = engine.clock.now_ms()
    state.feeds[1].stalled = True  # stuck at 60000 from now on
    engine.set_price_path(BTC, PricePath(points=((0, D(60000)), (1, D(60300)))))
    seen = []
    for _ in range(7):
        engine.clock.advance(1000)
        seen.append(state.index)
    # Ages 1..5 s: still fresh (<= 5000 ms), averaged in; 6 s and later: excluded.
    assert seen == [D(60200)] * 5 + [D(60300)] * 2
    assert engine.clock.now_ms() - state.feeds[1].updated_ms == 7000
    assert state.feeds[1].updated_ms == start


def test_index_matches_the_oracle_through_the_stale_feed_scenario() -> None:
    engine = make_engine(seed=3)
    apply_scenario(engine, scenarios.load("stale-feed"))
    state = engine.prices[BTC]
    stale_ms = engine.config.stale_feed_ms
    excluded = set()
    for second in range(1, 61):
        engine.clock.advance(1000)
        now = engine.clock.now_ms()
        prices = [f.price if now - f.updated_ms <= stale_ms else None for f in state.feeds]
        weights = [f.weight for f in state.feeds]
        assert state.index == _px(index_price(prices, weights)), second
        naive = sum((f.price for f in state.feeds), D(0)) / len(state.feeds)
        if state.index != _px(naive):
            excluded.add(second)
    # Feed 2 stalls at 10 s (last print 9 s: dropped from 15 s) and prints again at 30 s; feed 3
    # prints 30 % off from 40 s to 50 s. Outside those windows all three feeds count.
    assert excluded == set(range(15, 30)) | set(range(40, 50))


def _oracle_mark(engine: Engine, symbol: str, window: deque[tuple[Decimal, ...]]) -> Decimal:
    state = engine.prices[symbol]
    breakdown = mark_price(
        state.index,
        state.last_funding_rate,
        state.next_funding_ms - state.mark_time_ms,
        state.funding_interval_ms,
        moving_average_basis(list(window)),  # type: ignore[arg-type]
        state.last_price,
    )
    return _px(breakdown.mark)


def _sample(engine: Engine, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    book = engine.books[symbol]
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None
    assert ask is not None
    return (bid, ask, engine.prices[symbol].index)


def test_mark_is_the_median_rule_and_agrees_with_the_oracle_every_update() -> None:
    engine = make_engine(seed=7)
    trader = engine.create_account(D(100_000))
    window: deque[tuple[Decimal, ...]] = deque([_sample(engine, BTC)], maxlen=30)
    idx = engine.prices[BTC].index
    engine.set_price_path(
        BTC, PricePath(points=((0, idx), (20_000, idx * D("0.97")), (40_000, idx)), linear=True)
    )
    for second in range(45):
        engine.clock.advance(1000)
        window.append(_sample(engine, BTC))
        state = engine.prices[BTC]
        low, high = min(state.p1, state.p2), max(state.p1, state.p2)
        assert state.mark == _px(min(max(state.last_price, low), high))
        assert state.mark == _oracle_mark(engine, BTC, window), second
        if second in (10, 30):  # a trade moves the last price between updates
            engine.place_order(trader.account_id, market(BTC, Side.SELL, "0.5"))
    assert len(state.basis_samples) == 30


def test_a_last_price_wick_cannot_pull_the_mark_out_of_the_p1_p2_band() -> None:
    engine = make_engine(seed=2)
    engine.market_maker.set_profile(BTC, "thin")
    engine.clock.advance(31_000)
    trader = engine.create_account(D(1_000_000))
    bids = engine.books[BTC].levels(Side.BUY, 10)
    qty = sum((q for _, q in bids), D(0))
    engine.place_order(trader.account_id, market(BTC, Side.SELL, str(qty)))
    state = engine.prices[BTC]
    assert state.last_price == bids[-1][0]
    assert state.last_price < state.index * D("0.995")  # the thin book's last level, -55 bp
    assert state.mark == _px(min(state.p1, state.p2))  # clamped at the band's lower edge
    assert abs(state.mark / state.index - 1) < D("0.0002")


def test_basis_window_keeps_only_the_last_30_samples() -> None:
    engine = make_engine()
    samples = [_sample(engine, ETH)]
    for _ in range(40):
        engine.clock.advance(1000)
        samples.append(_sample(engine, ETH))
    state = engine.prices[ETH]
    assert len(state.basis_samples) == 30
    assert abs(state.ma_basis() - moving_average_basis(samples[-30:])) < D("1e-20")


def test_published_index_mark_and_feeds_carry_8_decimals() -> None:
    engine = make_engine(seed=5)
    idx = engine.prices[BTC].index
    engine.set_price_path(BTC, PricePath(points=((0, idx), (7_000, idx / 3)), linear=True))
    for _ in range(8):
        engine.clock.advance(1000)
        for state in engine.prices.values():
            values = [state.index, state.mark, *(f.price for f in state.feeds)]
            assert {v.as_tuple().exponent for v in values} == {-8}
            assert all(v == _px(v) for v in values)
