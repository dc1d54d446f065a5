"""Book-walk slippage and the conservative fill price (perp-mechanics.md §14)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import NoSolution
from harness.model import Side
from harness.oracle import conservative_fill_price, slippage_bps, walk_book

D = Decimal
ASKS = ((D(100), D(1)), (D(101), D(2)), (D(103), D(5)))
BIDS = ((D(99), D(1)), (D(98), D(2)), (D(95), D(5)))


def test_a_buy_walks_the_asks_best_first() -> None:
    walk = walk_book(ASKS, D(2))
    assert walk.filled_qty == D(2)
    assert walk.avg_price == D("100.5")  # (100 + 101)/2
    assert walk.worst_price == D(101)
    assert walk.notional == D(201)
    assert walk.levels_used == 2
    assert walk.complete


def test_a_limit_stops_before_the_first_worse_level() -> None:
    walk = walk_book(ASKS, D(5), limit_price=D(101), side=Side.BUY)
    assert (walk.filled_qty, walk.worst_price, walk.complete) == (D(3), D(101), False)
    sell = walk_book(BIDS, D(5), limit_price=D(98), side=Side.SELL)
    assert (sell.filled_qty, sell.worst_price, sell.complete) == (D(3), D(98), False)


def test_a_book_too_thin_reports_what_it_filled() -> None:
    walk = walk_book(ASKS, D(10))
    assert walk.filled_qty == D(8)
    assert not walk.complete
    empty = walk_book((), D(1))
    assert (empty.filled_qty, empty.avg_price, empty.worst_price) == (D(0), None, None)


def test_walk_book_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="needs side="):
        walk_book(ASKS, D(1), limit_price=D(100))
    with pytest.raises(ValueError, match="give best first"):
        walk_book(tuple(reversed(ASKS)), D(1), side=Side.BUY)
    with pytest.raises(ValueError, match="quantity=0 must be > 0"):
        walk_book(ASKS, D(0))


def test_slippage_is_positive_when_worse_for_the_taker() -> None:
    assert slippage_bps(D("100.5"), D(100), Side.BUY) == D(50)
    assert slippage_bps(D("98.5"), D(100), Side.SELL) == D(150)
    assert slippage_bps(D(99), D(100), Side.BUY) == D(-100)


def test_conservative_price_takes_the_worse_of_book_and_floor() -> None:
    # book average 100.5 is worse than a 10 bp floor (100.1) for a buy of 2 around 100
    assert conservative_fill_price(ASKS, D(2), Side.BUY, D(100), D(10)) == D("100.5")
    # the floor dominates a deep book: 1 at 100 with a 100 bp floor ⇒ 101
    assert conservative_fill_price(ASKS, D(1), Side.BUY, D(100), D(100)) == D(101)
    assert conservative_fill_price(BIDS, D(1), Side.SELL, D(100), D(50)) == D("99")
    assert conservative_fill_price(BIDS, D(1), Side.SELL, D(100), D(200)) == D(98)


def test_conservative_price_refuses_a_book_that_cannot_fill() -> None:
    with pytest.raises(NoSolution, match="holds only 8 of the 10 to buy"):
        conservative_fill_price(ASKS, D(10), Side.BUY, D(100), D(10))


levels = st.lists(
    st.tuples(
        st.decimals(min_value=D("0.01"), max_value=D(50), places=2),
        st.decimals(min_value=D("0.001"), max_value=D(10), places=3),
    ),
    min_size=1,
    max_size=8,
)


@settings(deadline=None)
@given(
    levels,
    st.decimals(min_value=D("0.001"), max_value=D(20), places=3),
    st.sampled_from(list(Side)),
)
def test_book_walk_average_lies_between_best_and_worst_and_conservative_is_never_better(
    steps: list[tuple[Decimal, Decimal]], qty: Decimal, side: Side
) -> None:
    best = D(1000)
    book, price = [], best
    for gap, size in steps:  # build a valid best-first book for the side
        book.append((price, size))
        price = price + gap if side is Side.BUY else price - gap
    walk = walk_book(book, qty, side=side)
    assert walk.avg_price is not None
    assert walk.worst_price is not None
    assert min(best, walk.worst_price) <= walk.avg_price <= max(best, walk.worst_price)
    assert walk.filled_qty == min(qty, sum(size for _, size in book))
    if walk.complete:
        price_floor = conservative_fill_price(book, qty, side, best, D(5))
        assert (price_floor - walk.avg_price) * side.sign >= 0
        assert slippage_bps(price_floor, best, side) >= D(5)
