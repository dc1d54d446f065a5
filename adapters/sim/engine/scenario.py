"""Apply a declarative scenario to a running engine: paths, depth profiles, timed events."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState
from adapters.sim.scenarios import FeedEvent, Scenario, WickEvent
from harness.errors import ConfigError
from harness.model import OrderType, PricePath, quantize_down

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["apply_scenario"]

SCENARIO_TRADER = "scenario-trader"


def apply_scenario(engine: Engine, scenario: Scenario) -> None:
    now = engine.clock.now_ms()
    for symbol, spec in scenario.symbols.items():
        if symbol not in engine.instruments:
            msg = f"scenario {scenario.name!r} names unknown symbol {symbol!r}"
            raise ConfigError(msg)
        path = spec.path
        if spec.relative:
            base = engine.prices[symbol].index
            path = PricePath(
                points=tuple((t, base * p) for t, p in path.points),
                linear=path.linear,
                name=path.name,
            )
        engine.set_price_path(symbol, path)
        if spec.depth is not None:
            engine.market_maker.set_profile(symbol, spec.depth)
        for event in spec.feed_events:
            engine.schedule(now + event.at_ms, _feed_action(engine, symbol, event))
        for wick in spec.wicks:
            engine.schedule(now + wick.at_ms, _wick_action(engine, symbol, wick))


def _feed_action(engine: Engine, symbol: str, event: FeedEvent) -> Callable[[], None]:
    feeds = engine.prices[symbol].feeds
    if not 1 <= event.feed <= len(feeds):
        msg = f"{symbol} has feeds 1..{len(feeds)}, not {event.feed}"
        raise ConfigError(msg)

    def act() -> None:
        feed = feeds[event.feed - 1]
        if event.stall is not None:
            feed.stalled = event.stall
        if event.offset is not None:
            feed.offset = event.offset

    return act


def _trader(engine: Engine) -> AccountState:
    acct = engine.accounts.get(SCENARIO_TRADER)
    if acct is None:
        acct = AccountState(
            account_id=SCENARIO_TRADER,
            label="scenario trader",
            cross_wallet=engine.config.market_maker_balance,
            exempt=True,
        )
        engine.accounts[SCENARIO_TRADER] = acct
    return acct


def _wick_action(engine: Engine, symbol: str, wick: WickEvent) -> Callable[[], None]:
    def act() -> None:
        inst = engine.instruments[symbol]
        book = engine.books[symbol]
        levels = book.levels(wick.side.opposite, 1000)
        visible = sum((q for _, q in levels), Decimal(0))
        qty = min(quantize_down(visible * wick.depth_fraction, inst.step_size), inst.market_max_qty)
        if qty < inst.min_qty:
            return
        trader = _trader(engine)
        rec = engine.new_record(
            trader,
            symbol=symbol,
            side=wick.side,
            type_=OrderType.MARKET,
            qty=qty,
            price=None,
            tif=None,
        )
        engine.match(trader, rec, None)
        rec.status = "FILLED" if rec.executed_qty >= qty else "EXPIRED"

    return act
