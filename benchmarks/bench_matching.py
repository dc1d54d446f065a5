"""Target 2: the matching engine with full bookkeeping against a bare price-time book.

A fixed stream of order actions is generated from a seed: 70 % limit adds around the mid (passive,
up to 40 USDT from it), 25 % cancels of orders the stream added and has not cancelled yet (an
order a marketable order filled meanwhile is cancelled as an unknown order on both sides), 5 %
marketable orders (MARKET, 0.002 to 0.030 BTC). 100 trader accounts share it.

* The engine runs it through :meth:`Engine.place_order` / :meth:`Engine.cancel_order`: order
  filters, margin checks, matching with self-trade prevention, fees, positions and realized PnL on
  every fill, the mark and the liquidation scan after every request, the anomaly monitor, and the
  venue's update cycle (virtual time advances 100 ms every 100 actions: index, market-maker
  quotes, basis and premium samples).
* The bare book is written here: a ``SortedDict`` of price -> ``deque`` per side and a dict of id
  -> order, ``Decimal`` prices and quantities, price-time matching, no accounts and no risk.

Prints actions/s of both and the ratio (target >= 0.5), measured in the same run on the same
stream: the two run it in turn, a slice at a time (``--slices``, 20 by default), so a change of
the machine's speed during the run falls on both; the per-slice ratios are printed too (the book
deepens along the stream, so later slices cost the engine more). ``--actions N`` sets the
stream length (default 1,000,000); ``--profile`` saves a cProfile of the engine's run to
benchmarks/out/ (the engine then runs in one piece after the bare book).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections import deque
from decimal import Decimal

import nautilus_book
from _common import Target, profiled, report
from sortedcontainers import SortedDict

from adapters.sim.config import SimConfig
from adapters.sim.engine.exchange import Engine
from harness.clock import VirtualClock
from harness.errors import Rejected
from harness.model import OrderRequest, OrderType, Side, TimeInForce

SYMBOL = "BTCUSDT"
MID = Decimal(60000)
TICK = Decimal("0.1")
STEP = Decimal("0.001")
TRADERS = 100
WALLET = Decimal(10**9)
ADD, CANCEL, TAKE = 0, 1, 2
TARGET_RATIO = 0.5

# (kind, trader, key, side, price, qty): key numbers the stream's adds; a cancel names one.
Action = tuple[int, int, int, Side, Decimal, Decimal]


def make_stream(n: int, seed: int) -> list[Action]:
    """The seeded stream of ``n`` actions (module docstring)."""
    rng = random.Random(seed)
    live: list[tuple[int, int]] = []  # (key, trader) added and not cancelled by the stream
    out: list[Action] = []
    prices = {k: MID - k * TICK for k in range(-400, 401)}
    qtys = [q * STEP for q in range(51)]
    keys = 0
    for _ in range(n):
        r = rng.random()
        if r < 0.25 and live:
            i = rng.randrange(len(live))
            live[i], live[-1] = live[-1], live[i]
            key, trader = live.pop()
            out.append((CANCEL, trader, key, Side.BUY, MID, STEP))
        elif r < 0.30:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            out.append((TAKE, rng.randrange(TRADERS), -1, side, MID, qtys[rng.randint(2, 30)]))
        else:
            trader = rng.randrange(TRADERS)
            k = rng.randint(1, 400)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            price = prices[k] if side is Side.BUY else prices[-k]
            out.append((ADD, trader, keys, side, price, qtys[rng.randint(2, 50)]))
            live.append((keys, trader))
            keys += 1
    return out


# ---------------------------------------------------------------------- the bare book
class _Order:
    __slots__ = ("id", "price", "qty", "side")

    def __init__(self, id_: int, side: Side, price: Decimal, qty: Decimal) -> None:
        self.id = id_
        self.side = side
        self.price = price
        self.qty = qty


class BareBook:
    """Price-time priority, nothing else: the baseline."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()  # -price -> deque
        self.asks: SortedDict = SortedDict()  # price -> deque
        self.orders: dict[int, _Order] = {}
        self.fills = 0

    def _take(self, side: Side, qty: Decimal, limit: Decimal | None) -> Decimal:
        levels = self.asks if side is Side.BUY else self.bids
        while qty > 0 and levels:
            key, queue = levels.peekitem(0)
            price = key if side is Side.BUY else -key
            if limit is not None and (price > limit if side is Side.BUY else price < limit):
                break
            while qty > 0 and queue:
                maker = queue[0]
                fill = min(qty, maker.qty)
                qty -= fill
                maker.qty -= fill
                self.fills += 1
                if maker.qty == 0:
                    queue.popleft()
                    del self.orders[maker.id]
            if not queue:
                del levels[key]
        return qty

    def add(self, id_: int, side: Side, price: Decimal, qty: Decimal) -> None:
        qty = self._take(side, qty, price)
        if qty > 0:
            order = _Order(id_, side, price, qty)
            levels = self.bids if side is Side.BUY else self.asks
            key = -price if side is Side.BUY else price
            queue = levels.get(key)
            if queue is None:
                queue = levels[key] = deque()
            queue.append(order)
            self.orders[id_] = order

    def cancel(self, id_: int) -> bool:
        order = self.orders.pop(id_, None)
        if order is None:
            return False
        levels = self.bids if order.side is Side.BUY else self.asks
        key = -order.price if order.side is Side.BUY else order.price
        queue = levels[key]
        queue.remove(order)
        if not queue:
            del levels[key]
        return True

    def market(self, side: Side, qty: Decimal) -> None:
        self._take(side, qty, None)


