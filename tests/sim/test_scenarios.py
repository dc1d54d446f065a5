"""Determinism, the update clock and the declarative scenarios (adapters/sim/scenarios/)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim import scenarios
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import SCENARIO_TRADER, apply_scenario
from harness.errors import ConfigError
from harness.model import MarginMode, PricePath, Side
from tests.sim.simkit import BTC, ETH, limit, make_engine, market

D = Decimal


def _book(engine: Engine, symbol: str) -> tuple[object, ...]:
    book = engine.books[symbol]
    return (book.levels(Side.BUY, 1000), book.levels(Side.SELL, 1000))


def _snapshot(engine: Engine) -> tuple[object, ...]:
    return (
        {s: _book(engine, s) for s in engine.books},
        {s: (p.index, p.mark, p.last_price, tuple(p.history)) for s, p in engine.prices.items()},
        {a.account_id: (a.cross_wallet, tuple(a.fills)) for a in engine.accounts.values()},
        tuple(engine.liquidator.records),
        engine.insurance.cross_wallet,
    )


def _session(seed: int) -> tuple[object, ...]:
    """A fixed script of trading, price moves and a liquidation."""
    engine = make_engine(seed=seed)
    a, b = engine.create_account(D(10_000)), engine.create_account(D(2_000))
    engine.set_margin_mode(b.account_id, BTC, MarginMode.ISOLATED)
    engine.set_leverage(b.account_id, BTC, 50)
    engine.place_order(b.account_id, market(BTC, Side.BUY, "0.3"))
    engine.place_order(a.account_id, limit(ETH, Side.SELL, "2", "3003"))
    engine.place_order(a.account_id, market(ETH, Side.BUY, "1.5"))
    engine.clock.advance(5_000)
    idx = engine.prices[BTC].index
    engine.set_price_path(BTC, PricePath(points=((0, idx), (20_000, idx * D("0.96"))), linear=True))
    engine.clock.advance(25_000)
    assert engine.liquidator.records  # the script does reach a liquidation
    return _snapshot(engine)


def test_same_seed_and_same_actions_replay_identically() -> None:
    assert _session(42) == _session(42)


def test_different_seeds_quote_different_books() -> None:
    books = {seed: _book(make_engine(seed=seed), BTC) for seed in range(5)}
    assert len(set(map(repr, books.values()))) == 5


def test_an_event_on_an_update_boundary_does_not_swallow_that_update() -> None:
    engine = make_engine()
    start = engine.clock.now_ms()
    fired = []
    engine.schedule(start + 3_000, lambda: fired.append(engine.clock.now_ms()))
    updates = []
    for _ in range(5):
        engine.clock.advance(1_000)
        updates.append(engine.prices[BTC].feeds[0].updated_ms - start)
    assert fired == [start + 3_000]
    assert updates == [1_000, 2_000, 3_000, 4_000, 5_000]


def test_a_clock_jump_runs_every_update_on_the_way() -> None:
    engine = make_engine()
    engine.clock.advance(10_500)
    assert engine._update_count == 10
    assert len(engine.prices[ETH].basis_samples) == 11  # construction + one per update


@pytest.mark.parametrize("name", scenarios.available())
def test_every_scenario_file_loads_and_runs(name: str) -> None:
    scenario = scenarios.load(name)
    assert scenario.name == name
    assert scenario.description
    assert set(scenario.symbols) <= {BTC, ETH}
    engine = make_engine(seed=9)
    apply_scenario(engine, scenario)
    engine.clock.advance(61_000)
    assert all(p.mark > 0 for p in engine.prices.values())


def test_the_bundled_scenarios_are_the_documented_five() -> None:
    assert scenarios.available() == ["fast-move", "stale-feed", "steady", "thin-book", "wick"]


def test_an_unknown_scenario_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        scenarios.load("crash")
    message = str(info.value)
    assert "'crash'" in message
    for name in scenarios.available():
        assert name in message


def test_wick_scenario_prints_a_last_price_wick_at_20_5_s_while_the_mark_holds() -> None:
    engine = make_engine(seed=4)
    start = engine.clock.now_ms()
    apply_scenario(engine, scenarios.load("wick"))
    state = engine.prices[BTC]
    engine.clock.advance(20_499)
    before = state.last_price
    assert SCENARIO_TRADER not in engine.accounts
    engine.clock.advance(1)
    assert engine.clock.now_ms() - start == 20_500
    assert state.last_price < state.index * D("0.995")  # swept through the thin bids
    assert state.last_price < before
    assert abs(state.mark / state.index - 1) < D("0.001")
    engine.clock.advance(20_000)
    assert state.last_price > state.index * D("1.005")  # and the asks at 40.5 s
    assert abs(state.mark / state.index - 1) < D("0.001")
    assert [f.side for f in engine.accounts[SCENARIO_TRADER].fills[:1]] == ["SELL"]


def test_fast_move_scenario_takes_the_index_down_8_percent_from_10_s_to_40_s() -> None:
    engine = make_engine(seed=8)
    base = {s: p.index for s, p in engine.prices.items()}
    apply_scenario(engine, scenarios.load("fast-move"))
    seen: dict[int, dict[str, Decimal]] = {}
    for second in range(1, 51):
        engine.clock.advance(1_000)
        seen[second] = {s: p.index / base[s] for s, p in engine.prices.items()}
    noise = D("0.0003")  # feeds carry up to 1 bp of seeded noise each
    for symbol in (BTC, ETH):
        assert abs(seen[10][symbol] - 1) < noise
        assert abs(seen[25][symbol] - D("0.96")) < noise
        assert abs(seen[40][symbol] - D("0.92")) < noise
        assert abs(seen[50][symbol] - D("0.92")) < noise
