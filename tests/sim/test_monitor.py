"""The anomaly monitor (adapters/sim/engine/monitor.py): each detector's statistic at and around
its threshold, its window, what it ignores, its defect, and replay.

Flows go through the engine's own entry points (place, cancel, set leverage, price paths), as a
trader's would; statistics are checked against the documented constants.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sim import scenarios
from adapters.sim.engine import monitor as m
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import apply_scenario
from adapters.sim.server.alerts import alert_from_json, alert_json
from adapters.sim.venue import SimVenue
from harness.alerts import (
    CANCEL_BURST,
    CASCADE_RISK,
    LEVERAGE_CLUSTER,
    THIN_BOOK_CLUSTER,
    Alert,
    MonitorRules,
    read_alerts,
)
from harness.errors import Missing
from harness.model import MarginMode, PricePath, Side, quantize_down
from tests.sim.simkit import BTC, ETH, limit, make_engine, open_position

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
W = m.CANCEL_WINDOW_MS
N = m.CANCEL_BURST_COUNT


def _of(engine: Engine, detector: str) -> list[Alert]:
    return [a for a in engine.monitor.alerts if a.detector == detector]


def _far_bid(engine: Engine) -> tuple[str, str]:
    """A small resting bid 5 % under the mark: (qty, price)."""
    inst = engine.instruments[BTC]
    price = quantize_down(engine.mark(BTC) * D("0.95"), inst.tick_size)
    return "0.002", format(price, "f")


def _churn(engine: Engine, acct: AccountState, gaps_ms: list[int]) -> list[int]:
    """Add and cancel one resting bid per gap, advancing the gap after each; the cancel times."""
    qty, price = _far_bid(engine)
    times = []
    for gap in gaps_ms:
        rec = engine.place_order(acct.account_id, limit(BTC, BUY, qty, price))
        engine.cancel_order(acct.account_id, BTC, rec.order_id, None)
        times.append(engine.clock.now_ms())
        engine.clock.advance(gap)
    return times


def test_documented_rules_are_the_monitors_constants() -> None:
    """harness.alerts.MonitorRules (what the checks drive against) is this monitor."""
    assert MonitorRules() == MonitorRules(
        cancel_window_ms=m.CANCEL_WINDOW_MS,
        cancel_burst=m.CANCEL_BURST_COUNT,
        leverage_window_ms=m.LEVERAGE_WINDOW_MS,
        leverage_cluster=m.LEVERAGE_CLUSTER_ACCOUNTS,
        cluster_band_bps=m.CLUSTER_BAND_BPS,
        cluster_window_ms=m.CLUSTER_WINDOW_MS,
        thin_depth=m.THIN_DEPTH,
        cluster_share=m.CLUSTER_SHARE,
        cascade_band_bps=m.CASCADE_BAND_BPS,
        cascade_ratio=m.CASCADE_RATIO,
        cascade_every_ms=m.CASCADE_EVERY_MS,
    )


# ---------------------------------------------------------------------- cancel-burst
def test_a_cancel_burst_alerts_at_the_cancel_that_reaches_the_threshold() -> None:
    engine = make_engine()
    acct = engine.create_account(D(10_000))
    start = engine.clock.now_ms()
    times = _churn(engine, acct, [100] * (N - 1))
    assert _of(engine, CANCEL_BURST) == []
    times += _churn(engine, acct, [100] * 5)
    (alert,) = _of(engine, CANCEL_BURST)
    assert alert.time_ms == times[N - 1] == start + (N - 1) * 100
    assert (alert.statistic, alert.threshold) == (D(N), D(N))
    assert (alert.symbol, alert.account_id) == (BTC, acct.account_id)
    assert alert.evidence["cancels"] == alert.evidence["adds"] == str(N)
    assert alert.evidence["first_cancel_ms"] == str(start)


@pytest.mark.parametrize(("wait_ms", "alerts"), [(W - 1, 1), (W, 0)])
def test_a_cancel_counts_for_exactly_one_window_length(wait_ms: int, alerts: int) -> None:
    """The window is ``(t - W, t]``: a cancel exactly W earlier has left it."""
    engine = make_engine()
    acct = engine.create_account(D(10_000))
    _churn(engine, acct, [0] * (N - 2) + [wait_ms])  # N - 1 cancels at once, then the wait
    _churn(engine, acct, [0])  # the N-th
    assert len(_of(engine, CANCEL_BURST)) == alerts


def test_one_burst_raises_one_alert_and_the_next_burst_another() -> None:
    engine = make_engine()
    acct = engine.create_account(D(10_000))
    _churn(engine, acct, [50] * (N + 15))
    assert len(_of(engine, CANCEL_BURST)) == 1
    engine.clock.advance(W)
    _churn(engine, acct, [50] * N)
    assert len(_of(engine, CANCEL_BURST)) == 2


def test_cancels_are_counted_per_account_and_symbol() -> None:
    engine = make_engine()
    a, b = engine.create_account(D(10_000)), engine.create_account(D(10_000))
    half = N // 2 + 1
    _churn(engine, a, [10] * half)
    _churn(engine, b, [10] * half)
    assert _of(engine, CANCEL_BURST) == []


def test_cancels_by_the_liquidation_engine_are_not_the_accounts_flow() -> None:
    engine = make_engine()
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, BUY, "0.1", mode=MarginMode.ISOLATED, leverage=50)
    qty, price = _far_bid(engine)
    for _ in range(N + 5):
        engine.place_order(acct.account_id, limit(BTC, BUY, qty, price))
    index = engine.prices[BTC].index
    engine.set_price_path(BTC, PricePath(points=((0, index), (1, index * D("0.97")))))
    engine.clock.advance(2_000)
    assert engine.liquidator.records
    assert all(r.status != "NEW" for r in acct.orders.values())
    assert _of(engine, CANCEL_BURST) == []


def test_monitor_blind_to_cancels_misses_the_burst() -> None:
    clean, broken = make_engine(), make_engine(defects=["monitor-blind-to-cancels"])
    for engine in (clean, broken):
        _churn(engine, engine.create_account(D(10_000)), [100] * (N + 5))
    assert len(_of(clean, CANCEL_BURST)) == 1
    assert _of(broken, CANCEL_BURST) == []


def _reference_bursts(times: list[int]) -> list[int]:
    """When the documented rule fires: at the count reaching N, re-armed below it."""
    fired, armed = [], True
    for i, t in enumerate(times):
        count = sum(1 for u in times[: i + 1] if u > t - W)
        if count >= N:
            if armed:
                fired.append(t)
            armed = False
        else:
            armed = True
    return fired


@settings(max_examples=25, deadline=None)
@given(gaps=st.lists(st.sampled_from([0, 100, 300, 600, 1_500]), min_size=N - 2, max_size=45))
def test_cancel_bursts_fire_exactly_where_the_documented_rule_does(gaps: list[int]) -> None:
    engine = make_engine()
    times = _churn(engine, engine.create_account(D(10_000)), gaps)
    assert [a.time_ms for a in _of(engine, CANCEL_BURST)] == _reference_bursts(times)


@settings(max_examples=20, deadline=None)
@given(extra=st.lists(st.integers(0, 400), min_size=1, max_size=40))
def test_cancels_paced_below_the_threshold_never_alert(extra: list[int]) -> None:
    """At least W/(N-1) between cancels: at most N-1 in any window, so never an alert."""
    engine = make_engine()
    _churn(engine, engine.create_account(D(10_000)), [W // (N - 1) + 1 + e for e in extra])
    assert _of(engine, CANCEL_BURST) == []


# ---------------------------------------------------------------------- leverage-cluster
K = m.LEVERAGE_CLUSTER_ACCOUNTS


def _raise(engine: Engine, accounts: list[AccountState], leverage: int, gap_ms: int) -> list[int]:
    times = []
    for acct in accounts:
        engine.set_leverage(acct.account_id, BTC, leverage)
        times.append(engine.clock.now_ms())
        engine.clock.advance(gap_ms)
    return times


def test_the_fifth_account_raising_within_the_window_alerts() -> None:
    engine = make_engine()
    accounts = [engine.create_account(D(1_000)) for _ in range(K + 1)]
    times = _raise(engine, accounts[: K - 1], 40, 2_000)
    assert _of(engine, LEVERAGE_CLUSTER) == []
    times += _raise(engine, accounts[K - 1 :], 40, 2_000)
    (alert,) = _of(engine, LEVERAGE_CLUSTER)
    assert alert.time_ms == times[K - 1]
    assert (alert.statistic, alert.threshold, alert.account_id) == (D(K), D(K), None)
    assert alert.evidence["accounts"].split(",") == [a.account_id for a in accounts[:K]]
    assert alert.evidence["last_change"] == f"{accounts[K - 1].account_id} 20x->40x"


def test_raises_by_the_same_account_count_once_and_cuts_not_at_all() -> None:
    engine = make_engine()
    accounts = [engine.create_account(D(1_000)) for _ in range(K)]
    for lev in (25, 30, 35, 40, 45, 50):
        _raise(engine, accounts[:1], lev, 100)
    _raise(engine, accounts[1:], 10, 100)  # cuts from 20x
    _raise(engine, accounts[1 : K - 1], 15, 100)  # raises: K - 1 distinct with the first
    assert _of(engine, LEVERAGE_CLUSTER) == []


def test_raises_further_apart_than_the_window_never_cluster() -> None:
    engine = make_engine()
    accounts = [engine.create_account(D(1_000)) for _ in range(3 * K)]
    _raise(engine, accounts, 30, m.LEVERAGE_WINDOW_MS // (K - 1))
    assert _of(engine, LEVERAGE_CLUSTER) == []


def test_leverage_window_too_short_misses_raises_seconds_apart() -> None:
    clean, broken = make_engine(), make_engine(defects=["leverage-window-too-short"])
    for engine in (clean, broken):
        _raise(engine, [engine.create_account(D(1_000)) for _ in range(K)], 30, 2_000)
    assert len(_of(clean, LEVERAGE_CLUSTER)) == 1
    assert _of(broken, LEVERAGE_CLUSTER) == []


@settings(max_examples=20, deadline=None)
@given(
    moves=st.lists(
        st.tuples(st.integers(0, K - 2), st.integers(1, 125), st.sampled_from([0, 500, 5_000])),
        min_size=1,
        max_size=30,
    )
)
def test_fewer_accounts_than_the_threshold_never_alert(moves: list[tuple[int, int, int]]) -> None:
    engine = make_engine()
    accounts = [engine.create_account(D(1_000)) for _ in range(K - 1)]
    for who, leverage, gap in moves:
        engine.set_leverage(accounts[who].account_id, BTC, leverage)
        engine.clock.advance(gap)
    assert _of(engine, LEVERAGE_CLUSTER) == []


# ---------------------------------------------------------------------- thin-book-cluster
def _band_bids(engine: Engine) -> D:
    edge = engine.mark(BTC) * (1 - m.CLUSTER_BAND_BPS / 10_000)
    return sum((p * q for p, q in engine.books[BTC].levels(BUY, 1000) if p >= edge), D(0))


def _bid_near(engine: Engine, accounts: list[AccountState], notional: D, bps: int = 10) -> D:
    """Each account bids ``notional`` ``bps`` under the mark; the notional placed per bid."""
    inst = engine.instruments[BTC]
    price = quantize_down(engine.mark(BTC) * (1 - D(bps) / 10_000), inst.tick_size)
    qty = quantize_down(notional / price, inst.step_size)
    for acct in accounts:
        engine.place_order(acct.account_id, limit(BTC, BUY, format(qty, "f"), price))
    return price * qty


def test_bids_crowding_a_thin_book_alert_at_the_crossing_share() -> None:
    engine = make_engine()
    engine.market_maker.set_profile(BTC, "thin")
    base = _band_bids(engine)
    assert base < m.THIN_DEPTH
    accounts = [engine.create_account(D(10_000)) for _ in range(6)]
    placed, fired_at = D(0), None
    for i, acct in enumerate(accounts, start=1):
        placed += _bid_near(engine, [acct], D(5_000))
        share = (placed / (placed + base)).quantize(m.RATIO_PLACES, ROUND_DOWN)
        if fired_at is None and share >= m.CLUSTER_SHARE:
            fired_at, expected_share = i, share
        assert len(_of(engine, THIN_BOOK_CLUSTER)) == (fired_at is not None)
    (alert,) = _of(engine, THIN_BOOK_CLUSTER)
    assert alert.statistic == expected_share
    assert alert.evidence["other_depth"] == format(base, "f")
    assert alert.evidence["new_orders"] == str(fired_at)
    assert alert.evidence["side"] == "BUY"


def test_the_same_bids_on_a_deep_book_or_outside_the_band_do_not_alert() -> None:
    deep = make_engine()
    _bid_near(deep, [deep.create_account(D(10_000)) for _ in range(6)], D(5_000))
    far = make_engine()
    far.market_maker.set_profile(BTC, "thin")
    _bid_near(far, [far.create_account(D(10_000)) for _ in range(6)], D(5_000), bps=80)
    assert _of(deep, THIN_BOOK_CLUSTER) == _of(far, THIN_BOOK_CLUSTER) == []


def test_orders_older_than_the_window_are_depth_not_cluster() -> None:
    engine = make_engine()
    engine.market_maker.set_profile(BTC, "thin")
    accounts = [engine.create_account(D(10_000)) for _ in range(4)]
    _bid_near(engine, accounts[:3], D(5_000))  # share ~0.71: below
    engine.clock.advance(m.CLUSTER_WINDOW_MS)
    _bid_near(engine, accounts[3:], D(5_000))  # new: 5 000 of ~26 000
    assert _of(engine, THIN_BOOK_CLUSTER) == []


def test_thin_book_counts_new_orders_misses_a_large_cluster() -> None:
    clean, broken = make_engine(), make_engine(defects=["thin-book-counts-new-orders"])
    for engine in (clean, broken):
        engine.market_maker.set_profile(BTC, "thin")
        _bid_near(engine, [engine.create_account(D(10_000)) for _ in range(5)], D(5_000))
    assert len(_of(clean, THIN_BOOK_CLUSTER)) == 1
    assert _of(broken, THIN_BOOK_CLUSTER) == []


# ---------------------------------------------------------------------- cascade-risk
def _crowded_fall(defects: tuple[str, ...] = ()) -> tuple[Engine, int]:
    engine = make_engine(seed=7, defects=defects)
    apply_scenario(engine, scenarios.load("crowded-long-thin-book"))
    engine.settle()
    start = engine.clock.now_ms()
    index = engine.prices[BTC].index
    path = PricePath(points=((0, index), (600_000, index * D("0.94"))), linear=True)
    engine.set_price_path(BTC, path)
    engine.clock.advance(600_000)
    return engine, start


def test_the_crowded_long_fall_is_flagged_before_the_first_liquidation() -> None:
    engine, _ = _crowded_fall()
    first_liquidation = min(r.time_ms for r in engine.liquidator.records)
    warning = next(a for a in _of(engine, CASCADE_RISK) if a.evidence["side"] == "long")
    assert warning.time_ms < first_liquidation - 60_000
    assert warning.statistic >= m.CASCADE_RATIO
    at_risk, depth = D(warning.evidence["at_risk_notional"]), D(warning.evidence["depth"])
    assert at_risk >= depth
    assert int(warning.evidence["at_risk_positions"]) >= 1


def test_early_warning_late_fires_only_after_liquidations() -> None:
    engine, _ = _crowded_fall(("early-warning-late",))
    first_liquidation = min(r.time_ms for r in engine.liquidator.records)
    assert all(a.time_ms > first_liquidation for a in _of(engine, CASCADE_RISK))


def test_alerts_replay_identically_for_a_seed() -> None:
    first, _ = _crowded_fall()
    second, _ = _crowded_fall()
    assert first.monitor.alerts == second.monitor.alerts
    assert {a.detector for a in first.monitor.alerts} >= {LEVERAGE_CLUSTER, CASCADE_RISK}


def _set_mark(engine: Engine, symbol: str, mark: D) -> None:
    engine.prices[symbol].publish_mark(mark, engine.clock.now_ms())


@pytest.mark.parametrize("mode", [MarginMode.ISOLATED, MarginMode.CROSS])
def test_a_position_is_at_risk_when_the_band_move_crosses_its_liquidation_price(
    mode: MarginMode,
) -> None:
    """At risk iff ``mark x (1 - band)`` is at or under the liquidation price (cross: with the
    other cross position's PnL and maintenance, i.e. shared collateral)."""
    engine = make_engine(quiet=True)
    acct = engine.create_account(D(2_000))
    open_position(engine, acct, BTC, BUY, "0.3", mode=mode, leverage=20)
    if mode is MarginMode.CROSS:
        open_position(engine, acct, ETH, SELL, "1", mode=mode, leverage=20)
    pos = acct.positions[BTC]
    lp = engine.ledger.liquidation_price(acct, pos)
    assert lp is not None
    critical = lp / (1 - m.CASCADE_BAND_BPS / 10_000)
    _set_mark(engine, BTC, critical + D("0.5"))
    assert (BTC, 1) not in engine.monitor.at_risk()
    _set_mark(engine, BTC, critical - D("0.5"))
    notional, count = engine.monitor.at_risk()[BTC, 1]
    assert (notional, count) == (D("0.3") * (critical - D("0.5")), 1)


# ---------------------------------------------------------------------- venue and wire
@pytest.mark.asyncio
async def test_the_venue_reads_alerts_since_a_time_and_the_json_round_trips() -> None:
    venue = SimVenue(make_engine().config)
    engine = venue.engine
    _churn(engine, engine.create_account(D(10_000)), [100] * (N + 1))
    (alert,) = await read_alerts(venue)
    assert await read_alerts(venue, alert.time_ms) == [alert]
    assert await read_alerts(venue, alert.time_ms + 1) == []
    assert alert_from_json(alert_json(alert)) == alert
    with pytest.raises(Missing, match="READ_ALERTS"):
        await read_alerts(object())
