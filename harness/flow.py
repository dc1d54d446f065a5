"""Seeded order flow: many small orders that keep a book busy (adds, cancels, takes).

:class:`OrderFlow` drives one symbol from a few accounts with a fixed mix of actions chosen by a
seeded :class:`random.Random` — so a run replays exactly — and lets virtual time pass now and
then (the venue's own market maker requotes). Checks use it to judge the depth streams under
heavy flow; it never crosses the notional a small-size experiment needs.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from harness.errors import Rejected
from harness.model import Instrument, Order, OrderId, Side, TimeInForce, quantize_down
from harness.probes import limit, market, min_qty_for_notional, need
from harness.venue import Account, Venue

__all__ = ["FlowMix", "OrderFlow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowMix:
    """Weights of the actions (they need not sum to 1) and the range of passive prices."""

    add: int = 60
    cancel: int = 25
    take: int = 8
    wait: int = 7  # one mark update of virtual time
    ticks: int = 25  # passive orders rest 1..ticks ticks behind the best price
    size_factor: int = 4  # quantities 1..size_factor x the smallest order


@dataclass(slots=True)
class OrderFlow:
    """Random but replayable flow in ``inst`` from ``accounts`` (``rng`` seeds it)."""

    venue: Venue
    inst: Instrument
    accounts: Sequence[Account]
    rng: random.Random
    mix: FlowMix = field(default_factory=FlowMix)
    resting: list[tuple[Account, OrderId]] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)

    async def run(self, count: int) -> None:
        for _ in range(count):
            await self.step()

    async def step(self) -> str:
        mix = self.mix
        action = self.rng.choices(
            ("add", "cancel", "take", "wait"), weights=(mix.add, mix.cancel, mix.take, mix.wait)
        )[0]
        if action == "cancel" and not self.resting:
            action = "add"
        if action == "wait" and self.venue.control is None:
            action = "add"
        try:
            await getattr(self, f"_{action}")()
        except Rejected as exc:
            action = f"{action} rejected {exc.code}"
        self.actions[action] += 1
        return action

    async def _qty(self, price: Decimal) -> Decimal:
        return min_qty_for_notional(self.inst, price) * self.rng.randint(1, self.mix.size_factor)

    async def _add(self) -> None:
        symbol, tick = self.inst.symbol, self.inst.tick_size
        book = await self.venue.order_book(symbol, 5)
        side = self.rng.choice((Side.BUY, Side.SELL))
        behind = self.rng.randint(1, self.mix.ticks) * tick
        if side is Side.BUY:
            best = need(book.best_bid, f"a bid in {symbol}")
            price = quantize_down(best, tick) - behind
        else:
            best = need(book.best_ask, f"an ask in {symbol}")
            price = quantize_down(best, tick) + behind
        account = self.rng.choice(self.accounts)
        order: Order = await account.place_order(
            limit(symbol, side, await self._qty(price), price, TimeInForce.GTC)
        )
        self.resting.append((account, order.order_id))

    async def _cancel(self) -> None:
        account, order_id = self.resting.pop(self.rng.randrange(len(self.resting)))
        try:
            await account.cancel_order(self.inst.symbol, order_id=order_id)
        except Rejected as exc:
            if exc.code != -2011:  # already filled by a take: nothing to cancel
                raise

    async def _take(self) -> None:
        mark = (await self.venue.mark(self.inst.symbol)).mark_price
        account = self.rng.choice(self.accounts)
        side = self.rng.choice((Side.BUY, Side.SELL))
        await account.place_order(market(self.inst.symbol, side, await self._qty(mark)))

    async def _wait(self) -> None:
        control = need(self.venue.control, "a control interface to let time pass")
        await control.advance(self.venue.rules.mark_update_interval_ms)

    async def cancel_all(self) -> None:
        for account in self.accounts:
            await account.cancel_all(self.inst.symbol)
        self.resting.clear()
