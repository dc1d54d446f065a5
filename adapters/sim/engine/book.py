"""A price-time priority limit order book for one symbol.

Resting orders queue per price level in arrival order. Matching walks the opposite side from
the best price; the caller decides what each match means (fees, positions), the book only keeps
quantities and priority straight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sortedcontainers import SortedDict

from harness.model import Side

__all__ = ["OrderBook", "RestingOrder"]


@dataclass(slots=True)
class RestingOrder:
    """The book's view of a resting order (mutable: ``remaining`` shrinks as it fills)."""

    order_id: int
    account_id: str
    side: Side
    price: Decimal
    remaining: Decimal


class OrderBook:
    """Bids and asks as ``price -> deque[RestingOrder]``; an index ``order_id -> order``."""

    __slots__ = ("_asks", "_bids", "_orders", "symbol", "touched", "update_id")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        # Bids keyed by negated price so that iteration order is best-first on both sides.
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._orders: dict[int, RestingOrder] = {}
        self.update_id = 0
        # Levels changed since the engine last published a depth diff; None while nobody
        # listens to the engine's events (adapters/sim/engine/publisher.py).
        self.touched: set[tuple[Side, Decimal]] | None = None

    def _side(self, side: Side) -> SortedDict:
        return self._bids if side is Side.BUY else self._asks

    @staticmethod
    def _key(side: Side, price: Decimal) -> Decimal:
        return -price if side is Side.BUY else price

    def add(self, order: RestingOrder) -> None:
        if order.order_id in self._orders:
            msg = f"order {order.order_id} already rests in {self.symbol}"
            raise ValueError(msg)
        levels = self._side(order.side)
        key = self._key(order.side, order.price)
        queue = levels.get(key)
        if queue is None:
            queue = deque()
            levels[key] = queue
        queue.append(order)
        self._orders[order.order_id] = order
        self.update_id += 1
        if self.touched is not None:
            self.touched.add((order.side, order.price))

    def remove(self, order_id: int) -> RestingOrder | None:
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        levels = self._side(order.side)
        key = self._key(order.side, order.price)
        queue = levels[key]
        queue.remove(order)
        if not queue:
            del levels[key]
        self.update_id += 1
        if self.touched is not None:
            self.touched.add((order.side, order.price))
        return order

    def get(self, order_id: int) -> RestingOrder | None:
        return self._orders.get(order_id)

    def reduce(self, order: RestingOrder, qty: Decimal) -> None:
        """Take ``qty`` off a resting order (a fill); removes it when nothing remains."""
        order.remaining -= qty
        if order.remaining <= 0:
            self.remove(order.order_id)
        else:
            self.update_id += 1
            if self.touched is not None:
                self.touched.add((order.side, order.price))

    def best(self, side: Side) -> Decimal | None:
        levels = self._side(side)
        if not levels:
            return None
        key = levels.keys()[0]
        return -key if side is Side.BUY else key  # type: ignore[no-any-return]

    def best_bid(self) -> Decimal | None:
        return self.best(Side.BUY)

    def best_ask(self) -> Decimal | None:
        return self.best(Side.SELL)

    def crosses(self, side: Side, price: Decimal) -> bool:
        """Would an order on ``side`` at ``price`` take liquidity?"""
        opposite = self.best(side.opposite)
        if opposite is None:
            return False
        return price >= opposite if side is Side.BUY else price <= opposite

    def iter_matchable(self, side: Side, limit: Decimal | None) -> Iterator[RestingOrder]:
        """Resting orders an incoming ``side`` order could hit, in priority order.

        Iterates over a snapshot so the caller may reduce or remove orders while iterating.
        """
        levels = self._side(side.opposite)
        for key in list(levels.keys()):
            price = -key if side.opposite is Side.BUY else key
            if limit is not None and (price > limit if side is Side.BUY else price < limit):
                return
            yield from list(levels.get(key, ()))

    def available(
        self, side: Side, limit: Decimal | None, exclude_account: str | None = None
    ) -> Decimal:
        """Quantity an incoming ``side`` order could take up to ``limit``."""
        total = Decimal(0)
        for order in self.iter_matchable(side, limit):
            if order.account_id != exclude_account:
                total += order.remaining
        return total

    def levels(self, side: Side, depth: int) -> tuple[tuple[Decimal, Decimal], ...]:
        """Aggregated ``(price, qty)`` levels, best first."""
        out: list[tuple[Decimal, Decimal]] = []
        levels = self._side(side)
        for key in levels.keys()[:depth]:
            price = -key if side is Side.BUY else key
            out.append((price, sum((o.remaining for o in levels[key]), Decimal(0))))
        return tuple(out)

    def level_qty(self, side: Side, price: Decimal) -> Decimal:
        """Total resting quantity at ``price`` on ``side`` (0 when there is no such level)."""
        queue = self._side(side).get(self._key(side, price))
        return sum((o.remaining for o in queue), Decimal(0)) if queue else Decimal(0)

    def orders_of(self, account_id: str) -> list[RestingOrder]:
        return [o for o in self._orders.values() if o.account_id == account_id]

    def __len__(self) -> int:
        return len(self._orders)
