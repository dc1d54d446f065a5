"""The cascade lab in the engine: liquidation latency, shared collateral, forced flow, populations.

Engine-level counterparts of the CASC checks (adapters/sim/engine/cascade.py and the liquidator);
each named defect is shown to change exactly what it names.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim import scenarios
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.cascade import population
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import apply_scenario
from harness.errors import ConfigError
from harness.model import MarginMode, PricePath, Side
from tests.sim.simkit import BTC, ETH, make_engine, open_position

D = Decimal
BUY = Side.BUY


def _falling_long(engine: Engine) -> tuple[AccountState, int, Decimal]:
    """A 0.1 BTC isolated 20x long, its liquidation price, and the index falling 1 % a second
    from now (for 12 s)."""
    acct = engine.create_account(D(100_000))
    open_position(engine, acct, BTC, BUY, "0.1", mode=MarginMode.ISOLATED, leverage=20)
    lp = engine.ledger.liquidation_price(acct, acct.positions[BTC])
    assert lp is not None
    start = engine.clock.now_ms()
    index = engine.prices[BTC].index
    engine.set_price_path(
        BTC, PricePath(points=((0, index), (12_000, index * D("0.88"))), linear=True)
    )
    return acct, start, lp


def _liquidated_at(engine: Engine, acct: AccountState) -> list[int]:
    return [r.time_ms for r in engine.liquidator.records if r.account_id == acct.account_id]


def _crossing_ms(engine: Engine, start: int, lp: Decimal) -> int:
    """The first update after ``start`` whose mark reached ``lp``."""
    for t, mark, _, _ in engine.prices[BTC].history:
        if t > start and mark <= lp:
            return t
    msg = "the mark never reached the liquidation price"
    raise AssertionError(msg)


@pytest.mark.parametrize("latency", [0, 1_500, 2_000, 5_000])
def test_a_crossing_is_liquidated_exactly_latency_after_the_update_that_saw_it(
    latency: int,
) -> None:
    engine = make_engine(quiet=True)
    engine.liquidation_latency.set(latency)
    acct, start, lp = _falling_long(engine)
    engine.clock.advance(20_000)
    assert _liquidated_at(engine, acct) == [_crossing_ms(engine, start, lp) + latency]
    assert engine.liquidation_latency.pending == 0


def test_latency_ignored_liquidates_at_once_whatever_the_setting() -> None:
    """The "latency-ignored" defect: 5 s configured, liquidated at the crossing update."""
    times = []
    for defects in ((), ("latency-ignored",)):
        engine = make_engine(quiet=True, defects=defects)
        engine.liquidation_latency.set(5_000)
        acct, start, lp = _falling_long(engine)
        engine.clock.advance(20_000)
        times.append(_liquidated_at(engine, acct)[0] - _crossing_ms(engine, start, lp))
    assert times == [5_000, 0]


def test_a_crossing_that_recovers_before_it_is_due_is_not_liquidated() -> None:
    """Latency 5 s; the index drops 6 % for 2 s and comes back: the position crossed, recovered
    before its step was due, and is never liquidated; nothing stays pending."""
    engine = make_engine(quiet=True)
    engine.liquidation_latency.set(5_000)
    acct = engine.create_account(D(100_000))
    open_position(engine, acct, BTC, BUY, "0.1", mode=MarginMode.ISOLATED, leverage=20)
    index = engine.prices[BTC].index
    path = ((0, index), (1_000, index * D("0.94")), (3_000, index))
    engine.set_price_path(BTC, PricePath(points=path))
    engine.clock.advance(1_500)
    assert engine.liquidation_latency.pending == 1
    engine.clock.advance(10_000)
    assert not _liquidated_at(engine, acct)
    assert engine.liquidation_latency.pending == 0
    assert acct.positions[BTC].qty == D("0.1")


@pytest.mark.parametrize("bad", [-1, 3_600_001, True])
def test_a_latency_out_of_range_is_refused(bad: int) -> None:
    engine = make_engine()
    with pytest.raises(ConfigError, match="liquidation latency"):
        engine.liquidation_latency.set(bad)


def _pair_long(engine: Engine) -> AccountState:
    """Cross long 0.05 BTC and 1 ETH (3,000 USDT each) on a 500 USDT wallet."""
    acct = engine.create_account(D(500))
    open_position(engine, acct, BTC, BUY, "0.05")
    open_position(engine, acct, ETH, BUY, "1")
    return acct


def test_cascade_ignores_shared_collateral_spares_a_cross_account_both_legs_liquidate() -> None:
    """Both indexes fall 8 %: each leg loses about 240 USDT. Together the 480 leave about 20 of
    the 500 wallet, under the ~25 USDT maintenance of both legs: the clean engine liquidates.
    Under "cascade-ignores-shared-collateral" each leg is judged alone (500 − 240 against its
    own ~12): the account survives the loss its wallet cannot carry."""
    liquidated = []
    for defects in ((), ("cascade-ignores-shared-collateral",)):
        engine = make_engine(quiet=True, defects=defects)
        acct = _pair_long(engine)
        for symbol in (BTC, ETH):
            index = engine.prices[symbol].index
            engine.set_price_path(symbol, PricePath(points=((0, index * D("0.92")),)))
        engine.clock.advance(2_000)
        equity, mm = engine.ledger.cross_equity_and_mm(acct)
        liquidated.append(bool(_liquidated_at(engine, acct)))
        if defects:
            assert equity <= mm  # under maintenance, and still open
    assert liquidated == [True, False]


def test_liquidations_bypass_book_leaves_the_book_and_last_price_untouched() -> None:
    """Clean: the forced sell trades with the bids and moves the last price. Under
    "liquidations-bypass-book" the insurance fund takes the position at the bankruptcy price
    and keeps it; no trade prints."""
    outcomes = []
    for defects in ((), ("liquidations-bypass-book",)):
        engine = make_engine(quiet=True, defects=defects)
        acct, _, _ = _falling_long(engine)
        engine.clock.advance(20_000)
        record = next(r for r in engine.liquidator.records if r.account_id == acct.account_id)
        fund = engine.insurance.positions.get(BTC)
        outcomes.append((record.filled_qty, fund.qty if fund else D(0)))
    clean, broken = outcomes
    assert clean[1] == 0  # what the fund took over it sold at once
    assert broken == (D(0), D("0.1"))


def test_population_lists_a_scenario_population_and_every_holder() -> None:
    engine = make_engine()
    with pytest.raises(ConfigError, match="unknown population 'cohort'"):
        population(engine, "cohort")
    apply_scenario(engine, scenarios.load("latency-cohort"))
    cohort = population(engine, "cohort")
    assert len(cohort) == 10
    assert all(len(a.positions) == 1 for a in cohort)
    assert all(
        p.margin_mode is MarginMode.ISOLATED and p.quantity > 0 for a in cohort for p in a.positions
    )
    assert all(
        a.wallet_balance == a.cross_wallet_balance + a.positions[0].isolated_wallet for a in cohort
    )
    holders = population(engine)
    assert {a.account_id for a in cohort} < {a.account_id for a in holders}
    assert any(a.exempt for a in holders)  # the market maker sold them their longs


def test_the_twin_cascade_scenarios_differ_only_in_size() -> None:
    plans = {}
    for name in ("cascade-dispersed", "cascade-concentrated"):
        scenario = scenarios.load(name)
        plans[name] = [
            (p.name, a.leverage, tuple(leg.quantity or D(0) for leg in a.legs))
            for p in scenario.populations
            for a in p.accounts
        ]
    dispersed, concentrated = plans["cascade-dispersed"], plans["cascade-concentrated"]
    assert [(n, lev) for n, lev, _ in dispersed] == [(n, lev) for n, lev, _ in concentrated]
    assert all(
        q2 == tuple(10 * q for q in q1)
        for (_, _, q1), (_, _, q2) in zip(dispersed, concentrated, strict=True)
    )
