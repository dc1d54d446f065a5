"""Property tests of the cascade oracle and the size advice (perp-mechanics.md §14
"Property tests for a cascade simulator", applied to the oracle's own prediction)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cascade import AccountExposure
from harness.model import BookSnapshot, Side
from harness.oracle.cascade import MarketInput, Shock, predict_cascade
from harness.oracle.concentration import advised_size, close_slippage
from tests.unit.test_oracle_cascade import SYM, account, market, position

D = Decimal


def _decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


# Isolated longs of 0.1 to 5 at 100 with 2 to 20 of margin (liquidated 1 % to 18 % down).
longs = st.lists(
    st.tuples(_decimals("0.1", "5", 3), _decimals("2", "20", 2)), min_size=1, max_size=12
)
# Bid levels under the best bid 100.9: (ticks below it, quantity).
levels = st.lists(
    st.tuples(st.integers(min_value=1, max_value=1500), _decimals("0.1", "5", 3)),
    min_size=0,
    max_size=8,
)
shocks = _decimals("-0.2", "-0.01", 4)


def _population(rows: list[tuple[Decimal, Decimal]]) -> list[AccountExposure]:
    return [account(f"a{i:02}", position(str(q), str(w))) for i, (q, w) in enumerate(rows)]


def _book(best: Decimal, rows: list[tuple[int, Decimal]]) -> MarketInput:
    """Bids from 100.9 down, over a backstop of 1000 at 50 that takes whatever is left: every
    forced close prints a price. (An exhausted book prints none, and the rest goes to the
    insurance fund at the bankruptcy price: the last price, and with it the mark, then stop
    where the book ran out — §14's "zero book depth beyond a level" case, outside the
    monotonicity the section states.)"""
    prices: dict[Decimal, Decimal] = {D("100.9"): best, D(50): D(1000)}
    for ticks, qty in rows:
        price = D("100.9") - D("0.01") * ticks
        prices[price] = prices.get(price, D(0)) + qty
    bids = tuple((str(p), str(q)) for p, q in sorted(prices.items(), reverse=True))
    return market(bids)


@settings(deadline=None, max_examples=60)
@given(longs, _decimals("0.1", "5", 3), levels, shocks)
def test_forced_volume_never_exceeds_what_crossed(
    rows: list[tuple[Decimal, Decimal]],
    best: Decimal,
    book: list[tuple[int, Decimal]],
    move: Decimal,
) -> None:
    """Total forced volume <= the size of the positions liquidatable at the shock plus those
    that newly crossed during the cascade (§14)."""
    population = _population(rows)
    prediction = predict_cascade(
        population, {SYM: _book(best, book)}, Shock(moves={SYM: move}), tolerance_bps=D(0)
    )
    crossed = set(prediction.liquidated)
    size = sum((p.size for a in population if a.account_id in crossed for p in a.positions), D(0))
    assert sum(prediction.forced_volume.values(), D(0)) <= size


@settings(deadline=None, max_examples=60)
@given(longs, _decimals("0.1", "5", 3), levels, levels, shocks)
def test_more_resting_bids_never_liquidate_more_nor_cost_the_fund_more(
    rows: list[tuple[Decimal, Decimal]],
    best: Decimal,
    book: list[tuple[int, Decimal]],
    extra: list[tuple[int, Decimal]],
    move: Decimal,
) -> None:
    """Adding resting bid depth (at or under the best bid: the mid, and so the basis, stay)
    never increases the number of liquidations of a long cascade, nor the fund's shortfall."""
    population = _population(rows)
    shock = Shock(moves={SYM: move})
    thin = predict_cascade(population, {SYM: _book(best, book)}, shock, tolerance_bps=D(0))
    deep = predict_cascade(population, {SYM: _book(best, book + extra)}, shock, tolerance_bps=D(0))
    assert len(deep.liquidated) <= len(thin.liquidated)
    assert set(deep.liquidated) <= set(thin.liquidated)
    assert deep.shortfall[SYM] <= thin.shortfall[SYM]


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.tuples(st.integers(0, 50), _decimals("0.001", "3", 3)), min_size=1, max_size=10),
    _decimals("0", "30", 2),
)
def test_the_advice_fits_the_budget_and_one_step_more_does_not(
    rows: list[tuple[int, Decimal]], budget: Decimal
) -> None:
    prices: dict[Decimal, Decimal] = {}
    for bps, qty in rows:
        price = D(60000) - D(6) * bps
        prices[price] = prices.get(price, D(0)) + qty
    book = BookSnapshot(
        symbol=SYM, bids=tuple(sorted(prices.items(), reverse=True)), asks=(), time_ms=0
    )
    step = D("0.001")
    advice = advised_size(book, Side.BUY, budget, step)
    if advice.max_qty:
        slip = close_slippage(book, Side.BUY, advice.max_qty)
        assert slip is not None
        assert slip <= budget
    beyond = close_slippage(book, Side.BUY, advice.max_qty + step)
    assert beyond is None or beyond > budget
    wider = advised_size(book, Side.BUY, budget + 1, step)
    assert wider.max_qty >= advice.max_qty
