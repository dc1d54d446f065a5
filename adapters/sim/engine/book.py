"""A price-time priority limit order book for one symbol.

Resting orders queue per price level in arrival order. Matching walks the opposite side from
the best price; the caller decides what each match means (fees, positions), the book only keeps
quantities and priority straight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from sortedcontainers import SortedDict

from harness.model import Side

__all__ = ["Level", "OrderBook", "RestingOrder"]

# Level aggregates are kept exactly (sums and differences of quantities never round).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_ADD = _EXACT.add
_SUB = _EXACT.subtract
BUY = Side.BUY
# What a resting order pickles (its links are the level's business: Level.__setstate__).
_STATE = ("order_id", "account_id", "side", "price", "remaining", "time_ms", "young")


class RestingOrder:
    """The book's view of a resting order (mutable: ``remaining`` shrinks as it fills).

    ``time_ms`` is when the order was placed (-1: unknown, the book's ``classify`` decides) and
    ``young`` whether it counts as a *new* order of a watched (non-exempt) account for the
    anomaly monitor; the book turns it off once the order is older than the window it is given
    (:meth:`OrderBook.age`). ``_prev``/``_next`` link it into its :class:`Level` (not part of
    its state: a level pickles its orders as a list and links them again).
    """

    __slots__ = (
        "_next",
        "_prev",
        "account_id",
        "order_id",
        "price",
        "remaining",
        "side",
        "time_ms",
        "young",
    )

    def __init__(
        self,
        order_id: int,
        account_id: str,
        side: Side,
        price: Decimal,
        remaining: Decimal,
        time_ms: int = -1,
        young: bool = False,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.price = price
        self.remaining = remaining
        self.time_ms = time_ms
        self.young = young
        self._prev: RestingOrder | None = None
        self._next: RestingOrder | None = None

    def __getstate__(self) -> tuple[object, ...]:
        return tuple([getattr(self, name) for name in _STATE])

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(_STATE, state, strict=True):
            setattr(self, name, value)
        self._prev = self._next = None

    def __repr__(self) -> str:
        return (
            f"RestingOrder(order_id={self.order_id!r}, account_id={self.account_id!r}, "
            f"side={self.side!r}, price={self.price!r}, remaining={self.remaining!r})"
        )


class Level:
    """One price level: its orders in time priority, with exact totals.

    A doubly linked list through the orders (``_prev``/``_next``): appending, taking the
    first and cancelling from the middle are all O(1) — a deque's ``remove`` walks the level,
    which on a deep book is most of a cancel's cost. ``qty`` is the level's resting quantity
    and ``young_qty`` the part of it in young orders.

    A removed order keeps its ``_next``: a walk that holds it (:meth:`OrderBook.iter_matchable`
    gives an order out, and the caller may fill or remove it) still reaches the orders after
    it. Its ``_prev`` is cleared, so removed orders never form a cycle with the level.
    """

    __slots__ = ("_head", "_len", "_tail", "qty", "young_qty")

    def __init__(self) -> None:
        self._head: RestingOrder | None = None
        self._tail: RestingOrder | None = None
        self._len = 0
        self.qty = Decimal(0)
        self.young_qty = Decimal(0)

    def append(self, order: RestingOrder) -> None:
        tail = self._tail
        order._prev = tail
        order._next = None
        if tail is None:
            self._head = order
        else:
            tail._next = order
        self._tail = order
        self._len += 1

    def remove(self, order: RestingOrder) -> None:
        """Unlink ``order`` (it must be in this level)."""
        prev, nxt = order._prev, order._next
        if prev is None:
            self._head = nxt
        else:
            prev._next = nxt
        if nxt is None:
            self._tail = prev
        else:
            nxt._prev = prev
        order._prev = None
        self._len -= 1

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._head is not None

    def __iter__(self) -> Iterator[RestingOrder]:
        order = self._head
        while order is not None:
            nxt = order._next  # read first: the caller may remove ``order``
            yield order
            order = nxt

    def __getstate__(self) -> tuple[list[RestingOrder], Decimal, Decimal]:
        return list(self), self.qty, self.young_qty

    def __setstate__(self, state: tuple[list[RestingOrder], Decimal, Decimal]) -> None:
        orders, self.qty, self.young_qty = state
        self._head = self._tail = None
        self._len = 0
        for order in orders:
            self.append(order)

    def __repr__(self) -> str:
        return f"Level(qty={self.qty!r}, orders={[o.order_id for o in self]!r})"


class OrderBook:
    """Bids and asks as ``price -> Level`` (a deque of orders); an index ``order_id -> order``."""

    __slots__ = (
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bids",
        "_floors",
        "_orders",
        "_young",
        "classify",
        "symbol",
        "touched",
        "update_id",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        # Bids keyed by negated price so that iteration order is best-first on both sides.
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        # The first key of each side (None: empty), kept by add and remove.
        self._best_bid: Decimal | None = None
        self._best_ask: Decimal | None = None
        self._orders: dict[int, RestingOrder] = {}
        self.update_id = 0
        # Levels changed since the engine last published a depth diff; None while nobody
        # listens to the engine's events (adapters/sim/engine/publisher.py).
        self.touched: set[tuple[Side, Decimal]] | None = None
        # Young orders in time order (they age in that order); see RestingOrder.
        self._young: deque[RestingOrder] = deque()
        #: Sets ``time_ms``/``young`` of an order added without them (the engine provides it).
        self.classify: Callable[[RestingOrder], None] | None = None
        # Per side: (key, floor) with ``floor`` <= the notional of old (not young) orders from
        # the best level to the level at ``key`` (see old_floor).
        self._floors: dict[Side, tuple[Decimal, Decimal]] = {}

    def _side(self, side: Side) -> SortedDict:
        return self._bids if side is BUY else self._asks

    @staticmethod
    def _key(side: Side, price: Decimal) -> Decimal:
        return -price if side is BUY else price

    def add(self, order: RestingOrder) -> None:
        orders = self._orders
        if order.order_id in orders:
            msg = f"order {order.order_id} already rests in {self.symbol}"
            raise ValueError(msg)
        if order.time_ms < 0 and self.classify is not None:
            self.classify(order)
        side = order.side
        if side is BUY:
            levels, key = self._bids, -order.price
        else:
            levels, key = self._asks, order.price
        level = levels.get(key)
        if level is None:
            level = levels[key] = Level()
            if side is BUY:
                if self._best_bid is None or key < self._best_bid:
                    self._best_bid = key
            elif self._best_ask is None or key < self._best_ask:
                self._best_ask = key
        level.append(order)
        level.qty = _ADD(level.qty, order.remaining)
        if order.young:
            level.young_qty = _ADD(level.young_qty, order.remaining)
            young = self._young
            if young and young[-1].time_ms > order.time_ms:
                # Placed earlier than the last young order (put on the book late): keep the
                # deque in time order.
                at = len(young)
                while at and young[at - 1].time_ms > order.time_ms:
                    at -= 1
                young.insert(at, order)
            else:
                young.append(order)
        orders[order.order_id] = order
        self.update_id += 1
        if self.touched is not None:
            self.touched.add((side, order.price))

    def remove(self, order_id: int) -> RestingOrder | None:
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        if order.side is BUY:
            levels, key = self._bids, -order.price
        else:
            levels, key = self._asks, order.price
        level = levels[key]
        level.remove(order)
        if level:
            level.qty = _SUB(level.qty, order.remaining)
            if order.young:
                level.young_qty = _SUB(level.young_qty, order.remaining)
        else:
            del levels[key]
            first = levels.keys()[0] if levels else None
            if order.side is BUY:
                self._best_bid = first
            else:
                self._best_ask = first
        if order.young:
            order.young = False
        elif order.side in self._floors:
            self._old_left(order.side, key, order.price, order.remaining)
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
            levels = self._bids if order.side is BUY else self._asks
            level = levels[self._key(order.side, order.price)]
            level.qty = _SUB(level.qty, qty)
            if order.young:
                level.young_qty = _SUB(level.young_qty, qty)
            elif order.side in self._floors:
                self._old_left(order.side, self._key(order.side, order.price), order.price, qty)
            self.update_id += 1
            if self.touched is not None:
                self.touched.add((order.side, order.price))

    def age(self, cutoff_ms: int) -> None:
        """Orders placed at or before ``cutoff_ms`` are no longer young."""
        young = self._young
        while young and young[0].time_ms <= cutoff_ms:
            order = young.popleft()
            if order.young:
                order.young = False
                level = (self._bids if order.side is BUY else self._asks)[
                    self._key(order.side, order.price)
                ]
                level.young_qty = _SUB(level.young_qty, order.remaining)

    # ------------------------------------------------------------------ old-depth floors
    def old_floor(self, side: Side, edge: Decimal) -> Decimal | None:
        """A lower bound on the notional of the old orders of ``side`` from the best price to
        ``edge`` (inclusive), from the last :meth:`set_old_floor` (None: none that reaches).

        The bound is kept through every later change: an old order leaving (or filled) at or
        before the floor's level lowers it by its notional; orders turning old or arriving only
        add depth, which the bound may ignore.
        """
        floor = self._floors.get(side)
        if floor is None:
            return None
        key, notional = floor
        if key > (-edge if side is BUY else edge):
            return None  # the floor's level is outside the band now
        return notional

    def set_old_floor(self, side: Side, price: Decimal, notional: Decimal) -> None:
        """The old orders from the best price to ``price`` are worth at least ``notional``."""
        self._floors[side] = (self._key(side, price), notional)

    def _old_left(self, side: Side, key: Decimal, price: Decimal, qty: Decimal) -> None:
        floor_key, notional = self._floors[side]
        if key <= floor_key:
            self._floors[side] = (floor_key, _SUB(notional, _EXACT.multiply(price, qty)))

    def best(self, side: Side) -> Decimal | None:
        if side is BUY:
            key = self._best_bid
            return None if key is None else -key
        return self._best_ask

    def best_bid(self) -> Decimal | None:
        key = self._best_bid
        return None if key is None else -key

    def best_ask(self) -> Decimal | None:
        return self._best_ask

    def crosses(self, side: Side, price: Decimal) -> bool:
        """Would an order on ``side`` at ``price`` take liquidity?"""
        if side is BUY:
            ask = self._best_ask
            return ask is not None and price >= ask
        bid = self._best_bid
        return bid is not None and price <= -bid

    def band(self, side: Side, edge: Decimal) -> Iterator[tuple[Decimal, Level]]:
        """``(price, level)`` of ``side`` from the best price to ``edge`` (inclusive).

        The book must not change while iterating.
        """
        levels = self._bids if side is BUY else self._asks
        if side is BUY:
            for key in levels.irange(None, -edge):
                yield -key, levels[key]
        else:
            for key in levels.irange(None, edge):
                yield key, levels[key]

    def iter_matchable(self, side: Side, limit: Decimal | None) -> Iterator[RestingOrder]:
        """Resting orders an incoming ``side`` order could hit, in priority order.

        The caller may reduce or remove the orders it was given while iterating (a removed
        order still leads to the ones after it, see :class:`Level`); the book must gain no
        order meanwhile.
        """
        levels = self._asks if side is BUY else self._bids
        keys = levels.keys()
        bound = None if limit is None else (limit if side is BUY else -limit)
        key: Decimal | None = None
        while True:
            if key is None:
                if not levels:
                    return
                key = keys[0]
            else:
                i = levels.bisect_right(key)
                if i >= len(keys):
                    return
                key = keys[i]
            if bound is not None and key > bound:
                return
            level = levels.get(key)
            if level is not None:
                yield from level

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
            price = -key if side is BUY else key
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
