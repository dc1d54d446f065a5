"""Apply a declarative scenario to a running engine: paths, depth, skew, populations, events.

:func:`apply_scenario` is the one entry point (the venue's ``load_scenario`` calls it). In order:

1. every symbol's index path (a relative path is scaled by the index at load time; a follower's
   path, already derived from its leader's by the decoder, is relative), depth profile and quote
   skew (``MarketMaker.set_skew``);
2. every population: each account is created with ``Engine.create_account`` (label
   ``"<scenario>/<population>/<n>"``), set to its margin mode and leverage, and opens each leg with
   a market order against the book as it is (a notional leg buys ``notional / index`` rounded down
   to the step). The market maker refreshes its quotes after each fill, as it would between two
   traders' orders. The created account ids are appended to ``engine.scenario_accounts[name]``
   (population name -> account ids, in creation order), where checks and tests find them;
3. the timed events (feed stalls and offsets, wicks), scheduled on the engine's clock.

A population that the venue refuses (margin, leverage, a book too thin to fill it) is a
:class:`~harness.errors.ConfigError` naming the scenario, the population, the account and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState
from adapters.sim.scenarios import AccountPlan, FeedEvent, Leg, Population, Scenario, WickEvent
from harness.errors import ConfigError, Rejected
from harness.model import MarginMode, OrderRequest, OrderType, PricePath, quantize_down

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["SCENARIO_TRADER", "apply_scenario"]

SCENARIO_TRADER = "scenario-trader"


def apply_scenario(engine: Engine, scenario: Scenario) -> None:
    """Put ``scenario`` into ``engine`` now; event times count from this moment."""
    now = engine.clock.now_ms()
    named = set(scenario.symbols) | {s for p in scenario.populations for s in p.symbols}
    for symbol in sorted(named):
        if symbol not in engine.instruments:
            msg = (
                f"scenario {scenario.name!r} names unknown symbol {symbol!r}; "
                f"choose from: {', '.join(sorted(engine.instruments))}"
            )
            raise ConfigError(msg)
    for symbol, spec in scenario.symbols.items():
        for event in spec.feed_events:
            _check_feed(engine, scenario, symbol, event)
    for symbol, spec in scenario.symbols.items():
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
        if spec.skew_bps is not None:
            engine.market_maker.set_skew(symbol, spec.skew_bps)
    for population in scenario.populations:
        ids = [
            _open_account(engine, scenario, population, n, plan)
            for n, plan in enumerate(population.accounts, start=1)
        ]
        engine.scenario_accounts.setdefault(population.name, []).extend(ids)
    for symbol, spec in scenario.symbols.items():
        for event in spec.feed_events:
            engine.schedule(now + event.at_ms, _feed_action(engine, symbol, event))
        for wick in spec.wicks:
            engine.schedule(now + wick.at_ms, _wick_action(engine, symbol, wick))


# ---------------------------------------------------------------------- populations
def _open_account(
    engine: Engine, scenario: Scenario, population: Population, n: int, plan: AccountPlan
) -> str:
    acct = engine.create_account(plan.wallet, f"{scenario.name}/{population.name}/{n}")
    who = f"scenario {scenario.name!r} population {population.name!r} account {n}"
    for leg in plan.legs:
        _open_leg(engine, acct, population, plan, leg, who)
    return acct.account_id


def _open_leg(
    engine: Engine,
    acct: AccountState,
    population: Population,
    plan: AccountPlan,
    leg: Leg,
    who: str,
) -> None:
    symbol = leg.symbol
    inst = engine.instruments[symbol]
    qty = leg.quantity
    if qty is None:
        assert leg.notional is not None  # noqa: S101 - a Leg holds one of the two
        qty = quantize_down(leg.notional / engine.prices[symbol].index, inst.step_size)
    action = f"{population.side.value} {qty} {symbol} at {plan.leverage}x"
    try:
        if population.margin_mode is MarginMode.ISOLATED:
            engine.set_margin_mode(acct.account_id, symbol, MarginMode.ISOLATED)
        engine.set_leverage(acct.account_id, symbol, plan.leverage)
        rec = engine.place_order(
            acct.account_id,
            OrderRequest(symbol=symbol, side=population.side, type=OrderType.MARKET, quantity=qty),
        )
    except Rejected as exc:
        msg = (
            f"{who}: {action} with a {plan.wallet} wallet was refused ({exc}); "
            "raise its wallet or lower its notional or leverage"
        )
        raise ConfigError(msg) from None
    if rec.status != "FILLED":
        msg = f"{who}: the book filled {rec.executed_qty} of {action}; lower its notional"
        raise ConfigError(msg)
    engine.market_maker.refresh(symbol)


# ---------------------------------------------------------------------- events
def _check_feed(engine: Engine, scenario: Scenario, symbol: str, event: FeedEvent) -> None:
    count = len(engine.prices[symbol].feeds)
    if not 1 <= event.feed <= count:
        msg = (
            f"scenario {scenario.name!r}: {symbol} has feeds 1..{count}, not {event.feed}; "
            "fix the event's feed number"
        )
        raise ConfigError(msg)


def _feed_action(engine: Engine, symbol: str, event: FeedEvent) -> Callable[[], None]:
    feed = engine.prices[symbol].feeds[event.feed - 1]

    def act() -> None:
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
