"""Determinism, the update clock and the declarative scenarios (adapters/sim/scenarios/)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from adapters.sim import scenarios
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import SCENARIO_TRADER, apply_scenario
from harness.errors import ConfigError
from harness.model import MarginMode, PricePath, Side
from harness.oracle import (
    average_premium,
    funding_rate,
    premium_index,
    walk_book,
)
from tests.sim.simkit import BTC, ETH, limit, make_engine, market

D = Decimal


Levels = tuple[tuple[Decimal, Decimal], ...]


def _book(engine: Engine, symbol: str) -> tuple[Levels, Levels]:
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


# ---------------------------------------------------------------------- the library
LIBRARY = [
    "cascade-concentrated",
    "cascade-dispersed",
    "correlated-pair",
    "cross-pair-shock",
    "crowded-long-thin-book",
    "fast-move",
    "fast-move-up",
    "index-feed-outage",
    "latency-cohort",
    "persistent-premium",
    "stale-feed",
    "steady",
    "thin-book",
    "wick",
]
FEED_NOISE = D("0.0003")  # three feeds with up to 1 bp of seeded noise each, and rounding


def _loaded(name: str, seed: int = 9) -> Engine:
    engine = make_engine(seed=seed)
    apply_scenario(engine, scenarios.load(name))
    return engine


def _relative(engine: Engine) -> Callable[[str], Decimal]:
    """The index of a symbol over its value now (load time)."""
    base = {s: p.index for s, p in engine.prices.items()}
    return lambda symbol: engine.prices[symbol].index / base[symbol]


def test_the_library_holds_the_documented_scenarios() -> None:
    assert scenarios.available() == LIBRARY


@pytest.mark.parametrize("name", LIBRARY)
def test_every_scenario_file_loads_and_runs_60_seconds(name: str) -> None:
    scenario = scenarios.load(name)
    assert scenario.name == name
    assert scenario.description
    assert scenario.seed >= 0
    assert set(scenario.symbols) <= {BTC, ETH}
    engine = _loaded(name)
    engine.clock.advance(60_000)
    assert all(p.mark > 0 for p in engine.prices.values())
    assert set(engine.scenario_accounts) == {p.name for p in scenario.populations}


def test_a_named_scenario_decodes_to_the_same_situation_every_time() -> None:
    for name in LIBRARY:
        assert scenarios.load(name) == scenarios.load(name)


def test_the_catalog_describes_every_scenario_and_hints_multi_day_ones() -> None:
    catalog = scenarios.catalog()
    assert sorted(catalog) == LIBRARY
    assert catalog["persistent-premium"].endswith("[30 days]")
    assert "30 days" in catalog["persistent-premium"]


def test_an_unknown_scenario_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        scenarios.load("crash")
    message = str(info.value)
    assert "'crash'" in message
    for name in scenarios.available():
        assert name in message


def test_steady_scenario_holds_every_index_within_feed_noise() -> None:
    engine = _loaded("steady")
    relative = _relative(engine)
    for _ in range(60):
        engine.clock.advance(1_000)
        for symbol in (BTC, ETH):
            assert abs(relative(symbol) - 1) < FEED_NOISE


def test_thin_book_scenario_leaves_three_levels_a_side_on_every_symbol() -> None:
    engine = _loaded("thin-book")
    engine.clock.advance(30_000)
    for symbol in (BTC, ETH):
        bids, asks = _book(engine, symbol)
        assert len(bids) == len(asks) == 3


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


@pytest.mark.parametrize(("name", "end"), [("fast-move", D("0.92")), ("fast-move-up", D("1.08"))])
def test_fast_move_scenarios_move_the_index_8_percent_from_10_s_to_40_s(
    name: str, end: Decimal
) -> None:
    engine = make_engine(seed=8)
    relative = _relative(engine)
    apply_scenario(engine, scenarios.load(name))
    seen: dict[int, dict[str, Decimal]] = {}
    for second in range(1, 51):
        engine.clock.advance(1_000)
        seen[second] = {s: relative(s) for s in (BTC, ETH)}
    assert "8 %" in scenarios.load(name).description
    for symbol in (BTC, ETH):
        assert abs(seen[10][symbol] - 1) < FEED_NOISE
        assert abs(seen[25][symbol] - (1 + end) / 2) < FEED_NOISE
        assert abs(seen[40][symbol] - end) < FEED_NOISE
        assert abs(seen[50][symbol] - end) < FEED_NOISE


def test_stale_feed_scenario_keeps_the_index_on_the_path_through_both_faults() -> None:
    engine = make_engine(seed=3)
    start = engine.clock.now_ms()
    apply_scenario(engine, scenarios.load("stale-feed"))
    state = engine.prices[BTC]
    for second in range(1, 61):
        engine.clock.advance(1_000)
        now = engine.clock.now_ms()
        assert abs(state.index / state.path_price(now) - 1) < FEED_NOISE, second
        stalled = 10 <= second < 30
        assert (state.feeds[1].updated_ms == now) is not stalled, second
        if 40 <= second < 50:  # feed 3 prints 30 % off and is left out
            assert state.feeds[2].price > state.path_price(now) * D("1.29")
    assert state.feeds[1].updated_ms - start == 60_000


def test_index_feed_outage_holds_the_index_while_every_feed_is_stale_then_recovers() -> None:
    engine = make_engine(seed=5)
    apply_scenario(engine, scenarios.load("index-feed-outage"))
    state = engine.prices[BTC]
    held: Decimal | None = None
    all_stale: list[int] = []
    for second in range(1, 61):
        engine.clock.advance(1_000)
        now = engine.clock.now_ms()
        if all(now - f.updated_ms > engine.config.stale_feed_ms for f in state.feeds):
            all_stale.append(second)
            held = state.index if held is None else held
            assert state.index == held, second
        elif second > 18:  # a feed is back: the index is on the path again
            assert abs(state.index / state.path_price(now) - 1) < FEED_NOISE, second
    # Feeds stall in [10 s, 12 s] and return in [40 s, 42 s] (seeded): all out from 18 s at the
    # latest to the first return; meanwhile the path climbed away from the held value.
    assert all_stale == list(range(all_stale[0], all_stale[-1] + 1))
    assert all_stale[0] <= 18
    assert 40 <= all_stale[-1] <= 42
    assert held is not None
    assert state.path_price(engine.clock.now_ms()) / held > D("1.015")


def test_persistent_premium_scenario_quotes_10_bp_over_the_index_every_funding_window() -> None:
    engine = _loaded("persistent-premium")
    description = scenarios.load("persistent-premium").description
    assert "10 bp above" in description
    assert "about +9.5 bp" in description
    assert "30 days" in description
    bps = D(10_000)
    for hour in range(3):  # three one-hour windows, one premium sample per 5 minutes
        premiums = []
        for _ in range(12):
            engine.clock.advance(300_000)
            for symbol in (BTC, ETH):
                index = engine.prices[symbol].index
                bids, asks = _book(engine, symbol)
                mid = (bids[0][0] + asks[0][0]) / 2
                assert abs((mid / index - 1) * bps - 10) < D("1.5"), (hour, symbol)
                max_leverage = engine.instruments[symbol].brackets[0].initial_leverage
                qty = 200 * max_leverage / index
                impact_bid = walk_book(engine.books[symbol].levels(Side.BUY, 100), qty)
                impact_ask = walk_book(engine.books[symbol].levels(Side.SELL, 100), qty)
                assert impact_bid.avg_price is not None
                assert impact_ask.avg_price is not None
                premium = premium_index(impact_bid.avg_price, impact_ask.avg_price, index)
                if symbol == BTC:
                    premiums.append(premium)
                # Quotes requote once the index moved 1 bp from their centre: ±1 bp of slack.
                assert D(8) < premium * bps < D(11), (hour, symbol)
        average = average_premium(premiums)
        assert abs(average * bps - D("9.5")) < D("0.5"), hour
        rate = funding_rate(average, engine.config.interest_rate)
        assert rate > engine.config.interest_rate  # longs pay more than the baseline, each time
        # ETHUSDT settles hourly: the venue's own rate is above the hourly baseline every hour.
        hours = engine.instruments[ETH].funding_interval_hours
        baseline = engine.config.interest_rate * hours / 8
        assert engine.prices[ETH].last_funding_rate > 3 * baseline, hour


def test_correlated_pair_moves_eth_by_beta_times_btc_within_the_stated_noise() -> None:
    scenario = scenarios.load("correlated-pair")
    follow = scenario.symbols[ETH].follows
    assert follow is not None
    assert (follow.symbol, follow.beta, follow.noise_bps) == (BTC, D("1.3"), D(8))
    assert "beta 1.3" in scenario.description
    assert "within 8 bp" in scenario.description
    engine = make_engine(seed=2)
    relative = _relative(engine)
    apply_scenario(engine, scenario)
    tolerance = follow.noise_bps / 10_000 + follow.beta * FEED_NOISE + FEED_NOISE
    worst = D(0)
    for second in range(1, 61):
        engine.clock.advance(1_000)
        btc, eth = relative(BTC) - 1, relative(ETH) - 1
        worst = max(worst, abs(eth - follow.beta * btc))
        assert abs(eth - follow.beta * btc) <= tolerance, second
    assert abs(relative(BTC) - D("0.94")) < FEED_NOISE
    assert worst > FEED_NOISE  # the idiosyncratic noise is there, not only the feeds'