class BareRun:
    """The bare book through the stream, a slice at a time; time spent and misses so far."""

    def __init__(self, stream: list[Action]) -> None:
        self.stream = stream
        self.book = BareBook()
        self.misses = 0
        self.seconds = 0.0

    def run(self, lo: int, hi: int) -> float:
        """Actions ``lo`` to ``hi``; the seconds they took."""
        book, misses = self.book, 0
        start = time.perf_counter()
        for kind, _trader, key, side, price, qty in self.stream[lo:hi]:
            if kind == ADD:
                book.add(key, side, price, qty)
            elif kind == CANCEL:
                if not book.cancel(key):
                    misses += 1
            else:
                book.market(side, qty)
        took = time.perf_counter() - start
        self.misses += misses
        self.seconds += took
        return took


# ---------------------------------------------------------------------- the engine
def engine_inputs(stream: list[Action]) -> list[tuple[int, int, int, OrderRequest | None]]:
    """The stream as the engine takes it: requests built before the clock starts."""
    out: list[tuple[int, int, int, OrderRequest | None]] = []
    for kind, trader, key, side, price, qty in stream:
        if kind == ADD:
            req = OrderRequest(
                symbol=SYMBOL,
                side=side,
                type=OrderType.LIMIT,
                quantity=qty,
                price=price,
                time_in_force=TimeInForce.GTC,
            )
        elif kind == TAKE:
            req = OrderRequest(symbol=SYMBOL, side=side, type=OrderType.MARKET, quantity=qty)
        else:
            req = None
        out.append((kind, trader, key, req))
    return out


def new_engine(seed: int) -> tuple[Engine, list[str]]:
    engine = Engine(SimConfig(seed=seed), VirtualClock())
    ids = [engine.create_account(WALLET, f"trader {i}").account_id for i in range(TRADERS)]
    return engine, ids


class EngineRun:
    """The engine through the same stream, a slice at a time (virtual time by stream position)."""

    def __init__(
        self,
        engine: Engine,
        ids: list[str],
        inputs: list[tuple[int, int, int, OrderRequest | None]],
    ) -> None:
        self.engine, self.ids, self.inputs = engine, ids, inputs
        self.order_ids = [0] * sum(1 for a in inputs if a[0] == ADD)
        self.misses = 0
        self.seconds = 0.0

    def run(self, lo: int, hi: int) -> float:
        """Actions ``lo`` to ``hi``; the seconds they took."""
        engine, ids, order_ids = self.engine, self.ids, self.order_ids
        place, cancel, advance = engine.place_order, engine.cancel_order, engine.clock.advance
        misses = 0
        start = time.perf_counter()
        for i in range(lo, hi):
            kind, trader, key, req = self.inputs[i]
            if i % 100 == 0:
                advance(100)
            if kind == ADD:
                assert req is not None  # noqa: S101 - built for every add
                order_ids[key] = place(ids[trader], req).order_id
            elif kind == CANCEL:
                try:
                    cancel(ids[trader], SYMBOL, order_ids[key], None)
                except Rejected:
                    misses += 1
            else:
                assert req is not None  # noqa: S101 - built for every take
                place(ids[trader], req)
        took = time.perf_counter() - start
        self.misses += misses
        self.seconds += took
        return took


