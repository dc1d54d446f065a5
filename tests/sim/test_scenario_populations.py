"""Scenario populations: accounts opened at load time, seeded by the scenario's own seed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim import scenarios
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import apply_scenario
from harness.model import MarginMode, Side
from harness.oracle import PositionInput, PositionSide, cross_liquidation, isolated_liquidation
from tests.sim.simkit import BTC, ETH, make_engine

D = Decimal


def _loaded(name: str, seed: int = 9) -> Engine:
    engine = make_engine(seed=seed)
    apply_scenario(engine, scenarios.load(name))
    return engine


def test_crowded_long_scenario_clusters_isolated_liquidation_prices_2_5_to_5_percent_below() -> (
    None
):
    scenario = scenarios.load("crowded-long-thin-book")
    assert "between 2.5 % and 5 % below the index" in scenario.description
    engine = make_engine(seed=9)
    index = engine.prices[BTC].index
    apply_scenario(engine, scenario)
    (crowd,) = scenario.populations
    ids = engine.scenario_accounts["crowd"]
    assert len(ids) == crowd.count == 24
    brackets = engine.instruments[BTC].brackets
    for account_id, plan in zip(ids, crowd.accounts, strict=True):
        (pos,) = engine.positions_of(account_id)
        assert pos.margin_mode is MarginMode.ISOLATED
        assert pos.qty > 0
        assert 20 <= pos.leverage == plan.leverage <= 30
        assert D(950) < pos.qty * pos.entry < D(2_550)
        quote = isolated_liquidation(
            PositionInput(
                symbol=BTC,
                side=PositionSide.LONG,
                quantity=pos.qty,
                entry_price=pos.entry,
                brackets=brackets,
            ),
            pos.isolated_wallet,
        )
        assert quote.liquidation_price is not None
        assert index * D("0.95") < quote.liquidation_price < index * D("0.975"), account_id
        # The simulator's own figure agrees with the oracle's.
        own = engine.ledger.liquidation_price(engine.account(account_id), pos)
        assert own is not None
        assert abs(own - quote.liquidation_price) < D("0.01")
    book = engine.books[BTC]
    assert len(book.levels(Side.BUY, 100)) == len(book.levels(Side.SELL, 100)) == 3
    engine.clock.advance(60_000)
    assert not engine.liquidator.records  # the index holds: nobody is liquidated


def test_correlated_pair_population_is_long_both_legs_on_one_cross_wallet() -> None:
    scenario = scenarios.load("correlated-pair")
    engine = _loaded("correlated-pair")
    (population,) = scenario.populations
    ids = engine.scenario_accounts[population.name]
    assert len(ids) == 12
    for account_id, plan in zip(ids, population.accounts, strict=True):
        acct = engine.account(account_id)
        positions = {p.symbol: p for p in engine.positions_of(account_id)}
        assert set(positions) == {BTC, ETH}
        assert all(p.margin_mode is MarginMode.CROSS and p.qty > 0 for p in positions.values())
        assert all(p.leverage == plan.leverage for p in positions.values())
        inputs = [
            PositionInput(
                symbol=s,
                side=PositionSide.LONG,
                quantity=p.qty,
                entry_price=p.entry,
                brackets=engine.instruments[s].brackets,
                mark_price=engine.mark(s),
            )
            for s, p in positions.items()
        ]
        for quote in cross_liquidation(inputs, acct.cross_wallet):
            # Shared collateral: each leg's LP depends on the other leg, and lies below entry.
            assert quote.liquidation_price is not None
            assert quote.liquidation_price < quote.entry_price * D("0.95")
        alone = isolated_liquidation(inputs[0], acct.cross_wallet)
        shared = cross_liquidation(inputs, acct.cross_wallet)[0]
        assert alone.liquidation_price is not None
        assert shared.liquidation_price is not None
        assert shared.liquidation_price > alone.liquidation_price  # the ETH leg takes margin


def _population_view(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for name, ids in engine.scenario_accounts.items():
        out[name] = [
            (
                account_id,
                engine.account(account_id).cross_wallet,
                tuple(
                    (p.symbol, p.qty, p.entry, p.leverage, p.margin_mode, p.isolated_wallet)
                    for p in engine.positions_of(account_id)
                ),
            )
            for account_id in ids
        ]
    return out


@pytest.mark.parametrize("name", ["crowded-long-thin-book", "correlated-pair"])
def test_the_scenario_seed_gives_identical_populations_on_two_engines(name: str) -> None:
    first, second = _loaded(name, seed=3), _loaded(name, seed=3)
    assert _population_view(first) == _population_view(second)
    # Another run seed moves feed noise and quote sizes, not who holds what at which leverage:
    # a notional leg buys notional / index, so its quantity may differ by one step.
    other = _loaded(name, seed=4)
    for ids, other_ids in zip(
        first.scenario_accounts.values(), other.scenario_accounts.values(), strict=True
    ):
        for a, b in zip(ids, other_ids, strict=True):
            assert first.account(a).label == other.account(b).label
            for p, q in zip(first.positions_of(a), other.positions_of(b), strict=True):
                assert (p.symbol, p.leverage, p.margin_mode) == (
                    q.symbol,
                    q.leverage,
                    q.margin_mode,
                )
                assert abs(p.qty - q.qty) <= first.instruments[p.symbol].step_size
