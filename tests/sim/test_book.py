"""The order book: price-time priority and its bookkeeping (adapters/sim/engine/book.py)."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sim.engine.book import OrderBook, RestingOrder
from harness.model import Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def _order(order_id: int, side: Side, price: str, qty: str, account: str = "a") -> RestingOrder:
    return RestingOrder(order_id, account, side, D(price), D(qty))


def _book(*orders: RestingOrder) -> OrderBook:
    book = OrderBook("BTCUSDT")
    for order in orders:
        book.add(order)
    return book


def _ids(book: OrderBook, side: Side, limit: str | None = None) -> list[int]:
    return [o.order_id for o in book.iter_matchable(side, None if limit is None else D(limit))]


def test_earlier_order_at_a_price_level_matches_first() -> None:
    book = _book(
        _order(1, SELL, "100", "1", "a"),
        _order(2, SELL, "100", "2", "b"),
        _order(3, SELL, "100", "1", "c"),
    )
    assert _ids(book, BUY) == [1, 2, 3]


def test_better_price_matches_before_an_earlier_order_at_a_worse_price() -> None:
    book = _book(
        _order(1, SELL, "101", "1"),
        _order(2, SELL, "100", "1"),
        _order(3, BUY, "98", "1"),
        _order(4, BUY, "99", "1"),
        _order(5, SELL, "100", "1"),
    )
    assert _ids(book, BUY) == [2, 5, 1]
    assert _ids(book, SELL) == [4, 3]


def test_a_limit_stops_matching_at_the_first_worse_price() -> None:
    book = _book(
        _order(1, SELL, "100", "1"),
        _order(2, SELL, "101", "1"),
        _order(3, BUY, "99", "1"),
        _order(4, BUY, "98", "1"),
    )
    assert _ids(book, BUY, "100.5") == [1]
    assert _ids(book, BUY, "101") == [1, 2]
    assert _ids(book, BUY, "99.9") == []
    assert _ids(book, SELL, "98.5") == [3]
    assert _ids(book, SELL, "98") == [3, 4]


def test_best_prices_and_crossing_are_read_from_the_top_of_book() -> None:
    book = OrderBook("BTCUSDT")
    assert (book.best_bid(), book.best_ask()) == (None, None)
    assert not book.crosses(BUY, D(10**9))
    book.add(_order(1, BUY, "99", "1"))
    book.add(_order(2, SELL, "101", "1"))
    book.add(_order(3, BUY, "98", "1"))
    assert (book.best_bid(), book.best_ask()) == (D(99), D(101))
    assert book.crosses(BUY, D(101))
    assert not book.crosses(BUY, D("100.9"))
    assert book.crosses(SELL, D(99))
    assert not book.crosses(SELL, D("99.1"))


def test_remove_drops_an_emptied_level_and_ignores_unknown_ids() -> None:
    book = _book(
        _order(1, SELL, "100", "1"), _order(2, SELL, "100", "2"), _order(3, SELL, "101", "1")
    )
    update = book.update_id
    assert book.remove(99) is None
    assert book.update_id == update  # nothing changed
    removed = book.remove(1)
    assert removed is not None
    assert removed.order_id == 1
    assert book.levels(SELL, 10) == ((D(100), D(2)), (D(101), D(1)))
    book.remove(2)
    assert book.levels(SELL, 10) == ((D(101), D(1)),)
    assert book.best_ask() == D(101)
    assert book.get(2) is None
    assert len(book) == 1
    assert book.update_id == update + 2


def test_partial_reduce_keeps_queue_position_and_a_full_reduce_removes() -> None:
    first = _order(1, SELL, "100", "3", "a")
    book = _book(first, _order(2, SELL, "100", "1", "b"))
    update = book.update_id
    book.reduce(first, D(2))
    assert first.remaining == D(1)
    assert _ids(book, BUY) == [1, 2]  # still first in the queue
    assert book.levels(SELL, 1) == ((D(100), D(2)),)
    assert book.update_id == update + 1
    book.reduce(first, D(1))
    assert book.get(1) is None
    assert _ids(book, BUY) == [2]
    assert book.update_id == update + 2


def test_adding_an_order_id_twice_is_refused() -> None:
    book = _book(_order(1, SELL, "100", "1"))
    with pytest.raises(ValueError, match="order 1 already rests in BTCUSDT"):
        book.add(_order(1, BUY, "99", "1"))


def test_levels_aggregate_each_price_best_first_up_to_depth() -> None:
    book = _book(
        _order(1, BUY, "99", "1"),
        _order(2, BUY, "99", "0.5"),
        _order(3, BUY, "100", "2"),
        _order(4, BUY, "97", "1"),
        _order(5, SELL, "102", "1"),
        _order(6, SELL, "101", "0.25"),
        _order(7, SELL, "101", "0.75"),
    )
    assert book.levels(BUY, 10) == ((D(100), D(2)), (D(99), D("1.5")), (D(97), D(1)))
    assert book.levels(BUY, 2) == ((D(100), D(2)), (D(99), D("1.5")))
    assert book.levels(SELL, 10) == ((D(101), D(1)), (D(102), D(1)))
    assert book.levels(SELL, 0) == ()


def test_available_counts_up_to_the_limit_and_skips_the_excluded_account() -> None:
    book = _book(
        _order(1, SELL, "100", "1", "me"),
        _order(2, SELL, "100", "2", "other"),
        _order(3, SELL, "101", "4", "other"),
        _order(4, SELL, "102", "8", "me"),
    )
    assert book.available(BUY, None) == D(15)
    assert book.available(BUY, D(101)) == D(7)
    assert book.available(BUY, D(101), exclude_account="me") == D(6)
    assert book.available(BUY, None, exclude_account="me") == D(6)
    assert book.available(BUY, D("99.9")) == D(0)
    assert book.available(SELL, None) == D(0)


def test_matching_may_remove_orders_while_iterating() -> None:
    book = _book(*(_order(i, SELL, str(100 + i % 3), "1") for i in range(1, 10)))
    seen = []
    for order in book.iter_matchable(BUY, None):
        seen.append(order.order_id)
        book.reduce(order, order.remaining)
    assert seen == [3, 6, 9, 1, 4, 7, 2, 5, 8]
    assert len(book) == 0
    assert book.best_ask() is None


def test_orders_of_lists_one_accounts_resting_orders() -> None:
    book = _book(_order(1, SELL, "100", "1", "a"), _order(2, BUY, "99", "1", "b"))
    book.add(_order(3, BUY, "98", "1", "a"))
    assert sorted(o.order_id for o in book.orders_of("a")) == [1, 3]
    assert book.orders_of("nobody") == []


# --------------------------------------------------------------------------- linked levels
@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "cancel", "fill", "walk"]),
            st.integers(0, 4),  # price offset (a few levels, so they get deep)
            st.integers(1, 5),  # quantity
            st.integers(0, 10**6),  # which order
        ),
        max_size=120,
    )
)
def test_levels_keep_time_priority_through_adds_cancels_and_fills(
    steps: list[tuple[str, int, int, int]],
) -> None:
    """Against a model of plain lists: every walk gives the same orders in the same order."""
    book = OrderBook("BTCUSDT")
    model: dict[int, list[list[int]]] = {}  # price -> [[order id, remaining], ...] in time order
    next_id = 0
    for op, offset, qty, pick in steps:
        live = [oid for level in model.values() for oid, _ in level]
        if op == "add" or not live:
            next_id += 1
            book.add(_order(next_id, SELL, str(100 + offset), str(qty)))
            model.setdefault(100 + offset, []).append([next_id, qty])
        elif op == "cancel":
            oid = live[pick % len(live)]
            assert book.remove(oid) is not None
            for level in model.values():
                level[:] = [e for e in level if e[0] != oid]
        elif op == "fill":
            oid = live[pick % len(live)]
            order = book.get(oid)
            assert order is not None
            take = min(qty, int(order.remaining))
            book.reduce(order, D(take))
            for level in model.values():
                for e in level:
                    if e[0] == oid:
                        e[1] -= take
                level[:] = [e for e in level if e[1] > 0]
        else:  # a walk that fills every other order it is given, as matching does
            seen = []
            for i, order in enumerate(book.iter_matchable(BUY, None)):
                seen.append(order.order_id)
                if i % 2 == 0:
                    book.reduce(order, order.remaining)
            expected = [oid for price in sorted(model) for oid, _ in model[price]]
            assert seen == expected
            for level in model.values():
                level[:] = [e for i, e in enumerate(level) if e[0] not in seen[::2]]
        model = {p: level for p, level in model.items() if level}
        assert _ids(book, BUY) == [oid for price in sorted(model) for oid, _ in model[price]]
        assert book.levels(SELL, 10) == tuple(
            (D(price), D(sum(q for _, q in model[price]))) for price in sorted(model)
        )
        assert len(book) == sum(len(level) for level in model.values())


def test_a_deep_level_pickles_without_recursion_and_keeps_its_order() -> None:
    book = _book(*(_order(i, SELL, "100", "1") for i in range(1, 5001)))
    for i in range(2, 5001, 3):
        book.remove(i)
    copy = pickle.loads(pickle.dumps(book))  # noqa: S301 - bytes this test just made
    assert _ids(copy, BUY) == _ids(book, BUY)
    copy.remove(1)  # the links were rebuilt: the head goes, the rest follows in order
    copy.remove(5000)
    assert _ids(copy, BUY) == [i for i in _ids(book, BUY) if i not in (1, 5000)]
    assert copy.levels(SELL, 1) == ((D(100), D(len(copy))),)


def test_cancelling_from_the_middle_of_a_deep_level_does_not_walk_it() -> None:
    """O(1) cancels: removing an order touches its neighbours only (no equality test on the
    level's other orders, which a deque's ``remove`` makes one by one)."""
    compared = 0

    class Counted(RestingOrder):
        __slots__ = ()

        def __eq__(self, other: object) -> bool:
            nonlocal compared
            compared += 1
            return self is other

        __hash__ = RestingOrder.__hash__

    book = _book(*(Counted(i, "a", SELL, D(100), D(1)) for i in range(1, 2001)))
    for i in range(1000, 1100):
        book.remove(i)
    assert compared == 0
    assert _ids(book, BUY) == [i for i in range(1, 2001) if not 1000 <= i < 1100]