def slices(n: int, count: int) -> list[tuple[int, int]]:
    """At most ``count`` consecutive, equal ranges covering ``0..n`` (the last may be shorter)."""
    size = max(1, -(-n // max(1, count)))
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def nautilus_targets(stream: list[Action], seed: int, actions: int, count: int) -> list[Target]:
    """nautilus_trader's matching engine on the stream's first ``actions`` (informative lines).

    Its resting orders sit in a list per side, sorted again on every add and searched on every
    cancel (nautilus_trader/execution/matching_core.pyx), so its cost grows with the number
    resting: it runs a prefix of the stream, side by side with the bare book and this engine on
    the same prefix (benchmarks/nautilus_book.py).
    """
    version = nautilus_book.version()
    if version is None:
        return [
            Target(
                "nautilus_trader",
                "not installed",
                "informative; pip install -e '.[bench]' to compare",
                None,
            )
        ]
    sub = stream[:actions]
    n = len(sub)
    engine, ids = new_engine(seed)
    bare, eng = BareRun(sub), EngineRun(engine, ids, engine_inputs(sub))
    naut = nautilus_book.NautilusRun(sub, MID, TICK)
    rates: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for lo, hi in slices(n, count):
            bare.run(lo, hi)
            eng.run(lo, hi)
            took = naut.run(lo, hi)
            rates.append((hi - lo) / took if took else 0.0)
    finally:
        gc.enable()
    bare_rate, engine_rate, naut_rate = n / bare.seconds, n / eng.seconds, n / naut.seconds
    events = ", ".join(f"{k} {v:,}" for k, v in sorted(naut.events.items()))
    print(f"nautilus_trader {version} events: {events}", file=sys.stderr)
    return [
        Target(
            f"nautilus_trader {version} matching engine, first {n:,} actions",
            f"{naut_rate:,.0f} actions/s, ratio {naut_rate / bare_rate:.3f} to the bare book; "
            f"{rates[0]:,.0f} actions/s in the first of {len(rates)} slices, "
            f"{rates[-1]:,.0f} in the last",
            f"informative; on the same actions this engine {engine_rate:,.0f} actions/s, "
            f"ratio {engine_rate / bare_rate:.2f}",
            None,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1_000_000, help="stream length")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's run")
    parser.add_argument(
        "--slices", type=int, default=20, help="slices of the stream run side by side, in turn"
    )
    parser.add_argument(
        "--nautilus-actions",
        type=int,
        default=20_000,
        help="stream prefix for nautilus_trader's engine, where installed (0: skip it)",
    )
    args = parser.parse_args(argv)

    stream = make_stream(args.actions, args.seed)
    inputs = engine_inputs(stream)
    engine, ids = new_engine(args.seed)
    bare, eng = BareRun(stream), EngineRun(engine, ids, inputs)
    n = len(stream)
    ratios: list[float] = []
    gc.collect()
    gc.disable()  # both sides run without the cyclic collector's pauses
    try:
        if args.profile:  # the engine in one piece under the profiler (the ratio means little)
            bare.run(0, n)
            profiled("matching", True, lambda: eng.run(0, n))
        else:
            # Interleaved: the machine's speed changes during a run hit both sides alike.
            for lo, hi in slices(n, args.slices):
                bare_took, engine_took = bare.run(lo, hi), eng.run(lo, hi)
                ratios.append(bare_took / engine_took if engine_took else 0.0)
    finally:
        gc.enable()
    bare_rate, engine_rate = n / bare.seconds, n / eng.seconds
    ratio = engine_rate / bare_rate
    book = engine.books[SYMBOL]
    fills = sum(len(engine.accounts[i].fills) for i in ids)
    print(
        f"stream: {n} actions (seed {args.seed}); cancels of filled orders: "
        f"engine {eng.misses}, bare {bare.misses}; engine: {len(book)} resting, "
        f"{fills} trader fills",
        file=sys.stderr,
    )
    if ratios:
        print(
            f"ratio per slice ({len(ratios)} slices of the stream, each run by the bare book "
            f"then the engine): {min(ratios):.2f}..{max(ratios):.2f}",
            file=sys.stderr,
        )
    extra = []
    if args.nautilus_actions > 0 and not args.profile:
        extra = nautilus_targets(stream, args.seed, args.nautilus_actions, args.slices)
    return report(
        [
            *extra,
            Target("bare book", f"{bare_rate:,.0f} actions/s", "baseline", None),
            Target("engine", f"{engine_rate:,.0f} actions/s", "full bookkeeping", None),
            Target(
                "matching ratio",
                f"{ratio:.2f}",
                f">= {TARGET_RATIO}",
                ratio >= TARGET_RATIO,
            ),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
