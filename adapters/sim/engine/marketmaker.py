"""A seeded market maker quoting a depth profile around the index.

It requotes at an update when the index moved, when one of its orders traded, or when its profile
changed; it never crosses resting orders of others (its quotes are post-only), so traders' own
resting orders are only ever taken by traders. Sizes are jittered with the simulator's seed.
"""

from __future__ import annotations

import random
import zlib
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from adapters.sim.config import DEPTH_PROFILES, DepthProfile
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.book import OrderBook, RestingOrder
from harness.errors import ConfigError
from harness.model import OrderType, Side, TimeInForce, quantize_down, quantize_up

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["MarketMaker"]

Levels = tuple[tuple[Decimal, Decimal, Decimal], ...]

BPS = Decimal(10_000)
_SIDES = (Side.BUY, Side.SELL)


class MarketMaker:
    def __init__(self, engine: Engine, account: AccountState) -> None:
        self.engine = engine
        self.account = account
        self.profiles: dict[str, DepthProfile] = {
            s: DEPTH_PROFILES[si.depth] for s, si in engine.config.instruments.items()
        }
        self._rng = {
            s: random.Random(  # noqa: S311 - a seeded simulation, not cryptography
                engine.config.seed * 7_919 + zlib.crc32(s.encode())
            )
            for s in engine.config.instruments
        }
        self._stale: set[str] = set(engine.config.instruments)
        self._centre: dict[str, Decimal] = {}
        self.skew_bps: dict[str, Decimal] = dict.fromkeys(engine.config.instruments, Decimal(0))
        # Per symbol: the profile the tables were made from and the tables (_tables).
        self._cache: dict[str, tuple[DepthProfile, Levels, tuple[Decimal, ...]]] = {}

    def set_profile(self, symbol: str, name: str) -> None:
        profile = DEPTH_PROFILES.get(name)
        if profile is None:
            msg = (
                f"unknown depth profile {name!r}; choose from: {', '.join(sorted(DEPTH_PROFILES))}"
            )
            raise ConfigError(msg)
        self.profiles[symbol] = profile
        self.requote(symbol)

    def mark_stale(self, symbol: str) -> None:
        self._stale.add(symbol)

    def index_moved(self, symbol: str, index: Decimal) -> None:
        """Requote at the next refresh if the index left the band the quotes were built around."""
        centre = self._centre.get(symbol)
        threshold = self.profiles[symbol].requote_bps / BPS
        if centre is None or abs(self._target(symbol, index) - centre) > centre * threshold:
            self._stale.add(symbol)

    def set_skew(self, symbol: str, bps: Decimal) -> None:
        """Centre quotes ``bps`` away from the index: a persistent premium (or discount)."""
        self.skew_bps[symbol] = bps
        self.requote(symbol)

    def _target(self, symbol: str, index: Decimal) -> Decimal:
        return index * (1 + self.skew_bps[symbol] / BPS)

    def refresh(self, symbol: str) -> None:
        if symbol in self._stale:
            self.requote(symbol)

    def requote(self, symbol: str) -> None:
        """Cancel the maker's quotes in ``symbol`` and quote the profile around the index again.

        Leaves exactly the state :meth:`requote_reference` leaves (tests/sim/test_fast_paths.py):
        the same order ids, prices, sizes, random draws and book, with the per-level offsets,
        notionals and jitter factors computed once per profile instead of at every requote.
        """
        engine = self.engine
        if engine.reference:
            self.requote_reference(symbol)
            return
        book = engine.books[symbol]
        inst = engine.instruments[symbol]
        account = self.account
        orders = account.orders
        # Its own history is never read: only this symbol's live quotes are left to cancel (the
        # records of filled ones go too). Book removals are independent of their order.
        remove = book.remove
        for order_id in [o for o, r in orders.items() if r.symbol == symbol]:
            remove(order_id)
            del orders[order_id]
        account.client_ids = {r._cid: o for o, r in orders.items() if r._cid is not None}
        account.fills.clear()
        account.income.clear()
        profile = self.profiles[symbol]
        index = self._target(symbol, engine.prices[symbol].index)
        self._centre[symbol] = index
        draw = self._rng[symbol].randrange  # randint(-1000, 1000) is -1000 + randrange(2001)
        levels, jitters = self._tables(symbol, profile)
        tick, step = inst.tick_size, inst.step_size
        min_qty, min_price = inst.min_qty, inst.min_price
        crosses, quote = book.crosses, self._quote
        for below, above, notional in levels:
            for side in _SIDES:
                jitter = jitters[draw(2001)]
                if side is Side.BUY:
                    price = (index * below / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
                else:
                    price = (index * above / tick).to_integral_value(rounding=ROUND_CEILING) * tick
                qty = (notional * jitter / index / step).to_integral_value(
                    rounding=ROUND_FLOOR
                ) * step
                if qty < min_qty or price < min_price or crosses(side, price):
                    continue
                quote(book, symbol, side, price, qty)
        self._stale.discard(symbol)

    def _quote(
        self, book: OrderBook, symbol: str, side: Side, price: Decimal, qty: Decimal
    ) -> None:
        """Rest one post-only (GTX) limit quote of the maker's account on ``book``."""
        rec = self.engine.new_record(
            self.account,
            symbol=symbol,
            side=side,
            type_=OrderType.LIMIT,
            qty=qty,
            price=price,
            tif=TimeInForce.GTX,
        )
        book.add(RestingOrder(rec.order_id, self.account.account_id, side, price, qty))

    def _tables(self, symbol: str, profile: DepthProfile) -> tuple[Levels, tuple[Decimal, ...]]:
        """For ``profile``: per level ``1 - offset``, ``1 + offset`` and the notional, and the
        jitter factors ``1 + jitter * k / 1000`` for ``k`` = -1000..1000 (indexed by ``k + 1000``),
        each computed as :meth:`requote_reference` computes it (made again when the symbol's
        profile object changes)."""
        cached = self._cache.get(symbol)
        if cached is not None and cached[0] is profile:
            return cached[1], cached[2]
        rows = []
        for level in range(profile.levels):
            offset = (profile.half_spread_bps + level * profile.level_spacing_bps) / BPS
            notional = profile.base_notional * profile.growth**level
            rows.append((1 - offset, 1 + offset, notional))
        jitter = profile.jitter
        jitters = tuple(1 + jitter * Decimal(k) / 1000 for k in range(-1000, 1001))
        table = tuple(rows)
        self._cache[symbol] = (profile, table, jitters)
        return table, jitters

    def requote_reference(self, symbol: str) -> None:
        """:meth:`requote` as the rule reads (the engine's reference mode)."""
        engine = self.engine
        book = engine.books[symbol]
        inst = engine.instruments[symbol]
        for order in book.orders_of(self.account.account_id):
            book.remove(order.order_id)
            del self.account.orders[order.order_id]
        # The maker's own order and fill history is never read; keep only its live quotes.
        for order_id in [o for o, r in self.account.orders.items() if r.symbol == symbol]:
            del self.account.orders[order_id]
        self.account.client_ids = {
            r._cid: o for o, r in self.account.orders.items() if r._cid is not None
        }
        self.account.fills.clear()
        self.account.income.clear()
        profile = self.profiles[symbol]
        index = self._target(symbol, engine.prices[symbol].index)
        self._centre[symbol] = index
        rng = self._rng[symbol]
        for level in range(profile.levels):
            offset = (profile.half_spread_bps + level * profile.level_spacing_bps) / BPS
            notional = profile.base_notional * profile.growth**level
            for side in (Side.BUY, Side.SELL):
                jitter = 1 + profile.jitter * Decimal(rng.randint(-1000, 1000)) / 1000
                if side is Side.BUY:
                    price = quantize_down(index * (1 - offset), inst.tick_size)
                else:
                    price = quantize_up(index * (1 + offset), inst.tick_size)
                qty = quantize_down(notional * jitter / index, inst.step_size)
                if qty < inst.min_qty or price < inst.min_price or book.crosses(side, price):
                    continue
                self._quote(book, symbol, side, price, qty)
        self._stale.discard(symbol)
